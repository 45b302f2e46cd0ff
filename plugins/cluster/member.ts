/**
 * One member of a cluster in etcd (design: DESIGN.md): its lease kept alive by our own loop, the
 * lease deadline by our own monotonic clock, its member key, and the election.
 *
 * **The deadline.** etcd3's `lost` event fires late (etcd3 #57) and a dead keepalive stream can
 * look alive (#110), so this class never asks the client whether the lease lives. It sends one
 * `keepaliveOnce` every ttl/3, each with a time limit, and stamps `t0` (CLOCK_MONOTONIC,
 * `process.hrtime.bigint()`) *before* sending: etcd renews the lease for `TTL` from when it
 * receives the request, which is after t0, so on success the lease lives at least until
 * `t0 + TTL`; `leaseDeadline()` is that less `renewMargin`. CLOCK_MONOTONIC is one clock for
 * every process of the host, so the store's owner can be granted this deadline (#15 item 2).
 * No success before the deadline: this member is not the leader by its own reckoning, whatever
 * the client says — and since nobody else can take the leader key before etcd expires the lease,
 * which is after our deadline, two members never both believe they lead (the fencing guarantee
 * the tests check with hrtime stamps).
 *
 * **The election.** The leader key `/recovery-agent/<cluster>/leader` is created by a txn
 * `if create_revision(leader) == 0 then put(leader, lease)`; the epoch is the key's create
 * revision (etcd's fencing token), so it grows at every new leader. A member campaigns only while
 * its lease deadline is valid and its ClusterMemberSource says it is eligible. A watch on the key
 * wakes the loop when it changes; a poll every `pollMs` covers a watch stream that died silently.
 *
 * **Stepping down.** When the deadline passes, the member stops claiming at once (isLeader() reads
 * the clock on every call), then revokes its lease — which deletes the leader key only if the
 * lease still exists — and grants a new one to go on as a replica.
 */
import os from 'node:os';
import type { Logger } from 'pino';
import { ConstantBackoff, noop } from 'cockatiel';
import { Etcd3, EtcdLeaseInvalidError, type Lease, type Watcher } from 'etcd3';
import type { ClusterLimits, ClusterMemberSource, ClusterMemberState, Eligibility, PeerState } from '../../core/contracts/ClusterMemberSource.js';
import { olderEpoch } from '../../core/cluster/eligibility.js';
import { describeError, raError } from '../../core/errors.js';

export interface ClusterMemberOptions {
  cluster: string;
  member: string;
  /** etcd client URLs. */
  etcd: readonly string[];
  /** The lease TTL, whole seconds in ms (2000, 10000…). */
  ttlMs: number;
  /** How much earlier than etcd we count the lease as gone. */
  marginMs: number;
  /** How often the leader key and members are read without a watch event, and the member key refreshed. */
  pollMs: number;
  /** Where this member's API is reached (advertised in its keys). */
  httpAddress: string | null;
  source: ClusterMemberSource;
  /** Handed to the source's eligibility rule. */
  limits: ClusterLimits;
  log: Logger;
  /** Called once when this member has had no keepalive success for more than ttl/2 (and again after it recovered and lost etcd again). */
  onPartition?(evidence: Record<string, unknown>): void;
  /** Called at every change of leadership as this member sees it (tests stamp the time). */
  onLeadership?(event: LeadershipEvent): void;
  /** Called after each renewal that moved the lease deadline (the owner's lease grant follows it). */
  onRenewed?(deadline: bigint): void;
  /** Called after each loop pass, whether or not its etcd calls succeeded (roles follow the leader key). */
  onPass?(): void;
}

/** A change of this member's leadership, with the monotonic time it was known. */
export interface LeadershipEvent {
  readonly leader: boolean;
  readonly epoch: number | null;
  /** process.hrtime.bigint() when the txn's answer arrived (elected) or the member stopped claiming. */
  readonly at: bigint;
  readonly reason: string;
  /** On stepping down: the lease deadline held until then (the latest it ever was for that leadership). */
  readonly deadline: bigint | null;
}

/** The leader key's value and revision, as last read. */
export interface LeaderInfo {
  readonly member: string;
  readonly httpAddress: string | null;
  readonly replicationAddress: string | null;
  /** The key's create revision. */
  readonly epoch: number;
  /** The lease that holds it (decimal string). */
  readonly lease: string;
}

/** The value of a member key. */
export interface MemberValue {
  role: 'leader' | 'replica';
  epoch: number;
  durableLsn: number;
  appliedLsn: number;
  health: ClusterMemberState['health'];
  streaming: boolean;
  httpAddress: string | null;
  replicationAddress: string | null;
  updatedAt: number;
}

/** Default member id: the host name, lowercased, made an id. */
export function defaultMemberId(): string {
  const h = os.hostname().toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '');
  return (h || 'member').slice(0, 63);
}

/** Rejects after `ms` unless `p` settles first; the timer never keeps the process alive (also used by switchover.ts). */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(raError('RA_ERR_CLUSTER_ETCD', `${what}: no answer from etcd within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

const NS_PER_MS = 1_000_000n;
/** How soon an election that waits for peers to put their keys after a vacancy looks again. */
const kFreshRetryMs = 50;

/**
 * A check run before campaigning for a free leader key (switchover.ts): a reason not to campaign,
 * or none, with the key it read and that key's mod revision ('0': absent), which the campaign's
 * txn then requires unchanged.
 */
export type CampaignGate = (limitMs: number) => Promise<{ reason: string | null; guard: { key: string; modRevision: string } | null }>;

export class ClusterMember {
  readonly prefix: string;
  readonly leaderKey: string;
  readonly memberKey: string;
  private readonly client: Etcd3;
  private readonly ttlSeconds: number;
  private lease: Lease | null = null;
  private leaseId: string | null = null;
  /** hrtime ns until which the current lease is ours by our own clock; null: no lease. */
  private deadline: bigint | null = null;
  /** hrtime ns of the last keepalive (or grant) success; null before the first. */
  private lastRenewal: bigint | null = null;
  private startedAt = process.hrtime.bigint();
  private claimed: { epoch: number; since: bigint } | null = null;
  /** Set by stepAside: no campaign before `untilNs` (hrtime), and why. */
  private aside: { untilNs: bigint; reason: string } | null = null;
  /** Set while stepAside's delete is under way: the loop may see the key gone before it returns. */
  private asideReason: string | null = null;
  private readonly history: LeadershipEvent[] = [];
  private leader: LeaderInfo | null = null;
  private peers: PeerState[] = [];
  /** Each peer's member key mod revision, as last read. */
  private peerRevisions = new Map<string, number>();
  /**
   * The etcd revision from which the leader key is known to be vacant (its delete, as the watch
   * saw it, or else the read that found it absent); null while a leader key exists. A peer counts
   * as answering in an election only if it put its member key after it: a key from before is
   * what the peer knew while the old primary was still acknowledging (a peer cut off from etcd
   * keeps its old key for up to a TTL), so its LSN may be short of what it holds now.
   */
  private vacantSince: number | null = null;
  /** The revision of the leader key's delete as the watch delivered it, until a read confirms the vacancy. */
  private deletedAt: number | null = null;
  /** hrtime ns when this member found the leader key vacant (the quick re-looks are for the first moments only). */
  private vacantAtNs = 0n;
  private lastEligibility: Eligibility = { eligible: false, reason: 'not evaluated yet' };
  private lastPut = 0;
  private lastPutValue = '';
  /** hrtime ns of the last loop pass that finished (liveness). */
  private lastPass: bigint | null = null;
  /** Switchover hooks (switchover.ts): owner grants paused, the latest grant handed out, a gate on campaigning. */
  private grantsPaused = false;
  private lastOwnerGrant: bigint | null = null;
  private campaignGate: CampaignGate | null = null;
  private partitioned = false;
  private running = false;
  private keepaliveTimer: NodeJS.Timeout | null = null;
  private pollTimer: NodeJS.Timeout | null = null;
  private deadlineTimer: NodeJS.Timeout | null = null;
  private watcher: Watcher | null = null;
  private passing = false;
  private passAgain = false;
  private renewing = false;

  constructor(private readonly o: ClusterMemberOptions) {
    this.prefix = `/recovery-agent/${o.cluster}/`;
    this.leaderKey = `${this.prefix}leader`;
    this.memberKey = `${this.prefix}members/${o.member}`;
    this.ttlSeconds = Math.round(o.ttlMs / 1000);
    this.client = new Etcd3({
      hosts: [...o.etcd],
      dialTimeout: Math.max(500, Math.floor(o.ttlMs / 3)),
      // No client-side retries nor circuit breaker: our loop retries on its own schedule, and the
      // default breaker (open 5 s after 3 failures) would refuse keepalives for longer than a short
      // TTL after an etcd blip that had already passed.
      // The watch reconnects at the poll's pace (the default backs off to 30 s; the poll covers the gap).
      faultHandling: { host: () => noop, global: noop, watchBackoff: new ConstantBackoff(o.pollMs).next() },
    });
  }

  get member(): string {
    return this.o.member;
  }

  get httpAddress(): string | null {
    return this.o.httpAddress;
  }

  /** The lease deadline (process.hrtime.bigint() ns, CLOCK_MONOTONIC); null while no lease is held. */
  leaseDeadline(): bigint | null {
    return this.deadline;
  }

  /** Seconds left until the lease deadline (0 when passed or none). */
  leaseRemainingSeconds(now = process.hrtime.bigint()): number {
    if (this.deadline === null || this.deadline <= now) return 0;
    return Number(this.deadline - now) / 1e9;
  }

  /** True only while this member holds the leader key and its deadline is still ahead: read on every call. */
  isLeader(now = process.hrtime.bigint()): boolean {
    return this.claimed !== null && this.deadline !== null && now < this.deadline;
  }

  /** The epoch this member leads, or the known leader's. */
  epoch(): number | null {
    return this.claimed?.epoch ?? this.leader?.epoch ?? null;
  }

  /** The leader key as last read (null: none). */
  knownLeader(): LeaderInfo | null {
    return this.leader;
  }

  /** The other live members' states as last read. */
  knownPeers(): readonly PeerState[] {
    return this.peers;
  }

  eligibility(): Eligibility {
    return this.lastEligibility;
  }

  /**
   * What the store's owner may be granted now (#15 item 2: the glue calls this after each renewal
   * and passes it to `ReplicationControl.grantLease`): this leadership's epoch and lease deadline;
   * null while not leading or while a switchover paused the grants (then the owner acknowledges
   * nothing once its last grant runs out). The latest grant is remembered so a switchover knows
   * when the owner can no longer acknowledge.
   */
  ownerGrant(now = process.hrtime.bigint()): { epoch: number; untilNs: bigint } | null {
    if (this.grantsPaused || !this.isLeader(now)) return null;
    const untilNs = this.deadline!;
    if (this.lastOwnerGrant === null || untilNs > this.lastOwnerGrant) this.lastOwnerGrant = untilNs;
    return { epoch: this.claimed!.epoch, untilNs };
  }

  /** Stops (true) or resumes (false) handing out owner grants (switchover.ts). */
  pauseGrants(paused: boolean): void {
    this.grantsPaused = paused;
  }

  /** The latest owner grant handed out (hrtime ns), null if none. */
  lastOwnerGrantUntil(): bigint | null {
    return this.lastOwnerGrant;
  }

  /** A check run before campaigning for a free leader key: a reason not to campaign, or null (switchover.ts). */
  setCampaignGate(gate: CampaignGate | null): void {
    this.campaignGate = gate;
  }

  /** The etcd client and this member's lease id, for a switchover's txn on the lease. */
  get etcd(): Etcd3 {
    return this.client;
  }

  currentLeaseId(): string | null {
    return this.leaseId;
  }

  /** Stops claiming at once (the switchover deleted the leader key) and runs a pass. */
  resign(reason: string): void {
    this.stepDown(reason);
    this.wake();
  }

  /**
   * Gives the leader key up because this member cannot serve as the primary (its promotion keeps
   * failing: the application will not start, the store will not open): deletes the key if it is
   * still ours (created at our epoch, on our lease), steps down, and does not campaign again for
   * `holdMs`, so another eligible member can win meanwhile instead of the cluster having a leader
   * that never becomes writable. Resolves true if the key was ours and is gone.
   */
  async stepAside(reason: string, holdMs: number): Promise<boolean> {
    const claimed = this.claimed;
    const lease = this.leaseId;
    if (claimed === null || lease === null) return false;
    // The loop's watch may see the key deleted before this txn's answer: it then steps down with
    // this reason, not as if someone else had deleted the key.
    this.asideReason = reason;
    const res = await within(
      this.client.if(this.leaderKey, 'Create', '==', claimed.epoch).and(this.leaderKey, 'Lease', '==', lease).then(this.client.delete().key(this.leaderKey)).commit(),
      Math.max(200, Math.floor(this.o.ttlMs / 3)),
      'stepping aside from the leader key',
    ).finally(() => (this.asideReason = null));
    if (!res.succeeded) return false; // no longer ours: the next pass reads who leads
    this.aside = { untilNs: process.hrtime.bigint() + BigInt(holdMs) * NS_PER_MS, reason };
    this.stepDown(`stepped aside: ${reason}`);
    this.leader = null;
    this.lastPut = 0; // publish role "replica" at once
    this.wake();
    return true;
  }

  /**
   * True while the loop has completed a pass within 3 poll intervals plus a TTL (a pass whose etcd
   * calls all time out takes about a TTL): the agent's loop runs, whether or not etcd answers.
   */
  loopAlive(now = process.hrtime.bigint()): boolean {
    if (!this.running) return false;
    const ref = this.lastPass ?? this.startedAt;
    return now - ref <= BigInt(3 * this.o.pollMs + this.o.ttlMs) * NS_PER_MS;
  }

  /** True while no keepalive has succeeded for more than ttl/2. */
  partitionedFromEtcd(): boolean {
    return this.partitioned;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = process.hrtime.bigint();
    const keepaliveMs = Math.max(100, Math.floor(this.o.ttlMs / 3));
    this.keepaliveTimer = setInterval(() => void this.renew(), keepaliveMs);
    this.pollTimer = setInterval(() => this.wake(), this.o.pollMs);
    void this.renew().then(() => this.wake());
    void this.watch();
  }

  /**
   * Stops and gives leadership up at once: revokes the lease (deleting the member key and, if
   * held, the leader key) so another member need not wait out the TTL.
   */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const t of [this.keepaliveTimer, this.pollTimer]) if (t) clearInterval(t);
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.keepaliveTimer = this.pollTimer = this.deadlineTimer = null;
    if (this.claimed) this.stepDown('the agent stops');
    this.deadline = null;
    if (this.watcher) await within(this.watcher.cancel(), this.o.ttlMs, 'cancelling the watch').catch(() => undefined);
    this.watcher = null;
    const lease = this.lease;
    this.lease = null;
    this.leaseId = null;
    if (lease) await within(lease.revoke(), this.o.ttlMs, 'revoking the lease').catch((err: unknown) => this.o.log.warn({ err: describeError(err) }, 'cluster: could not revoke the lease (it expires by itself)'));
    this.client.close();
  }

  /** One keepalive (or a grant when no lease is held), with a time limit, moving the deadline on success. */
  private async renew(): Promise<void> {
    if (!this.running || this.renewing) return;
    this.renewing = true;
    const limit = Math.max(100, Math.floor(this.o.ttlMs / 3));
    try {
      if (this.lease === null) {
        const t0 = process.hrtime.bigint();
        const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false });
        lease.on('lost', () => undefined); // never relied on (see the module doc); listened to so its emit is handled
        let id: string;
        try {
          // A whole TTL for a grant (the first one also opens the connection): the deadline counts
          // from t0 whatever the wait, so a slow grant only shortens the lease we believe in.
          id = await within(lease.grant(), this.o.ttlMs, 'granting a lease');
        } catch (err) {
          lease.release();
          throw err;
        }
        if (!this.running) {
          await lease.revoke().catch(() => undefined);
          return;
        }
        this.lease = lease;
        this.leaseId = id;
        this.renewed(t0, this.ttlSeconds);
        this.o.log.info({ lease: id, ttl: this.ttlSeconds }, 'cluster: lease granted');
        this.wake();
        return;
      }
      const lease = this.lease;
      const t0 = process.hrtime.bigint();
      const res = await within(lease.keepaliveOnce({ deadline: Date.now() + limit }), limit, 'lease keepalive');
      if (lease !== this.lease) return; // replaced while we waited
      this.renewed(t0, Number(res.TTL));
    } catch (err) {
      this.o.log.debug({ err: describeError(err) }, 'cluster: lease renewal failed');
      if (err instanceof EtcdLeaseInvalidError) {
        // etcd says the lease is gone: whatever our clock said, it is no longer ours.
        this.abandonLease('etcd says the lease has expired');
      }
    } finally {
      this.renewing = false;
      this.checkPartition();
    }
  }

  /** A renewal succeeded for a request sent at t0: the lease lives at least until t0 + ttl. */
  private renewed(t0: bigint, ttlSeconds: number): void {
    if (this.deadline !== null && process.hrtime.bigint() >= this.deadline) {
      // Too late: a leader whose deadline passed has stepped down (or must now), and a late
      // answer does not bring the claim back — the lease is given up and a new one granted.
      this.abandonLease('the lease deadline passed before a keepalive answered');
      return;
    }
    const next = t0 + BigInt(ttlSeconds * 1000 - this.o.marginMs) * NS_PER_MS;
    // A late answer to an older request must not move the deadline back.
    if (this.deadline === null || next > this.deadline) this.deadline = next;
    this.lastRenewal = t0;
    this.armDeadline();
    this.o.onRenewed?.(this.deadline);
  }

  /** A timer at the deadline: if nothing renewed the lease by then, step down and start over. */
  private armDeadline(): void {
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    if (this.deadline === null || !this.running) return;
    const ms = Number(this.deadline - process.hrtime.bigint()) / 1e6;
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      if (this.deadline !== null && process.hrtime.bigint() >= this.deadline) this.abandonLease('the lease deadline passed with no keepalive success');
    }, Math.max(0, Math.ceil(ms)) + 1);
    this.deadlineTimer.unref();
  }

  /** The lease is no longer ours: stop claiming, revoke it if it still exists (best effort), and grant anew later. */
  private abandonLease(reason: string): void {
    if (this.claimed) this.stepDown(reason);
    const lease = this.lease;
    this.lease = null;
    this.leaseId = null;
    this.deadline = null;
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    if (lease) {
      // Revoking deletes the leader key only if the lease still exists; a lease etcd already
      // expired took the key with it.
      void within(lease.revoke(), Math.max(200, this.o.ttlMs / 3), 'revoking the lease').catch(() => undefined);
    }
  }

  private stepDown(reason: string): void {
    const was = this.claimed;
    this.claimed = null;
    if (!was) return;
    const at = process.hrtime.bigint();
    this.o.log.warn({ epoch: was.epoch, reason }, 'cluster: no longer the leader');
    this.record({ leader: false, epoch: was.epoch, at, reason, deadline: this.deadline });
  }

  private record(e: LeadershipEvent): void {
    this.history.push(e);
    if (this.history.length > 20) this.history.shift();
    this.o.onLeadership?.(e);
  }

  /** The last leadership changes (at most 20), oldest first. */
  leadershipHistory(): readonly LeadershipEvent[] {
    return this.history;
  }

  private checkPartition(): void {
    if (!this.running) return;
    const now = process.hrtime.bigint();
    const since = this.lastRenewal ?? this.startedAt;
    const silentMs = Number(now - since) / 1e6;
    // Before the first success a whole TTL (the first call also opens the connection).
    const cut = silentMs > (this.lastRenewal === null ? this.o.ttlMs : this.o.ttlMs / 2);
    if (cut && !this.partitioned) {
      this.partitioned = true;
      this.o.log.error({ silentMs: Math.round(silentMs), etcd: this.o.etcd }, 'cluster: no keepalive success for more than half the TTL: cut off from etcd');
      this.o.onPartition?.({ member: this.o.member, cluster: this.o.cluster, etcd: [...this.o.etcd], silentMs: Math.round(silentMs), wasLeader: this.claimed !== null });
    } else if (!cut && this.partitioned) {
      this.partitioned = false;
      this.o.log.info('cluster: etcd reachable again');
    }
  }

  /** Asks for a loop pass now (coalesced: one runs at a time, and one more after it if asked meanwhile). */
  private wake(): void {
    if (!this.running) return;
    if (this.passing) {
      this.passAgain = true;
      return;
    }
    this.passing = true;
    void (async () => {
      try {
        do {
          this.passAgain = false;
          await this.pass().catch((err: unknown) => this.o.log.debug({ err: describeError(err) }, 'cluster: loop pass failed'));
        } while (this.passAgain && this.running);
      } finally {
        this.passing = false;
      }
    })();
  }

  /** One pass: publish our state, read the leader and the members, campaign if we may. */
  private async pass(): Promise<void> {
    const limit = Math.max(200, Math.floor(this.o.ttlMs / 3));
    try {
      await this.publish(limit);
      if (await this.readLeader(limit)) {
        this.lastPut = 0; // what this member holds now, for the election the vacancy opens
        await this.publish(limit);
      }
      await this.readPeers(limit);
      await this.campaign(limit);
    } finally {
      this.lastPass = process.hrtime.bigint();
      this.checkPartition();
      this.o.onPass?.();
    }
  }

  private value(): MemberValue {
    const s = this.o.source.state();
    const leading = this.isLeader();
    return {
      role: leading ? 'leader' : 'replica',
      epoch: leading ? this.claimed!.epoch : s.epoch,
      durableLsn: s.durableLsn,
      appliedLsn: s.appliedLsn,
      health: s.health,
      streaming: s.streaming,
      httpAddress: this.o.httpAddress,
      replicationAddress: s.replicationAddress,
      updatedAt: Date.now(),
    };
  }

  /** Puts the member key under the lease: every second, or at once when something but the time changed. */
  private async publish(limit: number): Promise<void> {
    if (this.leaseId === null || !this.isDeadlineValid()) return;
    const v = this.value();
    const { updatedAt: _, ...rest } = v;
    const same = JSON.stringify(rest);
    if (same === this.lastPutValue && Date.now() - this.lastPut < 1000) return;
    await within(this.client.put(this.memberKey).value(JSON.stringify(v)).lease(this.leaseId).exec(), limit, 'putting the member key');
    this.lastPut = Date.now();
    this.lastPutValue = same;
  }

  private isDeadlineValid(now = process.hrtime.bigint()): boolean {
    return this.deadline !== null && now < this.deadline;
  }

  /** Reads the leader key from etcd now (not the last pass's copy), within `limitMs`. */
  async fetchLeader(limitMs = Math.max(200, Math.floor(this.o.ttlMs / 3))): Promise<LeaderInfo | null> {
    return (await this.readLeaderKey(limitMs)).leader;
  }

  private async readLeaderKey(limitMs: number): Promise<{ leader: LeaderInfo | null; exists: boolean; revision: number }> {
    const res = await within(this.client.get(this.leaderKey).exec(), limitMs, 'reading the leader key');
    const kv = res.kvs[0];
    return { leader: kv ? parseLeader(kv.value.toString('utf8'), Number(kv.create_revision), kv.lease) : null, exists: kv !== undefined, revision: Number(res.header.revision) };
  }

  /** Reads the leader key; true when it was just found vacant (this member then puts its key again at once). */
  private async readLeader(limit: number): Promise<boolean> {
    const read = await this.readLeaderKey(limit);
    this.leader = read.leader;
    let newlyVacant = false;
    if (read.exists) {
      this.vacantSince = null;
      this.deletedAt = null;
    } else if (this.vacantSince === null) {
      // The delete's own revision when the watch gave it (peers that saw it at once and put their
      // keys count), else this read's: stricter, and a peer's next put (within a second) counts.
      this.vacantSince = this.deletedAt !== null && this.deletedAt <= read.revision ? this.deletedAt : read.revision;
      this.deletedAt = null;
      this.vacantAtNs = process.hrtime.bigint();
      newlyVacant = true;
    }
    if (this.claimed) {
      const mine = this.leader !== null && this.leader.epoch === this.claimed.epoch && this.leader.lease === this.leaseId;
      if (!mine) this.stepDown(this.leader ? `the leader key now belongs to ${this.leader.member} (epoch ${this.leader.epoch})` : this.asideReason !== null ? `stepped aside: ${this.asideReason}` : 'the leader key was deleted');
    } else if (this.leader !== null && this.leaseId !== null && this.leader.lease === this.leaseId) {
      // A key on our lease that we never claimed: a campaign txn etcd applied but whose answer
      // came too late (a slow etcd, a leader change mid-txn). Our keepalives would keep it alive
      // and nobody could ever win; we did not act on it, so we give it up, guarded to that key.
      const { epoch } = this.leader;
      this.o.log.warn({ epoch }, 'cluster: the leader key is on our lease but was never claimed (a late campaign answer): deleting it');
      await within(
        this.client.if(this.leaderKey, 'Create', '==', epoch).and(this.leaderKey, 'Lease', '==', this.leaseId).then(this.client.delete().key(this.leaderKey)).commit(),
        limit,
        'deleting an unclaimed leader key',
      );
      this.leader = null;
    }
    return newlyVacant;
  }

  private async readPeers(limit: number): Promise<void> {
    const res = await within(this.client.getAll().prefix(`${this.prefix}members/`).exec(), limit, 'reading the members');
    const peers: PeerState[] = [];
    const revisions = new Map<string, number>();
    for (const kv of res.kvs) {
      const member = kv.key.toString('utf8').slice(`${this.prefix}members/`.length);
      if (member === this.o.member) continue;
      const p = parseMember(member, kv.value.toString('utf8'));
      if (!p) continue;
      peers.push(p);
      revisions.set(member, Number(kv.mod_revision));
    }
    peers.sort((a, b) => a.member.localeCompare(b.member));
    this.peers = peers;
    this.peerRevisions = revisions;
  }

  /** Takes the leader key if it is free, our deadline valid, and the source says we may. */
  private async campaign(limit: number): Promise<void> {
    if (this.leader !== null || this.claimed !== null || this.leaseId === null) return;
    if (this.aside !== null) {
      if (process.hrtime.bigint() < this.aside.untilNs) {
        this.lastEligibility = { eligible: false, reason: `stepped aside: ${this.aside.reason}` };
        return;
      }
      this.aside = null;
    }
    const gate = this.campaignGate ? await this.campaignGate(limit) : null;
    if (gate?.reason) {
      this.lastEligibility = { eligible: false, reason: gate.reason };
      return;
    }
    // Only peers heard since the leader key went vacant answer for the election (see vacantSince);
    // every peer still counts against a candidate whose log is of an older epoch.
    const since = this.vacantSince;
    const fresh = since === null ? this.peers : this.peers.filter((p) => (this.peerRevisions.get(p.member) ?? 0) > since);
    const older = olderEpoch(this.o.source.state().epoch, this.peers);
    this.lastEligibility = older !== null
      ? { eligible: false, reason: older }
      // `size` is what the config says; a cluster seen larger counts as larger (a size set too
      // small would shrink the sync quorum below what the pigeonhole needs).
      : this.o.source.eligible(fresh, { ...this.o.limits, members: Math.max(this.o.limits.members, this.peers.length + 1) });
    if (!this.lastEligibility.eligible) {
      const stale = this.peers.filter((p) => !fresh.includes(p)).map((p) => p.member);
      if (stale.length > 0) {
        this.lastEligibility = { eligible: false, reason: `${this.lastEligibility.reason} (not heard since the leader key went: ${stale.join(', ')})` };
        // They put their keys within a moment of seeing the vacancy: look again soon, not at the
        // next poll (for the first moments only: a peer cut off from etcd stays unheard).
        if (process.hrtime.bigint() - this.vacantAtNs < BigInt(this.o.ttlMs) * NS_PER_MS) setTimeout(() => this.wake(), kFreshRetryMs).unref();
      }
      return;
    }
    // Campaign only with most of a lease ahead: a win must leave time to act before the deadline.
    if (this.leaseRemainingSeconds() * 1000 < this.o.ttlMs / 2) return;
    const leaseId = this.leaseId;
    const s = this.o.source.state();
    const value = JSON.stringify({ member: this.o.member, httpAddress: this.o.httpAddress, replicationAddress: s.replicationAddress });
    const res = await within(
      // The gate's key as it read it, in the same txn: a switchover that began after the gate's
      // read (its txn frees the leader key and writes that key together) makes this one fail.
      (gate?.guard ? this.client.if(this.leaderKey, 'Create', '==', 0).and(gate.guard.key, 'Mod', '==', gate.guard.modRevision) : this.client.if(this.leaderKey, 'Create', '==', 0))
        .then(this.client.put(this.leaderKey).value(value).lease(leaseId))
        .commit(),
      limit,
      'campaigning for the leader key',
    );
    const at = process.hrtime.bigint();
    if (!res.succeeded) return; // someone else was faster: the next pass reads who
    const epoch = Number(res.header.revision);
    if (leaseId !== this.leaseId || !this.isDeadlineValid(at)) {
      // Our lease went while the txn was in flight: the key dies with it (or was revoked).
      this.o.log.warn({ epoch }, 'cluster: won the leader key with a lease no longer ours; not claiming');
      return;
    }
    this.claimed = { epoch, since: at };
    this.leader = { member: this.o.member, httpAddress: this.o.httpAddress, replicationAddress: s.replicationAddress, epoch, lease: leaseId };
    this.o.log.info({ epoch, reason: this.lastEligibility.reason }, 'cluster: elected leader');
    this.record({ leader: true, epoch, at, reason: this.lastEligibility.reason, deadline: this.deadline });
    this.lastPut = 0; // publish role "leader" at once
    this.passAgain = true;
  }

  /** Watches the leader key so a change is seen at once; the poll covers a watch that dies silently. */
  private async watch(): Promise<void> {
    try {
      const w = await this.client.watch().key(this.leaderKey).create();
      if (!this.running) {
        await w.cancel();
        return;
      }
      this.watcher = w;
      w.on('put', () => this.wake());
      w.on('delete', (kv) => {
        this.deletedAt = Number(kv.mod_revision);
        this.wake();
      });
      w.on('error', (err) => this.o.log.debug({ err: describeError(err) }, 'cluster: leader watch error (the poll goes on)'));
    } catch (err) {
      this.o.log.debug({ err: describeError(err) }, 'cluster: cannot watch the leader key (the poll goes on)');
    }
  }
}

function parseLeader(raw: string, epoch: number, lease: string): LeaderInfo | null {
  try {
    const v = JSON.parse(raw) as Partial<LeaderInfo>;
    if (typeof v.member !== 'string') return null;
    return { member: v.member, httpAddress: typeof v.httpAddress === 'string' ? v.httpAddress : null, replicationAddress: typeof v.replicationAddress === 'string' ? v.replicationAddress : null, epoch, lease };
  } catch {
    return null;
  }
}

function parseMember(member: string, raw: string): PeerState | null {
  try {
    const v = JSON.parse(raw) as Partial<MemberValue>;
    const num = (x: unknown): number => (typeof x === 'number' && Number.isFinite(x) ? x : 0);
    return {
      member,
      role: v.role === 'leader' ? 'leader' : 'replica',
      epoch: num(v.epoch),
      durableLsn: num(v.durableLsn),
      appliedLsn: num(v.appliedLsn),
      health: v.health === 'ok' || v.health === 'degraded' ? v.health : 'failed',
      streaming: v.streaming === true,
      replicationAddress: typeof v.replicationAddress === 'string' ? v.replicationAddress : null,
      httpAddress: typeof v.httpAddress === 'string' ? v.httpAddress : null,
      updatedAt: num(v.updatedAt),
    };
  } catch {
    return null;
  }
}

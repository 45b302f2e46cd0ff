/**
 * A planned switchover (`POST /cluster/switchover`, `recovery-agent cluster switchover --to M`;
 * design: DESIGN.md "Switchover"): the leader hands leadership to a chosen replica without losing
 * an acknowledged commit and with no outage beyond the wait.
 *
 * On the leader, in order (each step stamped, shown in `GET /cluster` → `switchover`):
 * 1. **Refuse early**: not the leader (the answer names who is), the target unknown (no live
 *    member key), the target itself, or a target that is not streaming or has failed.
 * 2. **Pause the owner's grants** (`member.pauseGrants`): the owner acknowledges commits only
 *    until the last deadline it was granted, so once that has passed no commit can be
 *    acknowledged and our durable LSN holds every acknowledged commit.
 * 3. **Wait, bounded by the timeout**, until the last grant ran out *and* the target's published
 *    durable LSN ≥ ours. Not within the timeout: lift the pause and stay leader (refused).
 * 4. **Resign**: one txn on our lease — if the leader key is still ours (its create revision is
 *    our epoch, its lease ours) delete it and put the switchover key naming the target (under our
 *    lease, with a wall-clock bound). Every member's campaign gate reads that key: only the
 *    target may campaign while it stands; this member also holds itself ineligible.
 * 5. **Wait for the takeover** (bounded): the target's leader key, with a larger epoch (etcd's
 *    revision only grows). Then the switchover key is deleted and this member follows as a
 *    replica. Should the target not take over in time, the key and the hold are lifted and any
 *    eligible member (this one included) may win the next election.
 */
import type { Logger } from 'pino';
import type { ClusterMemberSource } from '../../core/contracts/ClusterMemberSource.js';
import { describeError, raError, RecoveryAgentError } from '../../core/errors.js';
import { within, type CampaignGate, type ClusterMember } from './member.js';

export interface SwitchoverStep {
  /** Wall-clock ISO time. */
  readonly at: string;
  readonly step: string;
}

/** A switchover's record, as `GET /cluster` and `POST /cluster/switchover` show it. */
export interface SwitchoverRecord {
  from: string;
  to: string;
  /** The epoch the old leader held. */
  fromEpoch: number;
  state: 'running' | 'done' | 'refused';
  startedAt: string;
  endedAt: string | null;
  steps: SwitchoverStep[];
  /** The new leader's epoch once it took over. */
  toEpoch: number | null;
  error: { code: string; message: string } | null;
}

/** Why a switchover was refused (`details.kind` of its error; the route maps it to a status). */
export type RefusalKind = 'not-leader' | 'unknown-member' | 'busy' | 'not-streaming' | 'not-caught-up' | 'lost-leadership' | 'no-takeover';

/** The value of the switchover key. */
interface SwitchoverKey {
  from: string;
  to: string;
  epoch: number;
  /** Wall-clock ms after which the key no longer holds anyone back (a bound should the old leader hang). */
  untilMs: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class Switchover {
  readonly key: string;
  private current: SwitchoverRecord | null = null;
  private running = false;
  /** While this member resigned for a switchover: Date.now() until which it does not campaign, and for whom. */
  private hold: { untilMs: number; to: string } | null = null;

  constructor(
    private readonly m: ClusterMember,
    private readonly source: ClusterMemberSource,
    private readonly o: { ttlMs: number; pollMs: number; log: Logger },
  ) {
    this.key = `${m.prefix}switchover`;
    m.setCampaignGate((limit) => this.gate(limit));
  }

  /** The last switchover run on this member (null: none since the agent started). */
  last(): SwitchoverRecord | null {
    return this.current;
  }

  /**
   * A reason not to campaign for a free leader key, or null: this member resigned for a
   * switchover still under way, or the switchover key names another member.
   */
  private async gate(limit: number): ReturnType<CampaignGate> {
    if (this.hold !== null) {
      if (Date.now() < this.hold.untilMs) return { reason: `resigned in a switchover to ${this.hold.to}`, guard: null };
      this.hold = null;
    }
    const res = await within(this.m.etcd.get(this.key).exec(), limit, 'reading the switchover key');
    const kv = res.kvs[0];
    // The campaign requires the key unchanged since this read (a switchover begun in between
    // would otherwise lose its leader key to whoever campaigned on the older read).
    const guard = { key: this.key, modRevision: kv ? String(kv.mod_revision) : '0' };
    const v = kv ? parseKey(kv.value.toString('utf8')) : null;
    if (v === null || v.to === this.m.member || Date.now() >= v.untilMs) return { reason: null, guard };
    return { reason: `a switchover from ${v.from} to ${v.to} is under way`, guard };
  }

  /** True when the switchover key records `leader` (member and epoch) as having handed over: a planned loss. */
  async handedOver(leader: { member: string; epoch: number }): Promise<boolean> {
    const raw = await within(this.m.etcd.get(this.key).string(), Math.max(200, Math.floor(this.o.ttlMs / 3)), 'reading the switchover key');
    const v = raw === null ? null : parseKey(raw);
    return v !== null && v.from === leader.member && v.epoch === leader.epoch;
  }

  /**
   * Runs a switchover to `to`, bounded by `timeoutMs` for the catch-up and again for the takeover.
   * Resolves with the record when the target leads; throws RA_ERR_CLUSTER_NOT_LEADER or
   * RA_ERR_CLUSTER_SWITCHOVER (`details.kind`, `details.switchover`) otherwise.
   */
  async run(to: string, timeoutMs: number): Promise<SwitchoverRecord> {
    const m = this.m;
    if (!m.isLeader()) {
      const l = m.knownLeader();
      throw raError('RA_ERR_CLUSTER_NOT_LEADER', `${m.member} is not the leader${l ? `: ${l.member} is (epoch ${l.epoch}${l.httpAddress ? `, at ${l.httpAddress}` : ''})` : ' and no leader is known now'}`, {
        details: { kind: 'not-leader', leader: l ? { member: l.member, epoch: l.epoch, httpAddress: l.httpAddress } : null },
      });
    }
    if (this.running) throw refusal('busy', `a switchover to ${this.current?.to} is already under way`, this.current);
    if (to === m.member) throw refusal('unknown-member', `${to} is already the leader`, null);
    const peer = m.knownPeers().find((p) => p.member === to);
    if (!peer) {
      const live = m.knownPeers().map((p) => p.member);
      throw refusal('unknown-member', `no live member ${to} in the cluster (live: ${[m.member, ...live].join(', ')})`, null);
    }
    if (!peer.streaming || peer.health === 'failed') {
      throw refusal('not-streaming', `${to} cannot take over: ${peer.health === 'failed' ? 'its health is failed' : 'it is not streaming from the leader'}`, null);
    }

    const epoch = m.epoch()!;
    const rec: SwitchoverRecord = { from: m.member, to, fromEpoch: epoch, state: 'running', startedAt: new Date().toISOString(), endedAt: null, steps: [], toEpoch: null, error: null };
    this.current = rec;
    this.running = true;
    const step = (s: string): void => {
      rec.steps.push({ at: new Date().toISOString(), step: s });
      this.o.log.info({ to, step: s }, 'cluster: switchover');
    };
    const end = (state: SwitchoverRecord['state'], err?: RecoveryAgentError): void => {
      rec.state = state;
      rec.endedAt = new Date().toISOString();
      if (err) rec.error = { code: err.code, message: err.message };
    };
    try {
      m.pauseGrants(true);
      step(`owner grants paused (the owner acknowledges no commit after its last grant)`);
      await this.catchUp(rec, timeoutMs, step);
      await this.resign(rec, timeoutMs, step);
      await this.takeover(rec, timeoutMs, step);
      end('done');
      return rec;
    } catch (err) {
      const e = err instanceof RecoveryAgentError ? err : raError('RA_ERR_CLUSTER_SWITCHOVER', `switchover to ${to} failed: ${describeError(err)}`, { cause: err, details: { kind: 'lost-leadership' } });
      if (m.isLeader()) step(`resumed: grants lifted, ${m.member} stays the leader`);
      end('refused', e);
      throw e.code === 'RA_ERR_CLUSTER_SWITCHOVER' ? e : refusal('lost-leadership', e.message, rec, e);
    } finally {
      m.pauseGrants(false);
      this.running = false;
    }
  }

  /** Waits until the owner's last grant ran out and the target's durable LSN reaches ours. */
  private async catchUp(rec: SwitchoverRecord, timeoutMs: number, step: (s: string) => void): Promise<void> {
    const m = this.m;
    const until = Date.now() + timeoutMs;
    let grantOver = false;
    for (;;) {
      if (!m.isLeader()) throw refusal('lost-leadership', `${m.member} lost its leadership during the switchover`, rec);
      const g = m.lastOwnerGrantUntil();
      if (!grantOver && (g === null || process.hrtime.bigint() >= g)) {
        grantOver = true;
        step(g === null ? 'no owner grant outstanding' : 'the owner\'s last grant ran out: no commit can be acknowledged');
      }
      const ours = this.source.state().durableLsn;
      const peer = m.knownPeers().find((p) => p.member === rec.to);
      if (grantOver && peer && peer.streaming && peer.health !== 'failed' && peer.durableLsn >= ours) {
        step(`${rec.to} caught up: its durable LSN ${peer.durableLsn} ≥ the leader's ${ours}`);
        return;
      }
      if (Date.now() >= until) {
        const why = !peer ? `${rec.to} is no longer a live member` : !peer.streaming ? `${rec.to} stopped streaming` : !grantOver ? 'the owner\'s last grant had not run out' : `its durable LSN ${peer.durableLsn} < the leader's ${ours}`;
        throw refusal('not-caught-up', `${rec.to} did not catch up within ${timeoutMs} ms (${why}); ${m.member} resumes as the leader`, rec);
      }
      await sleep(Math.min(100, this.o.pollMs));
    }
  }

  /** Deletes the leader key in a txn on our lease, naming the target in the switchover key. */
  private async resign(rec: SwitchoverRecord, timeoutMs: number, step: (s: string) => void): Promise<void> {
    const m = this.m;
    const lease = m.currentLeaseId();
    if (!m.isLeader() || lease === null) throw refusal('lost-leadership', `${m.member} lost its leadership during the switchover`, rec);
    const untilMs = Date.now() + timeoutMs;
    this.hold = { untilMs, to: rec.to };
    const value: SwitchoverKey = { from: m.member, to: rec.to, epoch: rec.fromEpoch, untilMs };
    const limit = Math.max(200, Math.floor(this.o.ttlMs / 3));
    let res;
    try {
      res = await within(
        m.etcd
          .if(m.leaderKey, 'Create', '==', rec.fromEpoch)
          .and(m.leaderKey, 'Lease', '==', lease)
          .then(m.etcd.delete().key(m.leaderKey), m.etcd.put(this.key).value(JSON.stringify(value)).lease(lease))
          .commit(),
        limit,
        'resigning the leader key',
      );
    } catch (err) {
      // Unknown outcome: the next pass reads the leader key and steps down if it is gone.
      this.hold = null;
      throw refusal('lost-leadership', `could not resign: ${describeError(err)}`, rec);
    }
    if (!res.succeeded) {
      this.hold = null;
      throw refusal('lost-leadership', `the leader key is no longer ${m.member}'s (epoch ${rec.fromEpoch})`, rec);
    }
    m.resign(`switchover to ${rec.to}`);
    step(`resigned: leader key of epoch ${rec.fromEpoch} deleted; ${m.member} holds itself ineligible and only ${rec.to} may campaign`);
  }

  /** Waits for the target's leader key; then expires the switchover key (kept as the record of the handover). */
  private async takeover(rec: SwitchoverRecord, timeoutMs: number, step: (s: string) => void): Promise<void> {
    const m = this.m;
    const until = Date.now() + timeoutMs;
    try {
      for (;;) {
        const l = m.knownLeader();
        if (l !== null && l.epoch > rec.fromEpoch) {
          if (l.member !== rec.to) throw refusal('no-takeover', `${l.member} took over (epoch ${l.epoch}) instead of ${rec.to}`, rec);
          rec.toEpoch = l.epoch;
          step(`${rec.to} leads at epoch ${l.epoch}; ${m.member} follows`);
          return;
        }
        if (Date.now() >= until) throw refusal('no-takeover', `${rec.to} did not take over within ${timeoutMs} ms; any eligible member may now win the election`, rec);
        await sleep(Math.min(100, this.o.pollMs));
      }
    } finally {
      this.hold = null;
      const limit = Math.max(200, Math.floor(this.o.ttlMs / 3));
      // Kept as the record of the last handover, expired (it holds no one back any more), so
      // members that see the leader key change later still know it was planned (failover.ts).
      const done: SwitchoverKey = { from: m.member, to: rec.to, epoch: rec.fromEpoch, untilMs: Date.now() };
      await within(m.etcd.put(this.key).value(JSON.stringify(done)).exec(), limit, 'expiring the switchover key').catch((err: unknown) =>
        this.o.log.warn({ err: describeError(err) }, 'cluster: could not expire the switchover key (it no longer holds anyone back after its bound)'),
      );
    }
  }
}

function refusal(kind: RefusalKind, message: string, rec: SwitchoverRecord | null, cause?: unknown): RecoveryAgentError {
  return raError('RA_ERR_CLUSTER_SWITCHOVER', message, { cause, details: { kind, switchover: rec } });
}

function parseKey(raw: string): SwitchoverKey | null {
  try {
    const v = JSON.parse(raw) as Partial<SwitchoverKey>;
    if (typeof v.to !== 'string' || typeof v.from !== 'string' || typeof v.untilMs !== 'number') return null;
    return { from: v.from, to: v.to, epoch: typeof v.epoch === 'number' ? v.epoch : 0, untilMs: v.untilMs };
  } catch {
    return null;
  }
}

/**
 * The cluster drives replication (#15 item 3; DESIGN.md "Roles"): what the leader key says, this
 * member's store becomes, through the `ReplicationControl` contract the replication plugin
 * provides.
 *
 * - This member leads (its own clock says so) → `promote(store, epoch)`, once per epoch, under a
 *   time limit; then, after every keepalive that moved the lease deadline, `grantLease(store,
 *   epoch, deadline)`: the owner acknowledges commits only until the deadline this member holds,
 *   so an owner whose agent died or was cut off from etcd stops acknowledging by itself.
 * - Another member leads → `follow(store, its replicationAddress, epoch)`, once per leader and
 *   epoch.
 * - A step that failed is retried after `retryMs` while it is still the right step; every step,
 *   its outcome and error are in `GET /cluster` (`self.roles`), so what blocks a failover shows.
 *
 * Nothing here waits without a limit: the steps carry `timeoutMs`, and the loop that calls
 * `reconcile` never awaits them (one step runs at a time; the next pass looks again).
 */
import type { Logger } from 'pino';
import type { ReplicationControl } from '../../core/contracts/ReplicationControl.js';
import { describeError } from '../../core/errors.js';
import type { LeaderInfo } from './member.js';

/** How soon a grant the owner could not take is tried again (see retryGrant). */
const kGrantRetryMs = 20;
/** Failed promotions of one epoch before the member gives the leader key up, and for how long. */
const kStepAsideAfter = 3;
const kStepAsideHoldMs = 10_000;

/** What the driver reads of the member (ClusterMember; tests pass a stand-in). */
export interface LeadershipView {
  readonly member: string;
  isLeader(): boolean;
  epoch(): number | null;
  knownLeader(): LeaderInfo | null;
  leaseDeadline(): bigint | null;
  /**
   * The grant to hand the owner now (the member's deadline), or null while a switchover pauses
   * grants (switchover.ts) or it does not lead; it remembers what it handed out, so a switchover
   * waits for the last grant to run out. Absent (stand-ins): the deadline as renewed.
   */
  ownerGrant?(): { epoch: number; untilNs: bigint } | null;
  /** Gives the leader key up and holds off campaigning for `holdMs` (ClusterMember.stepAside). */
  stepAside?(reason: string, holdMs: number): Promise<boolean>;
}

/** One role change, as `GET /cluster` shows it. */
export interface RoleStep {
  readonly action: 'promote' | 'follow';
  readonly epoch: number;
  /** follow: the leader's replication address. */
  readonly target: string | null;
  state: 'running' | 'done' | 'failed';
  readonly startedAt: number;
  finishedAt: number | null;
  error: string | null;
  /** Tries of this step (same action, epoch and target) so far. */
  readonly attempt: number;
}

export interface RoleDriverOptions {
  control: ReplicationControl;
  store: string;
  /** This member's id: its name as a replica of whichever member leads (unique in the cluster). */
  memberId: string;
  view: LeadershipView;
  /** Each promote / follow's time limit. */
  timeoutMs: number;
  /** How long after a failed step the same step is tried again. */
  retryMs: number;
  /**
   * After this many failed promotions in a row for one epoch the member steps aside (gives the
   * leader key up) for `stepAsideHoldMs`, so a member that can serve may lead instead.
   */
  stepAsideAfter?: number;
  stepAsideHoldMs?: number;
  log: Logger;
}

/** The roles section of `GET /cluster`. */
export interface RolesDoc {
  store: string;
  /** The store is the primary of the epoch this member leads (its owner serves it): /primary may answer 200. */
  writable: boolean;
  step: RoleStep | null;
  lastGrant: { at: number; epoch: number; untilNs: string; error: string | null } | null;
}

export class RoleDriver {
  private step: RoleStep | null = null;
  private busy = false;
  /** Abandons the running step (reconcile, when the leader key calls for another). */
  private abort: AbortController | null = null;
  /** The epoch this store was promoted to here (the promote resolved); null: not the primary. */
  private primaryOf: number | null = null;
  private granting = false;
  private pendingGrant: bigint | null = null;
  private lastGrant: RolesDoc['lastGrant'] = null;
  private grantRetry: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly o: RoleDriverOptions) {}

  /** True while this member leads and its store is the primary of that epoch here. */
  writable(): boolean {
    return this.o.view.isLeader() && this.primaryOf !== null && this.primaryOf === this.o.view.epoch();
  }

  doc(): RolesDoc {
    return { store: this.o.store, writable: this.writable(), step: this.step ? { ...this.step } : null, lastGrant: this.lastGrant };
  }

  stop(): void {
    this.stopped = true;
    if (this.grantRetry !== null) clearTimeout(this.grantRetry);
  }

  /** After each loop pass: starts the step the leader key calls for, if it is not done or running. */
  reconcile(): void {
    if (this.stopped) return;
    const want = this.wanted();
    if (this.busy) {
      // A step the leader key no longer calls for (a newer epoch, another leader) is abandoned,
      // so it does not hold the current one back for its whole time limit.
      const s = this.step;
      if (want !== null && s !== null && (want.action !== s.action || want.epoch !== s.epoch || want.target !== s.target)) this.abort?.abort();
      return;
    }
    if (want !== null) this.begin(want.action, want.epoch, want.target);
  }

  /** The step the leader key calls for now, or null (done, or nothing to do). */
  private wanted(): { action: RoleStep['action']; epoch: number; target: string | null } | null {
    const v = this.o.view;
    if (v.isLeader()) {
      const epoch = v.epoch();
      if (epoch === null || this.primaryOf === epoch) return null;
      return { action: 'promote', epoch, target: null };
    }
    const leader = v.knownLeader();
    // No leader, or the key still names us after our deadline passed (it dies with the lease).
    if (leader === null || leader.member === v.member) return null;
    if (leader.replicationAddress === null) return null;
    return { action: 'follow', epoch: leader.epoch, target: leader.replicationAddress };
  }

  /** After each renewal: the owner may acknowledge until the new deadline, if this member still leads that epoch. */
  renewed(deadline: bigint): void {
    if (!this.writable()) return;
    const g = this.o.view.ownerGrant ? this.o.view.ownerGrant() : { untilNs: deadline };
    if (g === null) return;
    this.pendingGrant = g.untilNs;
    if (!this.granting) void this.grant();
  }

  private async grant(): Promise<void> {
    this.granting = true;
    try {
      while (this.pendingGrant !== null && this.writable()) {
        const until = this.pendingGrant;
        this.pendingGrant = null;
        const epoch = this.primaryOf!;
        try {
          await this.o.control.grantLease(this.o.store, epoch, until);
          this.lastGrant = { at: Date.now(), epoch, untilNs: until.toString(), error: null };
        } catch (err) {
          // The owner then stops acknowledging at the last deadline it got: safe, and visible.
          const first = this.lastGrant?.error == null;
          this.lastGrant = { at: Date.now(), epoch, untilNs: until.toString(), error: describeError(err) };
          if (first) this.o.log.warn({ store: this.o.store, epoch, err: describeError(err) }, 'cluster: could not grant the store\'s owner its lease (tried again every 20 ms while it is valid)');
          this.retryGrant(until);
        }
      }
    } finally {
      this.granting = false;
    }
  }

  /**
   * A grant the owner could not take (it is restarting: its control socket is not served yet) is
   * tried again shortly while its deadline is still ahead, rather than at the next renewal: an
   * application restarted in place waits for a grant before it acknowledges its first commit,
   * and the next renewal can be most of a keepalive interval away.
   */
  private retryGrant(until: bigint): void {
    if (this.grantRetry !== null || this.stopped) return;
    this.grantRetry = setTimeout(() => {
      this.grantRetry = null;
      if (this.stopped || process.hrtime.bigint() >= until) return;
      this.pendingGrant ??= until;
      if (!this.granting) void this.grant();
    }, kGrantRetryMs);
    this.grantRetry.unref();
  }

  private begin(action: RoleStep['action'], epoch: number, target: string | null): void {
    const prev = this.step;
    const same = prev !== null && prev.action === action && prev.epoch === epoch && prev.target === target;
    if (same && prev.state === 'done') return;
    if (same && prev.state === 'failed' && Date.now() - (prev.finishedAt ?? 0) < this.o.retryMs) return;
    const step: RoleStep = { action, epoch, target, state: 'running', startedAt: Date.now(), finishedAt: null, error: null, attempt: same ? prev.attempt + 1 : 1 };
    this.step = step;
    this.busy = true;
    if (action === 'promote') this.primaryOf = null;
    this.o.log.info({ store: this.o.store, action, epoch, target, attempt: step.attempt }, `cluster: ${action === 'promote' ? 'promoting this member\'s store' : `following ${target}`}`);
    const abort = (this.abort = new AbortController());
    const opts = { timeoutMs: this.o.timeoutMs, signal: abort.signal, replicaId: this.o.memberId };
    const run = action === 'promote'
      ? this.o.control.promote(this.o.store, epoch, opts)
      : (this.primaryOf = null, this.o.control.follow(this.o.store, target!, epoch, opts));
    void run.then(
      () => {
        step.state = 'done';
        step.finishedAt = Date.now();
        this.busy = false;
        if (action === 'promote') {
          this.primaryOf = epoch;
          // The owner serves the epoch: grant it the deadline now rather than at the next keepalive.
          const d = this.o.view.leaseDeadline();
          if (d !== null) this.renewed(d);
        }
        this.o.log.info({ store: this.o.store, action, epoch, target, ms: step.finishedAt - step.startedAt }, `cluster: ${action} done`);
        this.reconcile();
      },
      (err: unknown) => {
        step.state = 'failed';
        step.finishedAt = Date.now();
        step.error = describeError(err);
        this.busy = false;
        this.o.log.error({ store: this.o.store, action, epoch, target, err: step.error }, `cluster: ${action} failed (tried again in ${this.o.retryMs} ms while still called for)`);
        const after = this.o.stepAsideAfter ?? kStepAsideAfter;
        if (action === 'promote' && step.attempt >= after && this.o.view.stepAside && this.o.view.isLeader() && this.o.view.epoch() === epoch) {
          const reason = `promotion failed ${step.attempt} times: ${step.error}`;
          void this.o.view.stepAside(reason, this.o.stepAsideHoldMs ?? kStepAsideHoldMs).then(
            (gone) => gone && this.o.log.warn({ store: this.o.store, epoch, attempts: step.attempt }, 'cluster: stepped aside from the leader key: this member cannot serve as the primary'),
            (e: unknown) => this.o.log.warn({ store: this.o.store, epoch, err: describeError(e) }, 'cluster: could not step aside (the key dies with the lease if this member stops renewing it)'),
          );
        }
      },
    );
  }
}

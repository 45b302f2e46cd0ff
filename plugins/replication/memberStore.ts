/**
 * A member store (`replication.role: member`): its role on this host is the cluster's to decide
 * (#15; DESIGN.md "Roles that change"). Until told it is `undecided`: the store is held open here
 * as an idle replica (so its position is known for the election) and its application is held by
 * the plugin's process gate. Then:
 *
 * - `promote(epoch)`: the replica session (or the idle hold) closes the store; the owner's
 *   settings become a fenced primary's at `epoch`; the gate lets the application start, and its
 *   open is ordinary crash recovery (redo, undo) that starts the new epoch's segment. Done once
 *   the owner answers at that epoch.
 * - `follow(address, epoch)`: the gate holds the application (the supervisor stops it), its lock
 *   is awaited, and a replica session streams from `address`.
 *
 * Operations on one store run one at a time, in the order asked, each with a time limit.
 */
import type { Logger } from 'pino';
import type { PageEngine, ReplicaStore } from '../../core/contracts/PageEngine.js';
import type { MemberRole, MemberStoreState } from '../../core/contracts/ReplicationControl.js';
import { describeError, raError } from '../../core/errors.js';
import { sleep } from '../../core/sleep.js';
import type { WorkerPool } from '../../core/workerPool.js';
import type { MemberConfig } from './configSection.js';
import { primarySettings, writePrimarySettings } from './primarySettings.js';
import { PrimaryWatch } from './primaryWatch.js';
import { ReplicaSession } from './replicaSession.js';
import './errors.js';

const kDefaultTimeoutMs = 30_000;
const kPollMs = 50;

export interface MemberStoreOptions {
  storeId: string;
  dir: string;
  engine: PageEngine;
  cfg: MemberConfig;
  secret: string;
  pool?: WorkerPool | undefined;
  log: Logger;
  /** The role changed: the process gate's answer may have. */
  onRoleChange(): void;
  onRefused(code: string, reason: string, rebuild?: { why: 'diverged' | 'replaced' }): void;
  /** Its replica session streams (again). */
  onStreaming?(): void;
}

/** Throws when `signal` abandoned the role change (a newer one superseded it). */
function abandoned(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw raError('RA_ERR_REPL_PROMOTE', `${what} abandoned: a newer role change superseded it`);
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

export class MemberStore {
  private roleNow: MemberRole = 'undecided';
  private epoch = 0;
  private durable = 0;
  private applied = 0;
  private idle: ReplicaStore | null = null;
  private session: ReplicaSession | null = null;
  private following: string | null = null;
  private watch: PrimaryWatch | null = null;
  private note: string | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** The last role change failed (its error is the note) and none succeeded since. */
  private lastFailed = false;

  constructor(private readonly o: MemberStoreOptions) {}

  /** True while the last role change (promote, follow) failed. */
  failed(): boolean {
    return this.lastFailed;
  }

  get role(): MemberRole {
    return this.roleNow;
  }

  /** Replicas and undecided stores hold their application. */
  holds(): string | null {
    return this.roleNow === 'primary' ? null : `store ${this.o.storeId} is ${this.roleNow === 'replica' ? `a replica of ${this.following}` : 'not yet the primary (the cluster has not decided)'} on this host`;
  }

  /**
   * Learns where the store stands: an owner that still runs (this agent restarted under a live
   * primary) is asked; otherwise the store is opened as an idle replica (redo only).
   */
  async start(): Promise<void> {
    if ((await this.o.engine.files.lockHolder(this.o.dir)) !== null) {
      try {
        const st = await this.ownerStatus();
        this.epoch = st.replication?.epoch ?? 0;
        this.durable = this.applied = st.flushedLsn;
        this.note = 'an owner runs (adopted): the cluster decides whether it stays the primary';
      } catch (err) {
        this.note = `an owner holds the store but does not answer: ${describeError(err)}`;
      }
      return;
    }
    this.idle = await this.o.engine.replica.openReplica(this.o.dir, { ...(this.o.pool ? { pool: this.o.pool } : {}), log: this.o.log });
    const p = this.idle.position();
    this.epoch = p.epoch;
    this.durable = p.durableLsn;
    this.applied = p.appliedLsn;
  }

  async stop(): Promise<void> {
    await this.queue.catch(() => undefined);
    this.watch?.stop();
    await this.session?.stop();
    await this.idle?.close();
    this.idle = null;
  }

  state(): MemberStoreState {
    const cfg = this.o.cfg;
    let { epoch, durable, applied } = this;
    let streaming = false;
    if (this.session) {
      const s = this.session.status();
      epoch = s.epoch;
      durable = s.durableLsn;
      applied = s.appliedLsn;
      streaming = s.state === 'streaming';
    } else if (this.watch) {
      const w = this.watch.status();
      if (w.flushedLsn !== null) durable = applied = w.flushedLsn;
      if (w.epoch !== null) epoch = w.epoch;
    }
    return {
      store: this.o.storeId,
      role: this.roleNow,
      epoch,
      durableLsn: durable,
      appliedLsn: applied,
      streaming,
      replicationAddress: cfg.advertise ?? cfg.listen,
      mode: cfg.mode,
      syncReplicas: cfg.syncReplicas,
      ...(this.note ? { note: this.note } : {}),
    };
  }

  /** The replica session while this store is a replica here (page repair from the primary), else undefined. */
  replicaPages(): ReplicaSession | undefined {
    return this.roleNow === 'replica' && this.session ? this.session : undefined;
  }

  /** Replica sessions' and the primary watch's status, for GET /replication. */
  status(): Record<string, unknown> {
    const base = { member: true, ...this.state() };
    if (this.session) return { ...base, ...this.session.status(), role: 'replica' };
    if (this.watch) return { ...base, ...this.watch.status(), role: 'primary' };
    return base;
  }

  promote(epoch: number, timeoutMs = kDefaultTimeoutMs, signal?: AbortSignal): Promise<void> {
    return this.serial(async () => {
      if (this.roleNow === 'primary' && this.epoch === epoch) return;
      const deadline = Date.now() + timeoutMs;
      const check = () => abandoned(signal, `promotion of store ${this.o.storeId} to epoch ${epoch}`);
      check();
      this.note = `promoting to the primary of epoch ${epoch}`;
      this.o.log.info({ store: this.o.storeId, epoch }, 'promoting this member to the primary');
      if (this.roleNow === 'primary') {
        // Already the primary of another epoch (re-elected, or a promotion superseded half-way):
        // its owner reads its epoch at open, so it is stopped (the gate holds it) and started again.
        this.roleNow = 'undecided';
        this.o.onRoleChange();
        await this.storeReleased(deadline, check, `to be promoted to epoch ${epoch}`);
      }
      await this.stopSession();
      this.following = null;
      await this.idle?.close();
      this.idle = null;
      await writePrimarySettings(this.o.dir, { ...primarySettings(this.o.cfg, this.o.secret), epoch, fenced: true });
      // `this.epoch` stays the log's epoch until the owner serves the new one (state() publishes
      // it): a promotion that fails must not make this member look newer than the others, or
      // none of them could be elected after it steps aside.
      this.roleNow = 'primary';
      this.o.onRoleChange();
      this.watch?.stop();
      this.watch = new PrimaryWatch({ storeId: this.o.storeId, dir: this.o.dir, engine: this.o.engine, listen: this.o.cfg.listen, mode: this.o.cfg.mode, log: this.o.log });
      this.watch.start();
      // Done when the owner (the application, started by the supervisor) serves the new epoch.
      for (;;) {
        const at = await this.ownerStatus().then(
          (s) => s.replication?.epoch ?? null,
          () => null,
        );
        if (at === epoch) {
          this.epoch = epoch;
          break;
        }
        check();
        if (Date.now() > deadline) {
          throw raError('RA_ERR_REPL_PROMOTE', `store ${this.o.storeId} was made the primary of epoch ${epoch}, but its owner ${at === null ? 'has not come up' : `serves epoch ${at}`} within ${timeoutMs} ms (is its application configured in processes:, and does it start?)`, {
            details: { store: this.o.storeId, epoch, ownerEpoch: at },
          });
        }
        await sleep(kPollMs);
      }
      this.note = undefined;
      this.o.log.info({ store: this.o.storeId, epoch }, 'this member is the primary');
    });
  }

  follow(address: string, epoch: number, timeoutMs = kDefaultTimeoutMs, signal?: AbortSignal, replicaId?: string): Promise<void> {
    return this.serial(async () => {
      if (this.roleNow === 'replica' && this.following === address && this.session) return;
      const deadline = Date.now() + timeoutMs;
      const check = () => abandoned(signal, `following ${address} (epoch ${epoch})`);
      check();
      const was = this.roleNow;
      this.roleNow = 'replica';
      this.following = address;
      this.o.onRoleChange();
      this.watch?.stop();
      this.watch = null;
      if (was === 'primary' || this.idle === null) {
        // The supervisor stops the application now that the gate holds it; its lock goes with it.
        this.note = 'waiting for the application to stop and release the store';
        for (;;) {
          const holder = await this.o.engine.files.lockHolder(this.o.dir);
          if (holder === null || this.session !== null) break;
          check();
          if (Date.now() > deadline) {
            throw raError('RA_ERR_REPL_PROMOTE', `store ${this.o.storeId} cannot follow ${address}: process ${holder} still holds it after ${timeoutMs} ms`, { details: { store: this.o.storeId, holder } });
          }
          await sleep(kPollMs);
        }
      }
      await writePrimarySettings(this.o.dir, { role: 'replica' });
      await this.idle?.close();
      this.idle = null;
      await this.stopSession();
      const { host, port } = hostPort(address);
      this.session = new ReplicaSession({
        storeId: this.o.storeId,
        dir: this.o.dir,
        engine: this.o.engine,
        host,
        port,
        secret: this.o.secret,
        id: this.o.cfg.id ?? replicaId ?? this.o.storeId,
        autoReinit: this.o.cfg.autoReinit,
        rejoinOnDiverged: true,
        keepDiverged: this.o.cfg.keepDiverged,
        pool: this.o.pool,
        log: this.o.log,
        onRefused: (code, reason, rebuild) => this.o.onRefused(code, reason, rebuild),
        onStreaming: () => this.o.onStreaming?.(),
      });
      await this.session.start();
      this.note = undefined;
      this.o.log.info({ store: this.o.storeId, primary: address, epoch }, 'this member follows the primary');
    });
  }

  /** Waits until no process holds the store (the supervisor stopped its application). */
  private async storeReleased(deadline: number, check: () => void, why: string): Promise<void> {
    for (;;) {
      const holder = await this.o.engine.files.lockHolder(this.o.dir);
      if (holder === null) return;
      check();
      if (Date.now() > deadline) throw raError('RA_ERR_REPL_PROMOTE', `store ${this.o.storeId} is still held by process ${holder}, waiting for it ${why}`, { details: { store: this.o.storeId, holder } });
      await sleep(kPollMs);
    }
  }

  /**
   * Stops the replica session, keeping where it stood: while no session or owner reports, state()
   * publishes these, and an election must not take this member for less than it holds.
   */
  private async stopSession(): Promise<void> {
    const s = this.session;
    if (!s) return;
    const before = s.status();
    await s.stop();
    // After the stop its position is final (if its store is still open to say it), else the last seen.
    const after = s.status();
    const st = after.durableLsn >= before.durableLsn && after.epoch !== 0 ? after : before;
    this.epoch = st.epoch;
    this.durable = st.durableLsn;
    this.applied = st.appliedLsn;
    this.session = null;
  }

  async grantLease(epoch: number, untilNs: bigint): Promise<void> {
    if (this.roleNow !== 'primary' || this.epoch !== epoch) {
      throw raError('RA_ERR_REPL_PROMOTE', `store ${this.o.storeId} is not the primary of epoch ${epoch} here (it is ${this.roleNow}, epoch ${this.epoch})`);
    }
    const owner = await this.o.engine.connectOwner(this.o.dir, { timeoutMs: 1000 });
    try {
      await owner.grantLease(epoch, untilNs);
    } finally {
      owner.close();
    }
  }

  private async ownerStatus() {
    const owner = await this.o.engine.connectOwner(this.o.dir, { timeoutMs: 1000 });
    try {
      return await owner.status();
    } finally {
      owner.close();
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.then(
      () => {
        this.lastFailed = false;
      },
      (err: unknown) => {
        this.lastFailed = true;
        this.note = describeError(err);
      },
    );
    return run;
  }
}

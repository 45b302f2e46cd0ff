/**
 * Scheduled snapshots inside the agent: for each store with `snapshots.every`, a snapshot on
 * that interval — full when the directory has none or `fullEvery - 1` incrementals follow the
 * newest full, incremental otherwise — then retention (`keep`, `maxAge`). One snapshot per store
 * at a time; a tick that finds the previous one still running is skipped. A store that does not
 * exist yet is skipped quietly. Snapshots take no lock, so they run beside the store's owner.
 * `snapshotNow` takes one on demand (`POST /snapshots`), for any store with a snapshots.dir, after
 * any snapshot of that store in progress.
 *
 * Each starts with a checkpoint when an owner has the store open (asked through the engine's
 * channel to its live owner), so the snapshot's WAL, and what a restore replays, starts at a fresh redo
 * point. With no owner the store is quiet and its last checkpoint stands.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { withOwner, type PageEngine } from '../../core/contracts/PageEngine.js';
import { describeError, isRaError, raError } from '../../core/errors.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { createSnapshot, type SnapshotReport } from './createSnapshot.js';
import { loadAll, type Manifest } from './manifest.js';
import { pruneSnapshots } from './prune.js';

export interface ScheduledStore {
  id: string;
  path: string;
  /** The store's engine (found by its config's `engine:`). */
  engine: PageEngine;
  dir: string;
  /** Snapshot on this interval; without it, only when asked (`snapshotNow`, `POST /snapshots`). */
  everyMs?: number;
  fullEvery: number;
  keep: { full: number; incremental: number };
  maxAgeMs?: number;
}

/** Running totals, for metrics and tests. */
export interface SnapshotStats {
  taken: { full: number; incremental: number };
  failed: number;
  lastDurationMs: number;
  lastBytes: number;
  lastRawBytes: number;
  pruned: number;
  /** Checkpoints the stores' owners took before a snapshot, when asked. */
  checkpoints: number;
}

export class SnapshotScheduler {
  readonly stats: SnapshotStats = { taken: { full: 0, incremental: 0 }, failed: 0, lastDurationMs: 0, lastBytes: 0, lastRawBytes: 0, pruned: 0, checkpoints: 0 };
  private timers: NodeJS.Timeout[] = [];
  private running = new Map<string, Promise<void>>();
  private idleHolders = new Map<string, number>();

  constructor(private readonly stores: readonly ScheduledStore[], private readonly pool: WorkerPool, private readonly log: Logger) {}

  start(): void {
    for (const s of this.stores) {
      if (!s.everyMs) continue;
      const t = setInterval(() => {
        if (!this.running.has(s.id)) void this.exclusive(s, () => this.takeOne(s));
      }, s.everyMs);
      t.unref();
      this.timers.push(t);
    }
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.all(this.running.values());
  }

  /** Asks the store's owner, if any, for a checkpoint; a failure is logged, not fatal to the snapshot. */
  private async checkpointFirst(s: ScheduledStore): Promise<void> {
    try {
      const k = await withOwner(s.engine, s.path, (owner) => owner.checkpoint());
      this.stats.checkpoints++;
      this.log.debug({ store: s.id, ...k }, 'owner checkpointed before the snapshot');
    } catch (err) {
      // No owner serving a socket: the store is quiet, or its owner checkpoints by itself.
      if (!isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) this.log.warn({ store: s.id, err: describeError(err) }, 'checkpoint before the snapshot failed; taking the snapshot anyway');
    }
  }

  /**
   * A snapshot of store `id` now, once any snapshot of it in progress is done: full or
   * incremental as the schedule would choose, unless `incremental` says; then retention. Throws
   * what went wrong (RA_ERR_USAGE for a store with no snapshots.dir).
   */
  async snapshotNow(id: string, options: { incremental?: boolean } = {}): Promise<Manifest> {
    const s = this.stores.find((x) => x.id === id);
    if (!s) throw raError('RA_ERR_USAGE', `store "${id}" has no snapshots.dir in the config (stores with one: ${this.stores.map((x) => x.id).join(', ') || 'none'})`);
    if (!s.engine.files.exists(s.path)) throw raError('RA_ERR_STORE_NOT_FOUND', `store "${id}" does not exist yet at ${s.path}`);
    return this.exclusive(s, () => this.round(s, options.incremental)).catch((err: unknown) => {
      this.stats.failed++;
      throw err;
    });
  }

  /** The store's snapshots, oldest first. */
  async list(id: string): Promise<Manifest[]> {
    const s = this.stores.find((x) => x.id === id);
    if (!s) throw raError('RA_ERR_USAGE', `store "${id}" has no snapshots.dir in the config (stores with one: ${this.stores.map((x) => x.id).join(', ') || 'none'})`);
    return (await loadAll(s.dir)).flatMap((x) => (x.manifest ? [x.manifest] : []));
  }

  /**
   * Runs `fn` on store `id` while no snapshot or retention of it runs — the integrity checks and
   * their repairs (integrityDetector.ts, integrityActions.ts): nothing is added or pruned under
   * them. `snapshot` takes one inside (then retention), as a scheduled round would.
   */
  async whileIdle<T>(id: string, fn: (s: ScheduledStore, snapshot: (incremental: boolean) => Promise<Manifest>) => Promise<T>): Promise<T> {
    const s = this.stores.find((x) => x.id === id);
    if (!s) throw raError('RA_ERR_USAGE', `store "${id}" has no snapshots.dir in the config`);
    this.idleHolders.set(id, (this.idleHolders.get(id) ?? 0) + 1);
    try {
      return await this.exclusive(s, () => fn(s, (incremental) => this.round(s, incremental)));
    } finally {
      this.idleHolders.set(id, this.idleHolders.get(id)! - 1);
    }
  }

  /** True while a `whileIdle` of store `id` waits or runs (a repair of its snapshot directory). */
  repairing(id: string): boolean {
    return (this.idleHolders.get(id) ?? 0) > 0;
  }

  /** Runs `fn` when no other snapshot of the store runs. */
  private async exclusive<T>(s: ScheduledStore, fn: () => Promise<T>): Promise<T> {
    for (let r; (r = this.running.get(s.id)); ) await r.catch(() => undefined);
    const p = fn();
    const done = p.then(() => undefined, () => undefined).finally(() => this.running.delete(s.id));
    this.running.set(s.id, done);
    return p;
  }

  /** One scheduled round for a store: snapshot, then retention. Never throws. */
  private async takeOne(s: ScheduledStore): Promise<void> {
    if (!s.engine.files.exists(s.path)) return;
    try {
      await this.round(s);
    } catch (err) {
      this.stats.failed++;
      this.log.warn({ store: s.id, dir: path.resolve(s.dir), err: describeError(err) }, 'scheduled snapshot failed');
    }
  }

  private async round(s: ScheduledStore, incrementalWanted?: boolean): Promise<Manifest> {
    const t0 = performance.now();
    const all = (await loadAll(s.dir)).filter((x) => x.manifest).map((x) => x.manifest!);
    const lastFull = all.map((m) => m.kind).lastIndexOf('full');
    const incremental = incrementalWanted ?? (lastFull >= 0 && all.length - 1 - lastFull < s.fullEvery - 1);
    await this.checkpointFirst(s);
    const checkpointMs = Math.round(performance.now() - t0);
    const report: Partial<SnapshotReport> = {};
    const m = await createSnapshot({ engine: s.engine, store: s.path, dir: s.dir, pool: this.pool, incremental, report });
    this.stats.taken[m.kind]++;
    this.stats.lastDurationMs = performance.now() - t0;
    this.stats.lastBytes = m.chunks.reduce((n, c) => n + c.bytes, 0);
    this.stats.lastRawBytes = m.chunks.reduce((n, c) => n + c.rawBytes, 0);
    const pruned = await pruneSnapshots(s.dir, { engine: s.engine, keepFull: s.keep.full, keepIncremental: s.keep.incremental, ...(s.maxAgeMs !== undefined ? { maxAgeMs: s.maxAgeMs } : {}) });
    this.stats.pruned += pruned.deleted.length;
    this.log.info({ store: s.id, id: m.id, kind: m.kind, pages: m.pagesCopied, bytes: this.stats.lastBytes, endLsn: m.endLsn, ms: Math.round(this.stats.lastDurationMs), pruned: pruned.deleted.length, selection: report.selection, phasesMs: { checkpoint: checkpointMs, select: round(report.selectMs), copy: round(report.copyMs), wal: round(report.walMs), sync: round(report.syncMs) } }, 'snapshot taken');
    if (report.leftoversRemoved?.length) this.log.warn({ store: s.id, removed: report.leftoversRemoved.map((l) => l.path), bytes: report.leftoversRemoved.reduce((n, l) => n + l.bytes, 0) }, 'removed temporary directories of killed snapshot runs');
    // An incremental that read every page: the WAL since its base was not usable (say why).
    if (report.fallback) this.log.warn({ store: s.id, id: m.id, why: report.fallback }, 'incremental snapshot read every page');
    return m;
  }
}

const round = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : Math.round(ms));

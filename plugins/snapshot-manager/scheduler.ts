/**
 * Scheduled snapshots inside the agent: for each store with `snapshots.every`, a snapshot on
 * that interval — full when the directory has none or `fullEvery - 1` incrementals follow the
 * newest full, incremental otherwise — then retention (`keep`, `maxAge`). One snapshot per store
 * at a time; a tick that finds the previous one still running is skipped. A store that does not
 * exist yet is skipped quietly. Snapshots take no lock, so they run beside the store's owner.
 *
 * Each starts with a checkpoint when an owner has the store open (asked through the store's
 * control socket), so the snapshot's WAL, and what a restore replays, starts at a fresh redo
 * point. With no owner the store is quiet and its last checkpoint stands.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../../core/errors.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { isRaError } from '../../core/errors.js';
import { ControlClient } from '../pagestore/controlClient.js';
import { storeExists } from '../pagestore/storeFiles.js';
import { createSnapshot, type SnapshotReport } from './createSnapshot.js';
import { loadAll } from './manifest.js';
import { pruneSnapshots } from './prune.js';

export interface ScheduledStore {
  id: string;
  path: string;
  dir: string;
  everyMs: number;
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

  constructor(private readonly stores: readonly ScheduledStore[], private readonly pool: WorkerPool, private readonly log: Logger) {}

  start(): void {
    for (const s of this.stores) {
      const t = setInterval(() => {
        if (!this.running.has(s.id)) {
          const p = this.takeOne(s).finally(() => this.running.delete(s.id));
          this.running.set(s.id, p);
        }
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
    let c: ControlClient;
    try {
      c = await ControlClient.connect(s.path);
    } catch (err) {
      if (!isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) this.log.warn({ store: s.id, err: describeError(err) }, 'cannot reach the store owner for a checkpoint');
      return;
    }
    try {
      const k = await c.checkpoint();
      this.stats.checkpoints++;
      this.log.debug({ store: s.id, ...k }, 'owner checkpointed before the snapshot');
    } catch (err) {
      this.log.warn({ store: s.id, err: describeError(err) }, 'checkpoint before the snapshot failed; taking the snapshot anyway');
    } finally {
      c.close();
    }
  }

  /** One scheduled round for a store: snapshot, then retention. Never throws. */
  async takeOne(s: ScheduledStore): Promise<void> {
    if (!storeExists(s.path)) return;
    const t0 = performance.now();
    try {
      const all = (await loadAll(s.dir)).filter((x) => x.manifest).map((x) => x.manifest!);
      const lastFull = all.map((m) => m.kind).lastIndexOf('full');
      const incremental = lastFull >= 0 && all.length - 1 - lastFull < s.fullEvery - 1;
      await this.checkpointFirst(s);
      const report: Partial<SnapshotReport> = {};
      const m = await createSnapshot({ store: s.path, dir: s.dir, pool: this.pool, incremental, report });
      this.stats.taken[m.kind]++;
      this.stats.lastDurationMs = performance.now() - t0;
      this.stats.lastBytes = m.chunks.reduce((n, c) => n + c.bytes, 0);
      this.stats.lastRawBytes = m.chunks.reduce((n, c) => n + c.rawBytes, 0);
      const pruned = await pruneSnapshots(s.dir, { keepFull: s.keep.full, keepIncremental: s.keep.incremental, ...(s.maxAgeMs !== undefined ? { maxAgeMs: s.maxAgeMs } : {}) });
      this.stats.pruned += pruned.deleted.length;
      this.log.info({ store: s.id, id: m.id, kind: m.kind, pages: m.pagesCopied, bytes: this.stats.lastBytes, endLsn: m.endLsn, ms: Math.round(this.stats.lastDurationMs), pruned: pruned.deleted.length, selection: report.selection }, 'snapshot taken');
      // An incremental that read every page: the WAL since its base was not usable (say why).
      if (report.fallback) this.log.warn({ store: s.id, id: m.id, why: report.fallback }, 'incremental snapshot read every page');
    } catch (err) {
      this.stats.failed++;
      this.log.warn({ store: s.id, dir: path.resolve(s.dir), err: describeError(err) }, 'scheduled snapshot failed');
    }
  }
}

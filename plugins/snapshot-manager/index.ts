/**
 * The `snapshot-manager` plugin (StateSnapshotManager, stage 1): for every store with
 * `snapshots.dir` in the config, the agent's own recoveries of that store archive the WAL
 * segments they retire into `<dir>/wal/` (see walArchive.ts); with `snapshots.every`, the agent
 * also takes snapshots on that interval and applies retention (scheduler.ts). Restore, verify
 * and manual snapshots are run from the CLI (`recovery-agent snapshot …`, `restore …`).
 *
 * An application that owns a store passes the same archiver itself:
 *   PageStore.open(dir, { archiver: walArchiver(snapshotDir) })
 */
import path from 'node:path';
import { Gauge } from 'prom-client';
import type { InjectionToken } from 'tsyringe';
import { definePlugin } from '../../core/plugin.js';
import { snapshotsSection } from './configSection.js';
import { snapshotErrors } from './errors.js';
import { counterFromTotals } from '../../core/metricsHelpers.js';
import { Metrics, SnapshotTrigger, WorkerPool as WorkerPoolToken } from '../../core/tokens.js';
import type { Manifest } from './manifest.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { WalArchiverSource } from '../pagestore/index.js';
import type { WalArchiver } from '../pagestore/checkpoint.js';
import { SnapshotScheduler, type ScheduledStore, type SnapshotStats } from './scheduler.js';
import { walArchiver } from './walArchive.js';

/** The scheduler's running totals (for tests and the status API). */
export const SnapshotManagerStats: InjectionToken<{ snapshot(): SnapshotStats }> = Symbol.for('recovery-agent.SnapshotManagerStats');

export { walArchiver } from './walArchive.js';
export { createSnapshot } from './createSnapshot.js';
export { restoreSnapshot } from './restore.js';
export { verifySnapshots } from './verify.js';
export { pruneSnapshots } from './prune.js';

export default definePlugin({
  id: 'snapshot-manager',
  dependsOn: ['pagestore'],
  contractVersion: '^1.0.0',
  config: [snapshotsSection],
  errorCodes: snapshotErrors,
  register(ctx) {
    const byPath = new Map<string, WalArchiver>();
    for (const s of ctx.config.stores) {
      if (s.snapshots) byPath.set(path.resolve(s.path), walArchiver(path.resolve(s.snapshots.dir)));
    }
    ctx.container.registerInstance(WalArchiverSource, {
      archiverFor: (p: string, remembered?: string | null) => byPath.get(path.resolve(p)) ?? (remembered ? walArchiver(remembered) : undefined),
    });
    ctx.log.info({ stores: byPath.size }, 'WAL archiving configured');

    const scheduled: ScheduledStore[] = ctx.config.stores.flatMap((s) => (s.snapshots ? [{
      id: s.id, path: path.resolve(s.path), dir: path.resolve(s.snapshots.dir), ...(s.snapshots.every ? { everyMs: s.snapshots.every } : {}),
      fullEvery: s.snapshots.fullEvery, keep: s.snapshots.keep, ...(s.snapshots.maxAge !== undefined ? { maxAgeMs: s.snapshots.maxAge } : {}),
    }] : []));
    const scheduler = new SnapshotScheduler(scheduled, ctx.container.resolve<WorkerPool>(WorkerPoolToken), ctx.log);
    ctx.container.registerInstance(SnapshotManagerStats, { snapshot: () => structuredClone(scheduler.stats) });
    const summary = (m: Manifest) => ({
      id: m.id, kind: m.kind, baseId: m.baseId, startLsn: m.startLsn, endLsn: m.endLsn, startedAt: m.startedAt, finishedAt: m.finishedAt,
      pages: m.pagesCopied, chunks: m.chunks.length, bytes: m.chunks.reduce((n, c) => n + c.bytes, 0), rawBytes: m.chunks.reduce((n, c) => n + c.rawBytes, 0),
    });
    ctx.container.registerInstance(SnapshotTrigger, {
      list: async (id) => (await scheduler.list(id)).map(summary),
      take: async (id, o) => summary(await scheduler.snapshotNow(id, o)),
    });
    const registry = ctx.container.resolve(Metrics);
    const st = scheduler.stats;
    counterFromTotals(registry, 'recovery_agent_snapshots_total', 'Scheduled snapshots, by kind and result', ['kind', 'result'], () => [
      { labels: { kind: 'full', result: 'ok' }, value: st.taken.full },
      { labels: { kind: 'incremental', result: 'ok' }, value: st.taken.incremental },
      { labels: { kind: 'any', result: 'failed' }, value: st.failed },
    ]);
    const gauge = (name: string, help: string, value: () => number) => new Gauge({ name, help, registers: [registry], collect() { this.set(value()); } });
    gauge('recovery_agent_snapshot_last_duration_seconds', 'Duration of the last scheduled snapshot', () => st.lastDurationMs / 1000);
    gauge('recovery_agent_snapshot_last_size_bytes', 'Compressed page bytes of the last scheduled snapshot', () => st.lastBytes);
    gauge('recovery_agent_snapshot_last_compression_ratio', 'Raw / compressed page bytes of the last scheduled snapshot', () => (st.lastBytes > 0 ? st.lastRawBytes / st.lastBytes : 0));
    return {
      start: () => scheduler.start(),
      stop: () => scheduler.stop(),
    };
  },
});

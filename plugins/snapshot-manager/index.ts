/**
 * The `snapshot-manager` plugin (StateSnapshotManager, stage 1): for every store with
 * `snapshots.dir` in the config, the agent's own recoveries of that store archive the WAL
 * segments they retire into `<dir>/wal/` (see walArchive.ts); with `snapshots.every`, the agent
 * also takes snapshots on that interval and applies retention (scheduler.ts). Restore, verify
 * and manual snapshots are run from the CLI (`recovery-agent snapshot …`, `restore …`). It is
 * also a page source (pageSource.ts): the data repairer asks it for verified copies of corrupt
 * pages, rebuilt from a snapshot and the WAL.
 *
 * It works on a store only through its engine's page face (core/contracts/PageEngine.ts), found
 * by the store's `engine:` in the config; a store whose engine has none is skipped, and said so.
 *
 * An application that owns a store passes the same archiver itself:
 *   PageStore.open(dir, { archiver: walArchiver(engine, snapshotDir) })
 */
import path from 'node:path';
import { Gauge } from 'prom-client';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { LogArchiverSource, isPageEngine, type LogArchiver, type PageEngine } from '../../core/contracts/PageEngine.js';
import { PageSource, isPageSource } from '../../core/contracts/PageSource.js';
import { engines, storesWithPageEngines } from '../../core/engines.js';
import { definePlugin } from '../../core/plugin.js';
import { snapshotsSection } from './configSection.js';
import { snapshotErrors } from './errors.js';
import { counterFromTotals } from '../../core/metricsHelpers.js';
import { Metrics, SnapshotTrigger, WorkerPool as WorkerPoolToken } from '../../core/tokens.js';
import type { Manifest } from './manifest.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { snapshotPageSource } from './pageSource.js';
import { SnapshotScheduler, type ScheduledStore, type SnapshotStats } from './scheduler.js';
import { walArchiver } from './walArchive.js';

/** The scheduler's running totals (for tests and the status API). */
export const SnapshotManagerStats: InjectionToken<{ snapshot(): SnapshotStats }> = Symbol.for('recovery-agent.SnapshotManagerStats');

export { walArchiver } from './walArchive.js';
export { createSnapshot } from './createSnapshot.js';
export { restoreSnapshot } from './restore.js';
export { verifySnapshots } from './verify.js';
export { pruneSnapshots } from './prune.js';
export { snapshotPageSource, rebuildPage, type RebuiltPage } from './pageSource.js';

/** The page engine that recognises the store in `dir` (one not in the config, but remembering an archive). */
function engineRecognising(container: DependencyContainer, dir: string): PageEngine | undefined {
  return engines(container).find((e): e is PageEngine => isPageEngine(e) && e.files.exists(dir));
}

export default definePlugin({
  id: 'snapshot-manager',
  // Start order only: the engines register must find are provided by then (typed dependencies on
  // the StorageEngine contract will replace this plugin id).
  dependsOn: ['pagestore'],
  contractVersion: '^1.0.0',
  config: [snapshotsSection],
  errorCodes: snapshotErrors,
  register(ctx) {
    // Each store with snapshots, with its engine's page face; one whose engine has none is skipped.
    const { usable, skipped } = storesWithPageEngines(ctx.container, ctx.config.stores.filter((s) => s.snapshots));
    for (const { store, reason } of skipped) ctx.log.warn({ store: store.id, engine: store.engine }, `store "${store.id}" gets no snapshots, WAL archive or page rebuilds: ${reason}`);
    const byPath = new Map<string, LogArchiver>();
    const dirById = new Map<string, string>();
    const dirByPath = new Map<string, string>();
    for (const s of usable) {
      const dir = path.resolve(s.snapshots!.dir);
      byPath.set(path.resolve(s.path), walArchiver(s.pageEngine, dir));
      dirById.set(s.id, dir);
      dirByPath.set(path.resolve(s.path), dir);
    }
    ctx.container.registerInstance(LogArchiverSource, {
      archiverFor: (p: string, remembered?: string | null) => {
        const configured = byPath.get(path.resolve(p));
        if (configured || !remembered) return configured;
        const engine = engineRecognising(ctx.container, p);
        return engine ? walArchiver(engine, remembered) : undefined;
      },
    });
    ctx.log.info({ stores: byPath.size }, 'WAL archiving configured');
    ctx.provide(PageSource, snapshotPageSource((store) => dirById.get(store.id) ?? dirByPath.get(path.resolve(store.path))), isPageSource);

    const scheduled: ScheduledStore[] = usable.map((s) => ({
      id: s.id, path: path.resolve(s.path), engine: s.pageEngine, dir: path.resolve(s.snapshots!.dir), ...(s.snapshots!.every ? { everyMs: s.snapshots!.every } : {}),
      fullEvery: s.snapshots!.fullEvery, keep: s.snapshots!.keep, ...(s.snapshots!.maxAge !== undefined ? { maxAgeMs: s.snapshots!.maxAge } : {}),
    }));
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

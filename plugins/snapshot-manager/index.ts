/**
 * The `snapshot-manager` plugin (StateSnapshotManager, stage 1): for every store with
 * `snapshots.dir` in the config, the agent's own recoveries of that store archive the WAL
 * segments they retire into `<dir>/wal/` (see walArchive.ts); with `snapshots.every`, the agent
 * also takes snapshots on that interval and applies retention (scheduler.ts). It contributes
 * `GET /snapshots?store=id` (a store's snapshots) and `POST /snapshots` (one now) to the API.
 * Restore, verify and manual snapshots are also run from the CLI (`recovery-agent snapshot …`,
 * `restore …`). It is also a page source (pageSource.ts): the data repairer asks it for
 * verified copies of corrupt pages, rebuilt from a snapshot and the WAL.
 *
 * It works on a store only through its engine's page face (core/contracts/PageEngine.ts), found
 * by the store's `engine:` in the config; a store whose engine has none is skipped, and said so.
 *
 * An application that owns a store passes the same archiver itself:
 *   PageStore.open(dir, { archiver: walArchiver(engine, snapshotDir) })
 */
import path from 'node:path';
import { Gauge } from 'prom-client';
import type { InjectionToken } from 'tsyringe';
import { LogArchiverSource, isPageEngine, type LogArchiver, type PageEngine } from '../../core/contracts/PageEngine.js';
import { PageSource, isPageSource } from '../../core/contracts/PageSource.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { HttpRoute, isHttpRoute } from '../../core/contracts/HttpRoute.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { StorePaths } from '../../core/contracts/StorePaths.js';
import { snapshotsSection } from './configSection.js';
import { snapshotErrors } from './errors.js';
import { counterFromTotals } from '../../core/metricsHelpers.js';
import { createToken } from '../../core/token.js';
import { Metrics, WorkerPool } from '../../core/tokens.js';
import type { Manifest } from './manifest.js';
import { snapshotPageSource } from './pageSource.js';
import { SnapshotScheduler, type ScheduledStore, type SnapshotStats } from './scheduler.js';
import { walArchiver } from './walArchive.js';
import { storeRestorer } from './storeRestorer.js';
import { StoreRestorer, isStoreRestorer } from '../../core/contracts/StoreRestorer.js';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import { HealingAction as HealingActionToken, isHealingAction } from '../../core/contracts/HealingAction.js';
import { IntegrityDetector } from './integrityDetector.js';
import { repairArchiveAction, repairSnapshotAction, type RepairableStore } from './integrityActions.js';

/** The scheduler's running totals (for tests and the status API). */
export const SnapshotManagerStats: InjectionToken<{ snapshot(): SnapshotStats }> = createToken<{ snapshot(): SnapshotStats }>('snapshot-manager.SnapshotManagerStats');

export { walArchiver } from './walArchive.js';
export { createSnapshot } from './createSnapshot.js';
export { restoreSnapshot } from './restore.js';
export { verifySnapshots } from './verify.js';
export { pruneSnapshots } from './prune.js';
export { snapshotPageSource, rebuildPage, type RebuiltPage } from './pageSource.js';

export default definePlugin({
  id: 'snapshot-manager',
  contractVersion: '^1.0.0',
  config: [snapshotsSection],
  errorCodes: snapshotErrors,
  // The engines start first: each store is worked on through its engine's page face.
  deps: { engines: many(StorageEngine), pool: WorkerPool, metrics: Metrics, storePaths: optional(StorePaths) },
  provides: [LogArchiverSource, PageSource, SnapshotManagerStats, HttpRoute, StoreRestorer, Detector, HealingActionToken],
  register(ctx, { engines, pool, metrics, storePaths }) {
    // Each store with snapshots, with its engine's page face; one whose engine has none is skipped.
    const { usable, skipped } = storesWithPageEngines(engines, ctx.config.stores.filter((s) => s.snapshots));
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
    /** The page engine that recognises the store in `dir` (one not in the config, but remembering an archive). */
    const engineRecognising = (dir: string) => engines.find((e): e is PageEngine => isPageEngine(e) && e.files.exists(dir));
    ctx.provide(LogArchiverSource, {
      archiverFor: (p: string, remembered?: string | null) => {
        const configured = byPath.get(path.resolve(p));
        if (configured || !remembered) return configured;
        const engine = engineRecognising(p);
        return engine ? walArchiver(engine, remembered) : undefined;
      },
    });
    ctx.log.info({ stores: byPath.size }, 'WAL archiving configured');
    ctx.provide(StoreRestorer, storeRestorer(new Map(usable.map((s) => [s.id, { engine: s.pageEngine, dir: dirById.get(s.id)! }])), pool, ctx.log), isStoreRestorer);
    ctx.provide(PageSource, snapshotPageSource((store) => dirById.get(store.id) ?? dirByPath.get(path.resolve(store.path))), isPageSource);

    // A store's path is looked up at each snapshot: one moved off a failed disk (StorePaths) is
    // snapshotted where it lives now, never again at the failed disk's stale copy.
    const scheduled: ScheduledStore[] = usable.map((s) => Object.defineProperty({
      id: s.id, engine: s.pageEngine, dir: path.resolve(s.snapshots!.dir), ...(s.snapshots!.every ? { everyMs: s.snapshots!.every } : {}),
      fullEvery: s.snapshots!.fullEvery, keep: s.snapshots!.keep, ...(s.snapshots!.maxAge !== undefined ? { maxAgeMs: s.snapshots!.maxAge } : {}),
    }, 'path', { enumerable: true, get: () => path.resolve(storePaths?.pathOf(s.id) ?? s.path) }) as ScheduledStore);
    const scheduler = new SnapshotScheduler(scheduled, pool, ctx.log);
    ctx.provide(SnapshotManagerStats, { snapshot: () => structuredClone(scheduler.stats) });
    // Damage to snapshots and the archive, found on a schedule (integrityDetector.ts) and
    // repaired by quarantine and a new full snapshot, or a new archive copy (integrityActions.ts).
    ctx.provide(Detector, new IntegrityDetector(scheduled.map((s) => {
      const { verifyEvery, verifyRate } = usable.find((u) => u.id === s.id)!.snapshots!;
      return { id: s.id, dir: s.dir, engine: s.engine, everyMs: verifyEvery, rate: verifyRate };
    }), ctx.log, (id) => scheduler.repairing(id)), isDetector);
    const repairable = new Map<string, RepairableStore>(scheduled.map((s) => [s.id, s]));
    ctx.provide(HealingActionToken, repairSnapshotAction(repairable, scheduler), isHealingAction);
    ctx.provide(HealingActionToken, repairArchiveAction(repairable, scheduler), isHealingAction);
    const summary = (m: Manifest) => ({
      id: m.id, kind: m.kind, baseId: m.baseId, startLsn: m.startLsn, endLsn: m.endLsn, startedAt: m.startedAt, finishedAt: m.finishedAt,
      pages: m.pagesCopied, chunks: m.chunks.length, bytes: m.chunks.reduce((n, c) => n + c.bytes, 0), rawBytes: m.chunks.reduce((n, c) => n + c.rawBytes, 0),
    });
    // Errors of the scheduler answer as the core maps them: RA_ERR_USAGE (a store without
    // snapshots.dir) 400, another recovery-agent error 500 with its code.
    ctx.provide(HttpRoute, {
      method: 'GET',
      path: '/snapshots',
      access: 'read',
      // ?store=id: the store's snapshots, oldest first.
      async handler({ query }) {
        const store = query.store;
        if (typeof store !== 'string') return { status: 400, body: { error: 'give the store: GET /snapshots?store=<id>' } };
        return { status: 200, body: { store, snapshots: (await scheduler.list(store)).map(summary) } };
      },
    }, isHttpRoute);
    ctx.provide(HttpRoute, {
      method: 'POST',
      path: '/snapshots',
      access: 'write',
      // { "store": id, "incremental"?: bool }: a snapshot now (after a checkpoint by the store's owner); answers once it is durable.
      async handler({ body }) {
        const b = body as { store?: unknown; incremental?: unknown } | undefined;
        if (typeof b?.store !== 'string' || (b.incremental !== undefined && typeof b.incremental !== 'boolean')) {
          return { status: 400, body: { error: 'body must be { "store": <id>, "incremental"?: true|false }' } };
        }
        const { store, incremental } = b as { store: string; incremental?: boolean };
        return { status: 200, body: { store, snapshot: summary(await scheduler.snapshotNow(store, incremental === undefined ? {} : { incremental })) } };
      },
    }, isHttpRoute);
    const registry = metrics;
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

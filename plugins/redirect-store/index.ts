/**
 * The `redirect-store` plugin: a store whose disk fails is moved to a healthy one.
 *
 * - Detector (detector.ts): a store's owner whose log broke on EIO is a `disk-failure` (P1,
 *   subject `store:<id>`); ENOSPC is not.
 * - Healing action `redirect-store` (action.ts): for a store with `spare:` and `snapshots.dir`,
 *   stops its application, restores snapshots + WAL archive (+ what still reads of its own log)
 *   into the spare, records the new path (core StorePaths: the agent and, through
 *   RECOVERY_AGENT_STORE_PATH, the application find it there from now on) and restarts the
 *   application; verified by every page at the spare and the application committing there.
 *
 * It uses the supervisor, the snapshot manager's restore and the store paths through their
 * contracts only. The default rule tries `cluster-failover` first (a clustered store fails over
 * to a replica instead), then this.
 */
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import { DISK_FAILURE } from '../../core/contracts/DiskFailure.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { ProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { StorePaths } from '../../core/contracts/StorePaths.js';
import { raError } from '../../core/errors.js';
import { StoreRestorer } from '../../core/contracts/StoreRestorer.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { redirectStoreAction, type RedirectableStore } from './action.js';
import { spareSection } from './configSection.js';
import { DiskFailureWatch } from './detector.js';
import { redirectErrors } from './errors.js';

/** How often each store's owner is asked whether its log broke. */
const POLL_MS = 500;

export default definePlugin({
  id: 'redirect-store',
  contractVersion: '^1.0.0',
  config: [spareSection],
  errorCodes: redirectErrors,
  deps: { engines: many(StorageEngine), storePaths: optional(StorePaths), supervisor: optional(ProcessSupervisor), restorer: optional(StoreRestorer) },
  provides: [Detector, HealingAction],
  register(ctx, { engines, storePaths, supervisor, restorer }) {
    // The agent registers StorePaths; a host without it (a test's) has the config's paths, and no redirect.
    const paths = storePaths ?? configuredPaths(new Map(ctx.config.stores.map((s) => [s.id, s.path])));
    const { usable } = storesWithPageEngines(engines, ctx.config.stores);
    const written = new Set(ctx.config.processes.flatMap((p) => (p.store !== undefined ? [p.store] : [])));
    const watched = usable.map((s) => ({ id: s.id, engine: s.pageEngine, probe: written.has(s.id) && s.replication === undefined }));
    const watch = new DiskFailureWatch(watched, paths, ctx.log, POLL_MS);
    ctx.provide(Detector, { id: ctx.id, kinds: [DISK_FAILURE], start: (sink) => watch.start(sink), stop: () => watch.stop() }, isDetector);
    const stores = new Map<string, RedirectableStore>();
    for (const s of usable) {
      if (s.spare === undefined) continue;
      // A replicated store's history is its cluster's: a copy restored beside it would fork it.
      if (s.replication !== undefined) {
        ctx.log.warn({ store: s.id }, `store "${s.id}" is replicated: its spare is not used (a disk failure under it is for cluster-failover)`);
        continue;
      }
      stores.set(s.id, { id: s.id, engine: s.pageEngine, spare: s.spare, processes: ctx.config.processes.filter((p) => p.store === s.id).map((p) => p.id) });
      if (!restorer?.canRestore(s.id)) ctx.log.warn({ store: s.id }, `store "${s.id}" has a spare but no snapshots.dir: it cannot be restored there, so a disk failure will not be redirected`);
    }
    ctx.provide(HealingAction, redirectStoreAction({ stores, paths, supervisor, restorer }), isHealingAction);
  },
});

/** Store paths as configured, which cannot change. */
function configuredPaths(configured: ReadonlyMap<string, string>): StorePaths {
  return {
    pathOf: (id) => configured.get(id),
    redirects: () => ({}),
    redirect: () => Promise.reject(raError('RA_ERR_REDIRECT', 'store paths cannot change in this host (no StorePaths registered)')),
  };
}

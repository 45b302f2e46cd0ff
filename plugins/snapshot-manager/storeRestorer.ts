/**
 * The snapshot manager's `StoreRestorer` (core/contracts/StoreRestorer.ts): a configured store
 * rebuilt at another path from its newest snapshot chain, its WAL archive and — when asked — what
 * still reads of the failed store's own log (walSalvage.ts). A salvaged log the restore's
 * recovery refuses (damage in the middle of it) is dropped and the archive alone restored: a
 * failed disk must never stop the move off it.
 */
import type { Logger } from 'pino';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import type { StoreRestoreOptions, StoreRestoreResult, StoreRestorer } from '../../core/contracts/StoreRestorer.js';
import { describeError, raError } from '../../core/errors.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { restoreSnapshot, type RestoreResult } from './restore.js';
import { walArchiver } from './walArchive.js';

export function storeRestorer(stores: ReadonlyMap<string, { engine: PageEngine; dir: string }>, pool: WorkerPool, log: Logger): StoreRestorer {
  return {
    canRestore: (id) => stores.has(id),
    async restoreTo(id: string, to: string, options: StoreRestoreOptions = {}): Promise<StoreRestoreResult> {
      const s = stores.get(id);
      if (!s) throw raError('RA_ERR_USAGE', `store "${id}" has no snapshots.dir: nothing to restore it from`);
      const run = (salvageFrom?: string) =>
        restoreSnapshot({ engine: s.engine, snapshotDir: s.dir, to, force: true, pool, ...(salvageFrom !== undefined ? { salvageFrom } : {}), onWarning: (m) => log.warn({ store: id }, m) });
      let r: RestoreResult;
      try {
        r = await run(options.salvageFrom);
      } catch (err) {
        if (options.salvageFrom === undefined || options.signal?.aborted) throw err;
        log.warn({ store: id, err: describeError(err) }, 'restore with the failed store\'s own log refused; restoring from the archive alone');
        r = await run();
      }
      // The restored store remembers its archive and goes on archiving there (its recovery ends
      // with a checkpoint that archives what it retires, the salvaged log included).
      await s.engine.recover(to, { archiver: walArchiver(s.engine, s.dir), pool });
      const c = r.stoppedAt;
      return {
        snapshots: r.snapshots,
        endLsn: r.endLsn,
        lastCommit: c ? { lsn: c.lsn, txId: c.txId, time: c.time } : null,
        salvagedBytes: r.salvagedBytes,
        pagesVerified: r.pagesVerified,
        durationMs: r.durationMs,
      };
    },
  };
}

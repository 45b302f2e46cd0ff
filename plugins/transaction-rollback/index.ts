/**
 * TransactionRollbackManager: brings each configured store back to a consistent state — the
 * committed transactions redone, the unfinished ones rolled back — when the agent starts, and
 * whenever it is told a store's owner crashed (`recoverStore`).
 *
 * A store whose lock is held by a live process is left alone: its owner recovered it when it
 * opened it, and two writers on one store is what the lock exists to prevent.
 */
import type { InjectionToken } from 'tsyringe';
import { definePlugin } from '../../core/plugin.js';
import { StorageEngine, type RecoveryReport } from '../../core/contracts/StorageEngine.js';
import { describeError, isRaError, raError } from '../../core/errors.js';
import type { AgentConfig } from '../../core/config/schema.js';

/** Statistics for metrics and `/status`. */
export interface RollbackStats {
  recoveries: number;
  failures: number;
  skippedLocked: number;
  transactionsRolledBack: number;
  recordsUndone: number;
  recordsRedone: number;
  lastDurationMs: number;
  totalDurationMs: number;
  /** The last report per store id. */
  lastReport: Record<string, RecoveryReport>;
}

export interface TransactionRollbackManager {
  /** Recovers one configured store now. Resolves to null when its owner holds the lock or it does not exist yet. */
  recoverStore(storeId: string): Promise<RecoveryReport | null>;
  stats(): Readonly<RollbackStats>;
}

/** Token under which the plugin provides its manager (the orchestrator's recover-store action uses it). */
export const TransactionRollbackManager: InjectionToken<TransactionRollbackManager> = Symbol.for('recovery-agent.TransactionRollbackManager');

export default definePlugin({
  id: 'transaction-rollback',
  dependsOn: ['pagestore'],
  contractVersion: '^1.0.0',
  register(ctx) {
    const config: AgentConfig = ctx.config;
    const stats: RollbackStats = { recoveries: 0, failures: 0, skippedLocked: 0, transactionsRolledBack: 0, recordsUndone: 0, recordsRedone: 0, lastDurationMs: 0, totalDurationMs: 0, lastReport: {} };

    const manager: TransactionRollbackManager = {
      async recoverStore(storeId) {
        const store = config.stores.find((s) => s.id === storeId);
        if (!store) throw raError('RA_ERR_USAGE', `no store with id "${storeId}" in the config (have: ${config.stores.map((s) => s.id).join(', ') || 'none'})`);
        const engine = ctx.container.resolveAll(StorageEngine).find((e) => e.name === store.engine);
        if (!engine) throw raError('RA_ERR_CONFIG', `stores[${storeId}].engine "${store.engine}" is not provided by any running plugin`);
        try {
          const report = await engine.recover(store.path);
          stats.recoveries++;
          stats.transactionsRolledBack += report.transactionsRolledBack;
          stats.recordsUndone += report.recordsUndone;
          stats.recordsRedone += report.recordsRedone;
          stats.lastDurationMs = report.durationMs;
          stats.totalDurationMs += report.durationMs;
          stats.lastReport[storeId] = report;
          ctx.log.info({ store: storeId, rolledBack: report.transactionsRolledBack, redone: report.recordsRedone, undone: report.recordsUndone, ms: report.durationMs }, 'store recovered');
          return report;
        } catch (err) {
          if (isRaError(err, 'RA_ERR_STORE_NOT_FOUND')) {
            ctx.log.warn({ store: storeId, path: store.path }, 'store does not exist yet; nothing to recover');
            return null;
          }
          if (isRaError(err, 'RA_ERR_STORE_LOCKED')) {
            stats.skippedLocked++;
            ctx.log.info({ store: storeId, err: describeError(err) }, 'store is open by its owner; not recovering it');
            return null;
          }
          stats.failures++;
          throw err;
        }
      },
      stats: () => stats,
    };
    ctx.provide(TransactionRollbackManager, manager);

    return {
      async start() {
        for (const store of config.stores) {
          try {
            await manager.recoverStore(store.id);
          } catch (err) {
            // One store that cannot be recovered must not keep the others unprotected.
            ctx.log.error({ store: store.id, err: describeError(err) }, 'store recovery failed at start');
          }
        }
      },
    };
  },
});

/**
 * TransactionRollbackManager: brings each configured store back to a consistent state — the
 * committed transactions redone, the unfinished ones rolled back — when the agent starts, and
 * whenever it is told a store's owner crashed (`recoverStore`).
 *
 * A store whose lock is held by a live process is left alone: its owner recovered it when it
 * opened it, and two writers on one store is what the lock exists to prevent.
 */
import { definePlugin, many, optional } from '../../core/plugin.js';
import { TransactionRollbackManager, isTransactionRollbackManager, type RollbackStats } from '../../core/contracts/TransactionRollbackManager.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { LogArchiverSource, isPageEngine } from '../../core/contracts/PageEngine.js';
import { engineNamed } from '../../core/engines.js';
import { describeError, isRaError, raError } from '../../core/errors.js';
import type { AgentConfig } from '../../core/config/schema.js';
import type { PluginContext } from '../../core/plugin.js';
import type { FailureBus as FailureBusService } from '../../core/failureBus.js';
import { FailureBus, Metrics } from '../../core/tokens.js';
import { counterFromTotals } from '../../core/metricsHelpers.js';
import { corruptPagesOf, pageCorruptionFailure } from '../../core/contracts/pageCorruption.js';

export { TransactionRollbackManager, type RecoverOutcome, type RollbackStats } from '../../core/contracts/TransactionRollbackManager.js';

export default definePlugin({
  id: 'transaction-rollback',
  contractVersion: '^1.0.0',
  // Every engine, and the log archiver, start first: the stores are recovered when this plugin
  // starts, and the log those recoveries retire is archived.
  deps: { engines: many(StorageEngine), archivers: optional(LogArchiverSource), bus: optional(FailureBus), metrics: optional(Metrics) },
  provides: [TransactionRollbackManager],
  register(ctx, { engines, archivers, bus, metrics }) {
    const config: AgentConfig = ctx.config;
    const stats: RollbackStats = { recoveries: 0, failures: 0, skippedLocked: 0, transactionsRolledBack: 0, recordsUndone: 0, recordsRedone: 0, lastDurationMs: 0, totalDurationMs: 0, lastReport: {} };

    const manager: TransactionRollbackManager = {
      async recoverStore(storeId) {
        const store = config.stores.find((s) => s.id === storeId);
        if (!store) throw raError('RA_ERR_USAGE', `no store with id "${storeId}" in the config (have: ${config.stores.map((s) => s.id).join(', ') || 'none'})`);
        const engine = engineNamed(engines, store.engine);
        if (!engine) throw raError('RA_ERR_CONFIG', `stores[${storeId}].engine "${store.engine}" is not provided by any running plugin`);
        try {
          const archiver = archivers && isPageEngine(engine) ? archivers.archiverFor(store.path, await engine.files.rememberedArchive(store.path)) : undefined;
          const report = archiver && isPageEngine(engine) ? await engine.recover(store.path, { archiver }) : await engine.recover(store.path);
          stats.recoveries++;
          stats.transactionsRolledBack += report.transactionsRolledBack;
          stats.recordsUndone += report.recordsUndone;
          stats.recordsRedone += report.recordsRedone;
          stats.lastDurationMs = report.durationMs;
          stats.totalDurationMs += report.durationMs;
          stats.lastReport[storeId] = report;
          ctx.log.info({ store: storeId, rolledBack: report.transactionsRolledBack, redone: report.recordsRedone, undone: report.recordsUndone, ms: report.durationMs }, 'store recovered');
          return { status: 'recovered', report };
        } catch (err) {
          if (isRaError(err, 'RA_ERR_STORE_NOT_FOUND')) {
            ctx.log.warn({ store: storeId, path: store.path }, 'store does not exist yet; nothing to recover');
            return { status: 'missing' };
          }
          if (isRaError(err, 'RA_ERR_STORE_LOCKED')) {
            stats.skippedLocked++;
            ctx.log.info({ store: storeId, err: describeError(err) }, 'store is open by its owner; not recovering it');
            const pid = err.details.pid;
            return typeof pid === 'number' ? { status: 'locked', pid } : { status: 'locked' };
          }
          if (isRaError(err, 'RA_ERR_PAGE_CORRUPT') && bus) publishCorruptPages(ctx, bus, storeId, store.path, err.details);
          stats.failures++;
          throw err;
        }
      },
      stats: () => stats,
    };
    ctx.provide(TransactionRollbackManager, manager, isTransactionRollbackManager);
    if (metrics) {
      const registry = metrics;
      counterFromTotals(registry, 'recovery_agent_rollbacks_total', 'Transactions rolled back by crash recovery', [], () => [{ labels: {}, value: stats.transactionsRolledBack }]);
      counterFromTotals(registry, 'recovery_agent_store_recoveries_total', 'Crash recoveries of stores, by result', ['result'], () => [
        { labels: { result: 'recovered' }, value: stats.recoveries },
        { labels: { result: 'failed' }, value: stats.failures },
        { labels: { result: 'skipped-locked' }, value: stats.skippedLocked },
      ]);
      counterFromTotals(registry, 'recovery_agent_records_undone_total', 'WAL records undone by crash recovery', [], () => [{ labels: {}, value: stats.recordsUndone }]);
      counterFromTotals(registry, 'recovery_agent_records_redone_total', 'WAL records redone by crash recovery', [], () => [{ labels: {}, value: stats.recordsRedone }]);
    }

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

/**
 * Verify on read: recovery read pages that fail their checks (RA_ERR_PAGE_CORRUPT, the pages in
 * its details). Each becomes a P0 page-corruption failure on the bus, so the corruption detector
 * counts them and a repair can be chosen for them.
 */
function publishCorruptPages(ctx: PluginContext, bus: FailureBusService, storeId: string, storePath: string, details: Readonly<Record<string, unknown>>): void {
  const pages = corruptPagesOf(details);
  if (pages.length === 0) return;
  try {
    bus.publish(ctx.id, pageCorruptionFailure({ storeId, path: storePath, pages, foundBy: 'recovery' }));
  } catch (err) {
    ctx.log.error({ store: storeId, err: describeError(err) }, 'cannot publish page-corruption failure');
  }
}

/**
 * The `recover-store` healing action: crash recovery (rollback + redo) of the store a failure
 * names — `evidence.store`, or a subject `store:<id>` — through the TransactionRollbackManager
 * (core/contracts/TransactionRollbackManager.ts).
 * Verified independently: a second recovery must find nothing left to redo or roll back; a store
 * a live process holds is verified by that owner answering through its engine's page face
 * (`connectOwner`: the page store's control socket). A store whose engine has no page face
 * cannot be verified that way: such a store held by a live process is not verified.
 */
import { definePlugin, many } from '../../core/plugin.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { withOwner, type PageEngine } from '../../core/contracts/PageEngine.js';
import { TransactionRollbackManager } from '../../core/contracts/TransactionRollbackManager.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { raError } from '../../core/errors.js';

/**
 * A store a live process holds was recovered by that process when it opened it; that is
 * observed, not assumed, by asking the owner through the engine's channel to it: verified only
 * if it answers, as the process holding the lock.
 */
async function ownerServes(engine: PageEngine, dir: string, lockPid: number | undefined): Promise<boolean> {
  try {
    const s = await withOwner(engine, dir, (o) => o.status(), { timeoutMs: 5000 });
    return lockPid === undefined || s.pid === lockPid;
  } catch {
    return false;
  }
}

/** The configured store a failure is about, if any. */
export function storeOf(failure: Failure): string | undefined {
  const fromEvidence = failure.evidence.store;
  if (typeof fromEvidence === 'string' && fromEvidence) return fromEvidence;
  const m = /^store:(.+)$/.exec(failure.subject);
  return m?.[1];
}

export default definePlugin({
  id: 'recover-store',
  contractVersion: '^1.0.0',
  deps: { manager: TransactionRollbackManager, engines: many(StorageEngine) },
  provides: [HealingAction],
  register(ctx, { manager, engines }) {
    const configured = new Set(ctx.config.stores.map((s) => s.id));
    const { usable, skipped } = storesWithPageEngines(engines, ctx.config.stores);
    for (const { store, reason } of skipped) ctx.log.info({ store: store.id, engine: store.engine }, `a recovery of this store that finds it held by a live process cannot be verified: ${reason}`);
    const owned = new Map(usable.map((s) => [s.id, { dir: s.path, engine: s.pageEngine }]));
    const action: HealingAction = {
      id: 'recover-store',
      canHandle: (failure) => {
        const id = storeOf(failure);
        return id !== undefined && configured.has(id);
      },
      async apply(failure) {
        const id = storeOf(failure)!;
        const out = await manager.recoverStore(id);
        if (out.status === 'missing') throw raError('RA_ERR_STORE_NOT_FOUND', `store "${id}" does not exist; nothing to recover`);
        if (out.status === 'locked') return { summary: `store "${id}" is open by live process ${out.pid ?? '?'}, which recovered it when it opened it` };
        const r = out.report;
        return {
          summary: `recovered store "${id}": ${r.transactionsRolledBack} transaction(s) rolled back, ${r.recordsRedone} record(s) redone in ${r.durationMs} ms`,
          details: { ...r },
        };
      },
      async verify(failure) {
        const id = storeOf(failure)!;
        const store = owned.get(id);
        if (store) {
          // Observed read-only through the engine's face: a live owner that answers, or a log
          // with nothing left to redo or undo. Not another recovery (that one would be counted
          // and logged as a second store recovery for one crash).
          // (No lock is taken here: a writer restarted meanwhile must find the store free.)
          const holder = await store.engine.files.lockHolder(store.dir);
          if (holder !== null) return ownerServes(store.engine, store.dir, holder);
          return (await store.engine.recoveryPending(store.dir)) === null;
        }
        // An engine without the page face: recovery is idempotent, so a second one that finds
        // nothing to do is the observation.
        const out = await manager.recoverStore(id);
        return out.status === 'recovered' && out.report.transactionsRolledBack === 0 && out.report.recordsRedone === 0;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

/**
 * The `recover-store` healing action: crash recovery (rollback + redo) of the store a failure
 * names — `evidence.store`, or a subject `store:<id>` — through the TransactionRollbackManager.
 * Verified independently: a second recovery must find nothing left to redo or roll back; a store
 * a live process holds is verified by that owner answering on its control socket.
 */
import { definePlugin } from '../../core/plugin.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { raError } from '../../core/errors.js';
import { ControlClient } from '../pagestore/index.js';
import { TransactionRollbackManager } from '../transaction-rollback/index.js';

/**
 * A store a live process holds was recovered by that process when it opened it; that is
 * observed, not assumed, by asking the owner over the store's control socket: verified only if
 * it answers, as the process holding the lock.
 */
async function ownerServes(dir: string, lockPid: number | undefined): Promise<boolean> {
  try {
    const s = await ControlClient.with(dir, (c) => c.status(), { timeoutMs: 5000 });
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
  deps: { manager: TransactionRollbackManager },
  provides: [HealingAction],
  register(ctx, { manager }) {
    const configured = new Set(ctx.config.stores.map((s) => s.id));
    const paths = new Map(ctx.config.stores.map((s) => [s.id, s.path]));
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
        const out = await manager.recoverStore(id);
        if (out.status === 'locked') return ownerServes(paths.get(id)!, out.pid);
        return out.status === 'recovered' && out.report.transactionsRolledBack === 0 && out.report.recordsRedone === 0;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

/**
 * `repair-replica-page`: the healing action for a corrupt page of a store that is a replica on
 * this host (#14 item 5, "a replica whose scrub finds a corrupt page fetches it from the primary").
 * The data repairer cannot do it: it installs through the store's owner, and a replica store's
 * owner is this plugin's replica session, not a process with a control socket. So the session
 * asks its primary over the stream connection, verifies the copy and redoes its own log onto it
 * (ReplicaSession.repairPage); `verify` then reads each page back from the replica store, which
 * checks it, rather than trust `apply`.
 *
 * The default healing rule tries it beside `repair-page` (`anyOf`): each answers `canHandle` for
 * its own stores.
 */
import type { HealingAction } from '../../core/contracts/HealingAction.js';
import { PAGE_CORRUPTION, isPageCorruptionEvidence } from '../../core/contracts/pageCorruption.js';
import { describeError, isRaError, raError } from '../../core/errors.js';

export const REPAIR_REPLICA_PAGE = 'repair-replica-page';

/** What the action needs of a replica store's session. */
export interface ReplicaPages {
  repairPage(pageId: number): Promise<{ source: string; lsn: number; recordsRedone: number }>;
  /** Reads the page as applied; throws RA_ERR_PAGE_CORRUPT when it does not verify. */
  checkPage(pageId: number): Promise<void>;
}

export function replicaRepairAction(replicaOf: (storeId: string) => ReplicaPages | undefined): HealingAction {
  const target = (f: Parameters<HealingAction['canHandle']>[0]) =>
    f.kind === PAGE_CORRUPTION && isPageCorruptionEvidence(f.evidence) && f.evidence.pages.length > 0 ? { replica: replicaOf(f.evidence.storeId), pages: f.evidence.pages.map((p) => p.pageId), store: f.evidence.storeId } : undefined;
  return {
    id: REPAIR_REPLICA_PAGE,
    canHandle: (f) => target(f)?.replica !== undefined,
    async apply(f, ctx) {
      const t = target(f);
      if (!t?.replica) throw raError('RA_ERR_REPLICA_PAGE', `store ${String((f.evidence as { storeId?: unknown }).storeId)} is not a replica on this host any more`);
      const done: Array<{ pageId: number; source: string; lsn: number }> = [];
      const failed: Array<{ pageId: number; error: string }> = [];
      for (const pageId of t.pages) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        try {
          const r = await t.replica.repairPage(pageId);
          done.push({ pageId, source: r.source, lsn: r.lsn });
        } catch (err) {
          failed.push({ pageId, error: describeError(err) });
        }
      }
      if (failed.length > 0) {
        throw raError('RA_ERR_REPLICA_PAGE', `${failed.length} of ${t.pages.length} pages of replica store ${t.store} could not be repaired from its primary: ${failed.map((x) => `page ${x.pageId}: ${x.error}`).join('; ')}`, { details: { done, failed } });
      }
      return { summary: `${done.length} page(s) of replica store ${t.store} repaired from ${done[0]?.source ?? 'the primary'}`, details: { pages: done } };
    },
    async verify(f) {
      const t = target(f);
      if (!t?.replica) return false;
      for (const pageId of t.pages) {
        try {
          await t.replica.checkPage(pageId);
        } catch (err) {
          if (isRaError(err, 'RA_ERR_PAGE_CORRUPT')) return false;
          throw err;
        }
      }
      return true;
    },
  };
}

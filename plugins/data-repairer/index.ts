/**
 * The `data-repairer` plugin (DataRepairer v1): the `repair-page` healing action for the P0
 * `page-corruption` failure. Each page the failure names is rewritten from a verified source —
 * the owner's in-memory copy, or a copy from a page source (core/contracts/PageSource.ts: the
 * snapshot manager rebuilds one from a snapshot and the WAL; replicas will be another) —
 * through the store's live owner while an application has the store open, or directly under
 * the store lock when none has (repair.ts). A page no source can give fails the action, and the
 * healer escalates. The pages of one failure (one scan's finds) are repaired as a batch (batch.ts:
 * a few requests to the owner, one install), on a connection to the owner kept between repairs
 * (owners.ts), closed when idle.
 *
 * It works on a store only through its engine's page face, found by the store's `engine:` in
 * the config; a store whose engine has none is not repaired, and said so. Page sources are
 * looked up at each repair, so it needs none of them to register first.
 *
 * Verified independently of apply: every page named reads back from the data file and verifies.
 */
import path from 'node:path';
import { Counter, Histogram } from 'prom-client';
import { definePlugin, many } from '../../core/plugin.js';
import { repairErrors } from './errors.js';
import { keyedSerialQueues } from '../../core/serial.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { PageSource } from '../../core/contracts/PageSource.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { PAGE_CORRUPTION, isPageCorruptionEvidence } from '../../core/contracts/pageCorruption.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { describeError, raError } from '../../core/errors.js';
import { Metrics } from '../../core/tokens.js';
import { repairPages } from './batch.js';
import { OwnerConnections } from './owners.js';
import { orderSources, pageOnDisk, type PageRepairOutcome } from './repair.js';

export { repairPage, pageOnDisk, orderSources, type PageRepairOutcome, type RepairTarget } from './repair.js';
export { repairPages, type PageBatchOutcome } from './batch.js';
export { OwnerConnections } from './owners.js';

export default definePlugin({
  id: 'data-repairer',
  contractVersion: '^1.0.0',
  errorCodes: repairErrors,
  // The engines and the page sources (the snapshot manager, later replicas) start first.
  deps: { engines: many(StorageEngine), pageSources: many(PageSource), registry: Metrics },
  provides: [HealingAction],
  register(ctx, { engines, pageSources, registry }) {
    const { usable, skipped } = storesWithPageEngines(engines, ctx.config.stores);
    for (const { store, reason } of skipped) ctx.log.warn({ store: store.id, engine: store.engine }, `store "${store.id}" gets no page repairs: ${reason}`);
    const targets = new Map<string, { id: string; store: string; engine: PageEngine }>(usable.map((s) => [s.id, { id: s.id, store: path.resolve(s.path), engine: s.pageEngine }]));
    if (pageSources.length === 0) ctx.log.warn('no page source is running (snapshot-manager, replicas): corrupt pages can come back only from their owner\'s memory');
    const sources = () => orderSources(pageSources);
    const repaired = new Counter({ name: 'recovery_agent_pages_repaired_total', help: 'Corrupt pages rewritten from a verified copy, by source', labelNames: ['source'], registers: [registry] });
    const unrepaired = new Counter({ name: 'recovery_agent_page_repair_failures_total', help: 'Corrupt pages no source could repair', registers: [registry] });
    const duration = new Histogram({ name: 'recovery_agent_page_repair_duration_seconds', help: 'Time to repair one page', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [registry] });
    /** One repair at a time per store. */
    const serial = keyedSerialQueues();
    const owners = new OwnerConnections();
    const pagesOf = (f: Failure) => (isPageCorruptionEvidence(f.evidence) ? f.evidence.pages.map((p) => p.pageId) : []);
    const targetOf = (f: Failure) => (isPageCorruptionEvidence(f.evidence) ? targets.get(f.evidence.storeId) : undefined);

    const action: HealingAction = {
      id: 'repair-page',
      canHandle: (f) => f.kind === PAGE_CORRUPTION && targetOf(f) !== undefined && pagesOf(f).length > 0,
      async apply(f, hctx) {
        const target = targetOf(f)!;
        const storeId = (f.evidence as { storeId: string }).storeId;
        const done: PageRepairOutcome[] = [];
        const failed: Array<{ pageId: number; error: string }> = [];
        if (hctx.signal.aborted) throw hctx.signal.reason;
        const ends = await serial(storeId, () => repairPages(target.engine, { ...target, sources: sources(), owners }, pagesOf(f), hctx.signal)).catch((err: unknown) => {
          if (hctx.signal.aborted) throw err;
          return pagesOf(f).map((pageId) => ({ pageId, error: err as Error }));
        });
        for (const e of ends) {
          if (e.error) {
            unrepaired.inc();
            failed.push({ pageId: e.pageId, error: describeError(e.error) });
            hctx.log.error({ store: storeId, pageId: e.pageId, err: describeError(e.error) }, 'cannot repair page');
            continue;
          }
          const o = e.outcome;
          done.push(o);
          if (o.result === 'repaired') {
            repaired.inc({ source: o.source ?? 'unknown' });
            duration.observe(o.durationMs / 1000);
          }
          hctx.log.info({ store: storeId, ...o }, o.result === 'repaired' ? 'page repaired' : 'page verifies already');
        }
        if (failed.length > 0) {
          throw raError('RA_ERR_REPAIR_NO_SOURCE', `store "${storeId}": ${failed.length} page(s) not repaired (${failed.map((x) => `page ${x.pageId}: ${x.error}`).join('; ')})` + (done.length ? `; ${done.length} repaired` : ''), { details: { repaired: done, failed } });
        }
        const n = done.filter((o) => o.result === 'repaired').length;
        return {
          summary: `store "${storeId}": ${n} page(s) repaired (${done.map((o) => `${o.pageId} from ${o.source ?? 'disk, already valid'}`).join(', ')})`,
          details: { pages: done },
        };
      },
      async verify(f) {
        const target = targetOf(f)!;
        const { pageSize } = await target.engine.files.readState(target.store);
        for (const pageId of pagesOf(f)) if ((await pageOnDisk(target.engine, target.store, pageId, pageSize)).fault) return false;
        return true;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
    return { stop: () => owners.closeAll() };
  },
});

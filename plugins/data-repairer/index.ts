/**
 * The `data-repairer` plugin (DataRepairer v1): the `repair-page` healing action for the P0
 * `page-corruption` failure. Each page the failure names is rewritten from a verified source —
 * the owner's in-memory copy, or the newest snapshot's image brought up to the end of the log
 * by the WAL (rebuild.ts) — through the owner's control socket while an application has the
 * store open, or directly under the store lock when none has (repair.ts). A page no source can
 * rebuild fails the action, and the healer escalates.
 *
 * Verified independently of apply: every page named reads back from pages.db and verifies.
 * Replicas as a source come with replication (not built yet).
 */
import path from 'node:path';
import { Counter, Histogram } from 'prom-client';
import { definePlugin } from '../../core/plugin.js';
import { keyedSerialQueues } from '../../core/serial.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { describeError, raError } from '../../core/errors.js';
import { Metrics } from '../../core/tokens.js';
import { readControl } from '../pagestore/control.js';
import { PAGE_CORRUPTION, isPageCorruptionEvidence } from '../corruption-detector/pageCorruption.js';
import { pageOnDisk, repairPage, type PageRepairOutcome, type RepairTarget } from './repair.js';

export { repairPage, type PageRepairOutcome, type RepairTarget } from './repair.js';
export { rebuildPage, type RebuiltPage } from './rebuild.js';

export default definePlugin({
  id: 'data-repairer',
  contractVersion: '^1.0.0',
  deps: { registry: Metrics },
  provides: [HealingAction],
  register(ctx, { registry }) {
    const targets = new Map<string, RepairTarget>(
      ctx.config.stores
        .filter((s) => s.engine === 'pagestore')
        .map((s) => [s.id, { store: path.resolve(s.path), ...(s.snapshots ? { snapshotDir: path.resolve(s.snapshots.dir) } : {}) }]),
    );
    const repaired = new Counter({ name: 'recovery_agent_pages_repaired_total', help: 'Corrupt pages rewritten from a verified copy, by source', labelNames: ['source'], registers: [registry] });
    const unrepaired = new Counter({ name: 'recovery_agent_page_repair_failures_total', help: 'Corrupt pages no source could repair', registers: [registry] });
    const duration = new Histogram({ name: 'recovery_agent_page_repair_duration_seconds', help: 'Time to repair one page', buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5], registers: [registry] });
    /** One repair at a time per store. */
    const serial = keyedSerialQueues();
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
        for (const pageId of pagesOf(f)) {
          if (hctx.signal.aborted) throw hctx.signal.reason;
          try {
            const o = await serial(storeId, () => repairPage(target, pageId));
            done.push(o);
            if (o.result === 'repaired') {
              repaired.inc({ source: o.source ?? 'unknown' });
              duration.observe(o.durationMs / 1000);
            }
            hctx.log.info({ store: storeId, ...o }, o.result === 'repaired' ? 'page repaired' : 'page verifies already');
          } catch (err) {
            unrepaired.inc();
            failed.push({ pageId, error: describeError(err) });
            hctx.log.error({ store: storeId, pageId, err: describeError(err) }, 'cannot repair page');
          }
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
        const { pageSize } = await readControl(target.store);
        for (const pageId of pagesOf(f)) if ((await pageOnDisk(target.store, pageId, pageSize)).fault) return false;
        return true;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

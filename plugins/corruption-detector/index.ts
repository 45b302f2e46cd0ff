/**
 * CorruptionDetector: finds corrupt pages before they spread or their good copies age out.
 *
 * - Background scrub of every configured store whose engine has the page face
 *   (core/contracts/PageEngine.ts) at `scrub.rate`, a full pass every `scrub.interval`, resuming
 *   after a restart (scrubber.ts).
 * - Full-speed scans on demand through the `CorruptionDetector` service and the `POST /scans`
 *   route it contributes to the API, on the shared worker pool (outside the agent,
 *   `recovery-agent scan` runs the same scanner on native threads).
 * - Each corrupt page is published once, as a P0 `page-corruption` failure naming the store and
 *   pages (core/contracts/pageCorruption.ts). Page-corruption failures published by others (verify on read) count
 *   as published, and their pages' neighbours are scrubbed next.
 * - The live WAL checked every `scrub.walInterval` (walScrub.ts): a damaged record below the
 *   durable LSN is a `wal-corruption` (P1 while crash recovery needs it), which its action
 *   `checkpoint-past-damage` answers by having the owner checkpoint past it.
 * - Counters for metrics under the `CorruptionDetectorStats` token (core/contracts/CorruptionStats.ts).
 *
 * The plugin provides a `Detector`, which the plugin host starts with a sink on the failure bus
 * once the plugin is up, and stops before anything else of it (starting it again only swaps the sink).
 */
import type { InjectionToken } from 'tsyringe';
import { Gauge, type Registry } from 'prom-client';
import { counterFromTotals } from '../../core/metricsHelpers.js';
import { CorruptionDetectorStats, isCorruptionDetectorStats, type CorruptionStats } from '../../core/contracts/CorruptionStats.js';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import { PAGE_CORRUPTION, isPageCorruptionEvidence, pageCorruptionFailure } from '../../core/contracts/pageCorruption.js';
import { storesWithPageEngines } from '../../core/engines.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import { HttpRoute, isHttpRoute } from '../../core/contracts/HttpRoute.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { describeError, raError } from '../../core/errors.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { scrubSection } from './configSection.js';
import { createToken } from '../../core/token.js';
import { FailureBus, Metrics, WorkerPool } from '../../core/tokens.js';
import type { PageFinding } from './reasons.js';
import { scanStore, type RangeScanOptions, type StoreScanResult } from './scanner.js';
import { NEIGHBOURS, Scrubber } from './scrubber.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { WalScrubDetector, checkpointPastDamageAction, type WalStore } from './walScrub.js';

export { PAGE_CORRUPTION, pageCorruptionFailure, corruptPagesOf, type PageCorruptionEvidence, type CorruptPage } from '../../core/contracts/pageCorruption.js';
export { CorruptionDetectorStats, type CorruptionStats, type CorruptionDetectorStatsSource } from '../../core/contracts/CorruptionStats.js';
export { scanStore, PageScanner, type StoreScanResult, type RangeScanResult, type RangeScanOptions } from './scanner.js';
export { openScanTarget, walEndLsn, type ScanTarget } from './scanTarget.js';
export type { PageFinding, CorruptReason } from './reasons.js';
export type { StoreScrubStats } from './scrubber.js';

export const PLUGIN_ID = 'corruption-detector';


/** The detector's service, for the HTTP API and healing actions. */
export interface CorruptionDetectorService {
  /** Scans every page of a configured store at full speed on the worker pool; publishes what it finds. */
  scan(storeId: string, options?: Pick<RangeScanOptions, 'signal' | 'onProgress'>): Promise<StoreScanResult>;
  /** Pages to scrub next (a failed read, a page just repaired). */
  suspect(storeId: string, pageIds: Iterable<number>): void;
  stats(): CorruptionStats;
}

export const CorruptionDetector: InjectionToken<CorruptionDetectorService> = createToken<CorruptionDetectorService>('corruption-detector.CorruptionDetector');

export default definePlugin({
  id: PLUGIN_ID,
  contractVersion: '^1.0.0',
  config: [scrubSection],
  deps: { engines: many(StorageEngine), bus: FailureBus, pool: optional(WorkerPool), metrics: optional(Metrics) },
  provides: [Detector, CorruptionDetectorStats, CorruptionDetector, StatusSection, HttpRoute, HealingAction],
  register(ctx, { engines, bus, pool, metrics }) {
    const { config, log } = ctx;

    const { usable: stores, skipped } = storesWithPageEngines(engines, config.stores);
    for (const { store: s, reason } of skipped) log.info({ store: s.id, engine: s.engine }, `store not scrubbed: ${reason}`);

    const totals = { failuresPublished: 0, scans: 0, lastScanDurationMs: 0, scanPages: 0, scanBytes: 0, scanTransient: 0 };
    /** Pages known corrupt (published by us or by others), per store id: the deduplication set. */
    const known = new Map<string, Map<number, string>>(stores.map((s) => [s.id, new Map()]));
    let sink: FailureSink | null = null;
    let running = false;
    let unsubscribe: (() => void) | null = null;

    /** Publishes the pages not published yet, as one failure. */
    const report = (storeId: string, path: string, pages: readonly PageFinding[], foundBy: string): void => {
      const seen = known.get(storeId)!;
      const fresh = pages.filter((p) => !seen.has(p.pageId));
      if (fresh.length === 0) return;
      for (const p of fresh) seen.set(p.pageId, p.reason);
      log.error({ store: storeId, pages: fresh.slice(0, 20), count: fresh.length, foundBy }, 'corrupt pages found');
      if (!sink) return;
      try {
        sink.publish(pageCorruptionFailure({ storeId, path, pages: fresh, foundBy }));
        totals.failuresPublished++;
      } catch (err) {
        log.error({ store: storeId, err: describeError(err) }, 'cannot publish page-corruption failure');
      }
    };

    const scrubbers = new Map<string, Scrubber>(
      stores.map((s) => [
        s.id,
        new Scrubber({
          storeId: s.id,
          engine: s.pageEngine,
          dir: s.path,
          rate: s.scrub.rate,
          intervalMs: s.scrub.interval,
          dataDir: config.agent.dataDir,
          log,
          onScanned: (range, corrupt) => {
            report(s.id, s.path, corrupt, 'scrub');
            // A page that was corrupt and now passes has been repaired: if it breaks again, say so again.
            const seen = known.get(s.id)!;
            if (seen.size === 0) return;
            const bad = new Set(corrupt.map((c) => c.pageId));
            for (const id of [...seen.keys()]) if (id >= range.first && id < range.first + range.count && !bad.has(id)) seen.delete(id);
          },
        }),
      ]),
    );

    const suspect = (storeId: string, pageIds: Iterable<number>): void => {
      const scrubber = scrubbers.get(storeId);
      if (!scrubber) throw raError('RA_ERR_USAGE', `no pagestore store with id "${storeId}" in the config (have: ${[...scrubbers.keys()].join(', ') || 'none'})`);
      scrubber.suspect(pageIds);
    };

    /** Page-corruption failures from elsewhere (verify on read): dedupe against them, scrub their neighbourhood. */
    const onFailure = (f: { kind: string; source: string; evidence: Readonly<Record<string, unknown>> }): void => {
      if (f.kind !== PAGE_CORRUPTION || f.source === ctx.id || !isPageCorruptionEvidence(f.evidence)) return;
      const { storeId, pages } = f.evidence;
      const seen = known.get(storeId);
      if (!seen) return;
      const around: number[] = [];
      for (const p of pages) {
        seen.set(p.pageId, p.reason);
        for (let d = -NEIGHBOURS; d <= NEIGHBOURS; d++) if (d !== 0) around.push(p.pageId + d);
      }
      scrubbers.get(storeId)?.suspect(around);
    };

    const snapshot = (): CorruptionStats => {
      const perStore = Object.fromEntries([...scrubbers].map(([id, s]) => [id, { ...s.stats }]));
      const scrub = Object.values(perStore);
      return {
        pagesScanned: totals.scanPages + scrub.reduce((a, s) => a + s.pagesScanned, 0),
        bytesScanned: totals.scanBytes + scrub.reduce((a, s) => a + s.bytesScanned, 0),
        corruptPagesDetected: [...known.values()].reduce((a, m) => a + m.size, 0),
        failuresPublished: totals.failuresPublished,
        transient: totals.scanTransient + scrub.reduce((a, s) => a + s.transient, 0),
        scans: totals.scans,
        lastScanDurationMs: totals.lastScanDurationMs,
        stores: perStore,
      };
    };

    const detector: Detector = {
      id: ctx.id,
      kinds: [PAGE_CORRUPTION],
      start(s) {
        sink = s;
        if (running) return;
        running = true;
        unsubscribe = bus.subscribe(onFailure, { replay: true });
        for (const scrubber of scrubbers.values()) scrubber.start();
        log.info({ stores: [...scrubbers.keys()] }, 'background scrub started');
      },
      async stop() {
        if (!running) return;
        running = false;
        unsubscribe?.();
        unsubscribe = null;
        await Promise.all([...scrubbers.values()].map((s) => s.stop()));
      },
    };

    const service: CorruptionDetectorService = {
      async scan(storeId, options = {}) {
        const store = stores.find((s) => s.id === storeId);
        if (!store) throw raError('RA_ERR_USAGE', `no pagestore store with id "${storeId}" in the config (have: ${stores.map((s) => s.id).join(', ') || 'none'})`);
        const r = await scanStore(store.pageEngine, store.path, { ...(pool ? { pool } : {}), ...options });
        totals.scans++;
        totals.lastScanDurationMs = r.durationMs;
        totals.scanPages += r.pagesScanned;
        totals.scanBytes += r.bytesScanned;
        totals.scanTransient += r.transient;
        report(storeId, store.path, r.corrupt, 'scan');
        return r;
      },
      suspect,
      stats: snapshot,
    };

    ctx.provide(Detector, detector, isDetector);
    const walStores = new Map<string, WalStore>(stores.map((s) => [s.id, { id: s.id, dir: s.path, engine: s.pageEngine, everyMs: s.scrub.walInterval }]));
    ctx.provide(Detector, new WalScrubDetector(`${ctx.id}/wal`, [...walStores.values()], log), isDetector);
    ctx.provide(HealingAction, checkpointPastDamageAction(walStores), isHealingAction);
    ctx.provide(CorruptionDetectorStats, { snapshot }, isCorruptionDetectorStats);
    ctx.provide(CorruptionDetector, service);
    ctx.provide(StatusSection, { name: 'scrub', snapshot }, isStatusSection);
    ctx.provide(HttpRoute, {
      method: 'POST',
      path: '/scans',
      access: 'write',
      // `{ "store": id }`: a full-speed scan now; answers with its result (corrupt pages are also published).
      async handler({ body }) {
        const store = (body as { store?: unknown } | undefined)?.store;
        if (typeof store !== 'string' || !config.stores.some((s) => s.id === store)) {
          return { status: 400, body: { error: `body must be { "store": <id> } naming a configured store (have: ${config.stores.map((s) => s.id).join(', ') || 'none'})` } };
        }
        const r = await service.scan(store);
        return { status: 200, body: { store, pagesScanned: r.pagesScanned, corrupt: r.corrupt } };
      },
    }, isHttpRoute);
    if (metrics) registerMetrics(metrics, snapshot);
  },
});

/** Scan and corruption metrics, read from the running totals when scraped. */
function registerMetrics(registry: Registry, snapshot: () => CorruptionStats): void {
  counterFromTotals(registry, 'recovery_agent_scan_pages_total', 'Pages checked by scrubs and scans', [], () => [{ labels: {}, value: snapshot().pagesScanned }]);
  counterFromTotals(registry, 'recovery_agent_scan_bytes_total', 'Bytes checked by scrubs and scans', [], () => [{ labels: {}, value: snapshot().bytesScanned }]);
  counterFromTotals(registry, 'recovery_agent_corruption_detected_total', 'Distinct corrupt pages found', [], () => [{ labels: {}, value: snapshot().corruptPagesDetected }]);
  new Gauge({
    name: 'recovery_agent_scrub_position_pages',
    help: 'The next page the background scrub checks, per store',
    labelNames: ['store'] as const,
    registers: [registry],
    collect() {
      for (const [store, st] of Object.entries(snapshot().stores)) this.set({ store }, st.position);
    },
  });
  new Gauge({
    name: 'recovery_agent_scrub_last_pass_seconds',
    help: 'Duration of the last complete scrub pass, per store',
    labelNames: ['store'] as const,
    registers: [registry],
    collect() {
      for (const [store, st] of Object.entries(snapshot().stores)) this.set({ store }, st.lastPassDurationMs / 1000);
    },
  });
}

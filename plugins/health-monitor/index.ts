/**
 * HealthMonitor: samples the host and the stores every `health.interval`, scores them 0–100,
 * keeps a history, and predicts exhaustion before it happens (README.md).
 *
 * Its built-in probes are provided under the `HealthProbe` token like any third-party probe,
 * and every running plugin's probe is sampled. It also contributes `GET /health/history` (its
 * samples) to the API, a `healthMonitor` section of `/status`, and the health metrics; and it
 * is a `Detector`: the plugin host starts it with a sink on the failure bus. Besides the level
 * and exhaustion failures it publishes `store-missing` / `store-unopenable` for a store that
 * cannot be opened once `health.storeGrace` has passed, and resolves them when it opens
 * (storePresence.ts).
 */
import os from 'node:os';
import type { InjectionToken } from 'tsyringe';
import { CorruptionDetectorStats } from '../../core/contracts/CorruptionStats.js';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import { HealthProbe, isHealthProbe } from '../../core/contracts/HealthProbe.js';
import { HttpRoute, isHttpRoute } from '../../core/contracts/HttpRoute.js';
import { PAGE_CORRUPTION, isPageCorruptionEvidence } from '../../core/contracts/pageCorruption.js';
import { ProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { healthSection } from './configSection.js';
import { createToken } from '../../core/token.js';
import { Metrics, Orchestrator, PluginHost } from '../../core/tokens.js';
import { parseHistoryQuery } from './history.js';
import { cpuProbe, ioProbe, memoryProbe, networkProbe } from './hostProbes.js';
import { registerHealthMetrics } from './metrics.js';
import { HEALTH_CRITICAL, HEALTH_DEGRADED, MEMORY_LEAK, PREDICTED_EXHAUSTION, HealthMonitor as Monitor, type HealthSnapshot } from './monitor.js';
import { MEMORY_PRESSURE, MemoryPressureWatch } from './memoryPressure.js';
import { diskProbe, processProbe, storeProbe, watchedFilesystems, type StoreLookups } from './storageProbes.js';
import { STORE_MISSING, STORE_UNOPENABLE, StorePresence } from './storePresence.js';

export { MEMORY_PRESSURE } from './memoryPressure.js';
export { HEALTH_CRITICAL, HEALTH_DEGRADED, MEMORY_LEAK, PREDICTED_EXHAUSTION, type HealthSnapshot, type PredictionState, type ProbeState } from './monitor.js';
export { STORE_MISSING, STORE_UNOPENABLE } from './storePresence.js';
export { ExhaustionPredictor, fitLine, type Prediction, type PredictorOptions, type ResourceReading } from './predictor.js';
export { combineScores, levelOf, lineScore, type HealthLevel } from './score.js';

export const PLUGIN_ID = 'health-monitor';

/** The monitor's state, for other plugins and tests. */
export interface HealthMonitorService {
  snapshot(): HealthSnapshot;
}
export const HealthMonitor: InjectionToken<HealthMonitorService> = createToken<HealthMonitorService>('health-monitor.HealthMonitor');

export default definePlugin({
  id: PLUGIN_ID,
  contractVersion: '^1.0.0',
  config: [healthSection],
  deps: {
    engines: many(StorageEngine),
    orchestrator: optional(Orchestrator),
    corruption: optional(CorruptionDetectorStats),
    supervisor: optional(ProcessSupervisor),
    metrics: optional(Metrics),
    host: optional(PluginHost),
  },
  provides: [HealthProbe, HealthMonitor, StatusSection, HttpRoute, Detector],
  register(ctx, { engines, orchestrator, corruption, supervisor, metrics, host }) {
    const { config, log } = ctx;
    const cfg = config.health;
    if (!cfg.enabled) {
      log.info('health monitoring is off (health.enabled: false)');
      ctx.provide(HttpRoute, { method: 'GET', path: '/health/history', access: 'read', handler: () => ({ status: 404, body: { error: 'no health history: the health-monitor plugin is not running (health.enabled: false)' } }) }, isHttpRoute);
      return;
    }
    const th = cfg.thresholds;
    let sink: FailureSink | null = null;
    const presence = new StorePresence({
      graceMs: cfg.storeGrace,
      log,
      writers: new Map(config.processes.filter((p) => p.store).map((p) => [p.store!, p.id])),
      sink: () => sink,
    });
    const lookups: StoreLookups = {
      observed: (storeId, storePath, condition) => presence.observe(storeId, storePath, condition),
      openCorruptPages: (storeId) => {
        let pages = 0;
        for (const o of orchestrator?.openFailures() ?? []) {
          const e = o.failure.evidence;
          if (o.failure.kind === PAGE_CORRUPTION && isPageCorruptionEvidence(e) && e.storeId === storeId) pages += e.pages.length;
        }
        return pages;
      },
      corruptFound: (storeId) => corruption?.snapshot().stores[storeId]?.corruptFound,
    };
    const { usable: pageStores, skipped } = storesWithPageEngines(engines, config.stores);
    for (const { store, reason } of skipped) log.info({ store: store.id, engine: store.engine }, `no store probe (WAL, checkpoint age) for this store: ${reason}`);
    const builtins: HealthProbe[] = [
      cpuProbe(th),
      memoryProbe(th),
      ioProbe(th),
      networkProbe(th),
      ...watchedFilesystems([config.agent.dataDir, ...cfg.paths], config.stores).map((fs) => diskProbe(fs, th)),
      ...pageStores.map((s) => storeProbe(s, th, lookups)),
      ...config.processes.map((p) => processProbe(p.id, th, () => supervisor?.list() ?? [], () => os.totalmem(), p.memoryLimit)),
    ];
    for (const p of builtins) ctx.provide(HealthProbe, p, isHealthProbe);

    const pressure = new MemoryPressureWatch(th.memory, cfg.sustain, () => supervisor?.list() ?? []);
    const monitor = new Monitor({
      config: cfg,
      log,
      // Ours, and every other running plugin's, looked up at each tick.
      probes: () => [...builtins, ...(host?.contributions(HealthProbe).map((c) => c.value) ?? [])],
      // The monitor publishes only once started, and the host starts it (below) with the sink.
      sink: { publish: (f) => sink!.publish(f) },
      observe: (probes, now, publish) => pressure.observe(probes.find((p) => p.id === 'memory' && p.score !== null)?.metrics, now, publish),
    });
    const detector: Detector = {
      id: ctx.id,
      kinds: [HEALTH_DEGRADED, HEALTH_CRITICAL, PREDICTED_EXHAUSTION, MEMORY_LEAK, MEMORY_PRESSURE, STORE_MISSING, STORE_UNOPENABLE],
      start(s) {
        sink = s;
        presence.start();
        monitor.start();
      },
      stop: () => monitor.stop(),
    };
    ctx.provide(Detector, detector, isDetector);
    ctx.provide(HealthMonitor, { snapshot: () => monitor.snapshot() });
    ctx.provide(HttpRoute, {
      method: 'GET',
      path: '/health/history',
      access: 'read',
      // ?metrics=a,b*&since=5m&limit=N; a bad parameter throws RA_ERR_USAGE, which answers 400.
      handler: ({ query }) => ({ status: 200, body: monitor.history.query(parseHistoryQuery(query, monitor.history.capacity)) }),
    }, isHttpRoute);
    ctx.provide(StatusSection, { name: 'healthMonitor', snapshot: () => statusOf(monitor.snapshot()) }, isStatusSection);
    if (metrics) registerHealthMetrics(metrics, () => monitor.snapshot());
    log.info({ probes: builtins.map((p) => p.id), intervalMs: cfg.interval }, 'health monitor ready');
  },
});

/** The `/status` section: the score, components, and predictions that are ready. */
function statusOf(s: HealthSnapshot): Record<string, unknown> {
  return {
    at: s.at,
    score: s.score,
    level: s.level,
    components: s.components.map((c) => ({ component: c.component, score: Math.round(c.score), weight: c.weight, probes: c.probes.map((p) => `${p.id} ${Math.round(p.score)}`) })),
    failingProbes: s.probes.filter((p) => p.error).map((p) => ({ id: p.id, error: p.error })),
    ...(s.probes.some((p) => p.reason) ? { probeReasons: s.probes.filter((p) => p.reason).map((p) => ({ id: p.id, score: p.score === null ? null : Math.round(p.score), reason: p.reason })) } : {}),
    predictions: s.predictions.map((p) => ({ resource: p.resource, ready: p.ready, etaSeconds: p.etaSeconds === null ? null : Math.round(p.etaSeconds), probability: Number(p.probability.toFixed(3)), alerting: p.alerting, availableRatio: p.total > 0 ? Number((p.available / p.total).toFixed(4)) : null })),
  };
}

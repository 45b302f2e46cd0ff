/**
 * HealthMonitor: samples the host and the stores every `health.interval`, scores them 0–100,
 * keeps a history, and predicts exhaustion before it happens (README.md).
 *
 * Its built-in probes are provided under the `HealthProbe` token like any third-party probe,
 * and every probe in the container is sampled. It also provides the `HealthHistory` served at
 * `GET /health/history`, a `healthMonitor` section of `/status`, and the health metrics.
 */
import os from 'node:os';
import type { InjectionToken } from 'tsyringe';
import { CorruptionDetectorStats } from '../../core/contracts/CorruptionStats.js';
import { HealthProbe, isHealthProbe } from '../../core/contracts/HealthProbe.js';
import { PAGE_CORRUPTION, isPageCorruptionEvidence } from '../../core/contracts/pageCorruption.js';
import { ProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { definePlugin } from '../../core/plugin.js';
import { healthSection } from './configSection.js';
import { FailureBus, HealthHistory, Metrics, Orchestrator, StatusSection } from '../../core/tokens.js';
import { parseHistoryQuery } from './history.js';
import { cpuProbe, ioProbe, memoryProbe, networkProbe } from './hostProbes.js';
import { registerHealthMetrics } from './metrics.js';
import { HealthMonitor as Monitor, type HealthSnapshot } from './monitor.js';
import { diskProbe, processProbe, storeProbe, watchedFilesystems, type StoreLookups } from './storageProbes.js';

export { HEALTH_CRITICAL, HEALTH_DEGRADED, PREDICTED_EXHAUSTION, type HealthSnapshot, type PredictionState, type ProbeState } from './monitor.js';
export { ExhaustionPredictor, fitLine, type Prediction, type PredictorOptions, type ResourceReading } from './predictor.js';
export { combineScores, levelOf, lineScore, type HealthLevel } from './score.js';

export const PLUGIN_ID = 'health-monitor';

/** The monitor's state, for other plugins and tests. */
export interface HealthMonitorService {
  snapshot(): HealthSnapshot;
}
export const HealthMonitor: InjectionToken<HealthMonitorService> = Symbol.for('recovery-agent.HealthMonitor');

export default definePlugin({
  id: PLUGIN_ID,
  contractVersion: '^1.0.0',
  config: [healthSection],
  register(ctx) {
    const { config, container, log } = ctx;
    const cfg = config.health;
    if (!cfg.enabled) {
      log.info('health monitoring is off (health.enabled: false)');
      return;
    }
    const th = cfg.thresholds;
    const lookups: StoreLookups = {
      openCorruptPages: (storeId) => {
        if (!container.isRegistered(Orchestrator, true)) return 0;
        let pages = 0;
        for (const o of container.resolve(Orchestrator).openFailures()) {
          const e = o.failure.evidence;
          if (o.failure.kind === PAGE_CORRUPTION && isPageCorruptionEvidence(e) && e.storeId === storeId) pages += e.pages.length;
        }
        return pages;
      },
      corruptFound: (storeId) => (container.isRegistered(CorruptionDetectorStats, true) ? container.resolve(CorruptionDetectorStats).snapshot().stores[storeId]?.corruptFound : undefined),
    };
    const { usable: pageStores, skipped } = storesWithPageEngines(container, config.stores);
    for (const { store, reason } of skipped) log.info({ store: store.id, engine: store.engine }, `no store probe (WAL, checkpoint age) for this store: ${reason}`);
    const builtins: HealthProbe[] = [
      cpuProbe(th),
      memoryProbe(th),
      ioProbe(th),
      networkProbe(th),
      ...watchedFilesystems([config.agent.dataDir, ...cfg.paths], config.stores).map((fs) => diskProbe(fs, th)),
      ...pageStores.map((s) => storeProbe(s, th, lookups)),
      ...config.processes.map((p) =>
        processProbe(p.id, th, () => (container.isRegistered(ProcessSupervisor, true) ? container.resolve(ProcessSupervisor).list() : []), () => os.totalmem()),
      ),
    ];
    for (const p of builtins) ctx.provide(HealthProbe, p, isHealthProbe);

    const monitor = new Monitor({
      config: cfg,
      log,
      // Ours, and any other plugin's (only running plugins' probes are in the container).
      probes: () => [...builtins, ...(container.isRegistered(HealthProbe, true) ? container.resolveAll(HealthProbe) : [])],
      sink: container.resolve(FailureBus).sinkFor(ctx.id),
    });
    ctx.provide(HealthMonitor, { snapshot: () => monitor.snapshot() });
    ctx.provide(HealthHistory, { query: (params) => monitor.history.query(parseHistoryQuery(params, monitor.history.capacity)) });
    ctx.provide(StatusSection, { name: 'healthMonitor', snapshot: () => statusOf(monitor.snapshot()) });
    if (container.isRegistered(Metrics, true)) registerHealthMetrics(container.resolve(Metrics), () => monitor.snapshot());
    log.info({ probes: builtins.map((p) => p.id), intervalMs: cfg.interval }, 'health monitor ready');
    return {
      start: () => monitor.start(),
      stop: () => monitor.stop(),
    };
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
    predictions: s.predictions.map((p) => ({ resource: p.resource, ready: p.ready, etaSeconds: p.etaSeconds === null ? null : Math.round(p.etaSeconds), probability: Number(p.probability.toFixed(3)), alerting: p.alerting, availableRatio: p.total > 0 ? Number((p.available / p.total).toFixed(4)) : null })),
  };
}

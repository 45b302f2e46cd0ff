/**
 * The health monitor's Prometheus metrics, read from its last sample when scraped.
 */
import { Gauge, type Registry } from 'prom-client';
import type { HealthSnapshot } from './monitor.js';
import { LEVEL_RANK } from './score.js';

export function registerHealthMetrics(registry: Registry, snapshot: () => HealthSnapshot): void {
  new Gauge({
    name: 'recovery_agent_health_score',
    help: 'Host health score, 0-100: 80+ healthy, 50-79 degraded, below 50 critical',
    registers: [registry],
    collect() {
      this.set(snapshot().score);
    },
  });
  new Gauge({
    name: 'recovery_agent_health_level',
    help: 'Health level in force: 0 healthy, 1 degraded, 2 critical',
    registers: [registry],
    collect() {
      this.set(LEVEL_RANK[snapshot().level]);
    },
  });
  new Gauge({
    name: 'recovery_agent_health_component_score',
    help: 'Score of each health component (its worst probe), 0-100',
    labelNames: ['component'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const c of snapshot().components) this.set({ component: c.component }, c.score);
    },
  });
  new Gauge({
    name: 'recovery_agent_health_probe_score',
    help: 'Score of each health probe, 0-100 (probes that failed are absent)',
    labelNames: ['probe'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of snapshot().probes) if (p.score !== null) this.set({ probe: p.id }, p.score);
    },
  });
  new Gauge({
    name: 'recovery_agent_predicted_failure_probability',
    help: 'Probability that a resource is exhausted within the prediction horizon, from the fitted trend',
    labelNames: ['resource'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of snapshot().predictions) this.set({ resource: p.resource }, p.probability);
    },
  });
  new Gauge({
    name: 'recovery_agent_predicted_exhaustion_seconds',
    help: 'Predicted seconds until a resource is exhausted at its fitted rate (absent while it is not running out)',
    labelNames: ['resource'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const p of snapshot().predictions) if (p.ready && p.etaSeconds !== null) this.set({ resource: p.resource }, p.etaSeconds);
    },
  });
}

/**
 * Prometheus metrics (prefix `recovery_agent_`), served by `GET /metrics`. The registry is in
 * the container under the `Metrics` token, so plugins add their own metrics to it; the core
 * records failures and recoveries from the orchestrator's events.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Orchestrator } from './orchestrator/orchestrator.js';

/**
 * prom-client's default metrics that break the naming rules: gauges with a `_total` name, which
 * `promtool check metrics` rejects and which Prometheus tools then take for counters (a `rate()`
 * over a gauge). Each is the sum of a per-`type` gauge that stays
 * (`sum(recovery_agent_nodejs_active_handles)`), so nothing is lost by leaving them out.
 */
const MISNAMED_DEFAULT_METRICS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  const prefix = 'recovery_agent_';
  collectDefaultMetrics({ register: registry, prefix });
  for (const name of MISNAMED_DEFAULT_METRICS) registry.removeSingleMetric(prefix + name);
  return registry;
}

/** Metrics of the orchestrator: failures, recoveries, RTO. */
export function instrumentOrchestrator(registry: Registry, orchestrator: Orchestrator): void {
  const failures = new Counter({
    name: 'recovery_agent_failures_detected_total',
    help: 'Failures published by detectors, by kind and priority',
    labelNames: ['kind', 'priority'] as const,
    registers: [registry],
  });
  const recoveries = new Counter({
    name: 'recovery_agent_recoveries_total',
    help: 'Recoveries finished, by outcome (recovered, failed, no-action)',
    labelNames: ['outcome', 'priority'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'recovery_agent_recovery_duration_seconds',
    help: 'Time from a failure\'s detection to its verified fix (the RTO), for successful recoveries',
    labelNames: ['priority'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600],
    registers: [registry],
  });
  const escalations = new Counter({ name: 'recovery_agent_escalations_total', help: 'Failures automation could not fix', registers: [registry] });
  new Gauge({
    name: 'recovery_agent_rto_compliance_ratio',
    help: 'Share of recoveries that ended recovered within their RTO target',
    registers: [registry],
    collect() {
      this.set(orchestrator.snapshot().rtoComplianceRate ?? 1);
    },
  });
  new Gauge({
    name: 'recovery_agent_recoveries_in_progress',
    help: 'Recoveries running now',
    registers: [registry],
    collect() {
      this.set(orchestrator.snapshot().running);
    },
  });
  new Gauge({
    name: 'recovery_agent_failures_queued',
    help: 'Failures waiting for a recovery slot',
    registers: [registry],
    collect() {
      this.set(orchestrator.snapshot().queued);
    },
  });
  orchestrator.on('failure', (f) => failures.inc({ kind: f.kind, priority: f.priority }));
  orchestrator.on('recovery', (r) => {
    recoveries.inc({ outcome: r.outcome, priority: r.priority });
    if (r.outcome === 'recovered') duration.observe({ priority: r.priority }, r.rtoMs / 1000);
  });
  orchestrator.on('escalation', () => escalations.inc());
  const retries = new Counter({
    name: 'recovery_agent_recovery_retries_total',
    help: 'Failed recoveries run again, by failure kind and what woke the retry (condition: what blocked it cleared; backoff)',
    labelNames: ['kind', 'trigger'] as const,
    registers: [registry],
  });
  orchestrator.on('retry', (f, r) => retries.inc({ kind: f.kind, trigger: r.trigger }));
}

// The health monitor inside the agent: config defaults and errors, GET /health/history, the
// /status section and the metrics.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import healthMonitor from '../../../plugins/health-monitor/index.js';
import { captureLogger } from '../../helpers/logCapture.js';

const configFor = (health: Record<string, unknown>, http = true) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-health-'));
  return validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { enabled: http, listen: '127.0.0.1:0' } }, health }, path.join(dir, 'agent.yaml'), {});
};

describe('health config', () => {
  it('has documented defaults', () => {
    const h = configFor({}).health;
    assert.equal(h.interval, 1000);
    assert.equal(h.retention, 3_600_000);
    assert.deepEqual(h.prediction, { enabled: true, window: 300_000, recent: 30_000, horizon: 300_000, guard: 0.2, sustain: 60, minProbability: 0.9 });
    assert.deepEqual(h.thresholds.disk, { good: 0.25, bad: 0 });
    assert.deepEqual(h.thresholds.walBytes, { good: 256 * 2 ** 20, bad: 4 * 2 ** 30 });
    assert.equal(h.weights.disk, 3);
  });

  it('names the key, the value and what was expected', () => {
    assert.throws(() => configFor({ interval: '10ms' }), /health\.interval: expected an interval of 50ms or more \(got 10\)/);
    assert.throws(() => configFor({ prediction: { window: '1m', recent: '2m' } }), /health\.prediction\.recent: expected a recent span from 3 intervals \(3000 ms\) to the window \(60000 ms\)/);
    assert.throws(() => configFor({ thresholds: { disk: { good: 0.1, bad: 0.1 } } }), /health\.thresholds\.disk: expected good and bad to differ/);
    assert.throws(() => configFor({ weights: { dsik: 2 } }), /health\.weights: unknown key "dsik"/);
    assert.throws(() => configFor({ prediction: { guard: 0 } }), /health\.prediction\.guard/);
  });

  it('resolves health.paths against the config file', () => {
    const c = configFor({ paths: ['./data'] });
    assert.equal(c.health.paths[0], path.join(path.dirname(c.source!), 'data'));
  });
});

describe('health monitor in the agent', () => {
  it('serves GET /health/history, a /status section and the health metrics', async () => {
    const agent = new Agent({ config: configFor({ interval: '100ms' }), builtins: [healthMonitor], log: captureLogger().log });
    await agent.start();
    try {
      const base = `http://${agent.httpAddress}`;
      await sleep(700);
      const h = (await (await fetch(`${base}/health/history`)).json()) as { intervalMs: number; timestamps: number[]; series: Record<string, number[]>; metrics: string[] };
      assert.equal(h.intervalMs, 100);
      assert.ok(h.timestamps.length >= 4, `${h.timestamps.length} samples`);
      assert.ok(h.series.score!.every((v) => v >= 0 && v <= 100));
      assert.ok(Object.keys(h.series).includes('component.cpu'));
      assert.ok(h.metrics.includes('memory.available_ratio') && h.metrics.includes('memory.probability'));
      const some = (await (await fetch(`${base}/health/history?metrics=cpu.*&limit=2`)).json()) as { timestamps: number[]; series: Record<string, number[]> };
      assert.equal(some.timestamps.length, 2);
      assert.ok(Object.keys(some.series).every((k) => k.startsWith('cpu.')) && 'cpu.busy_ratio' in some.series);
      const bad = await fetch(`${base}/health/history?since=yesterday`);
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /since must be/);

      const status = (await (await fetch(`${base}/status`)).json()) as { healthMonitor: { score: number; level: string; components: Array<{ component: string }> }; health: { healthy: boolean } };
      assert.equal(typeof status.healthMonitor.score, 'number');
      assert.ok(['healthy', 'degraded', 'critical'].includes(status.healthMonitor.level));
      assert.equal(typeof status.health.healthy, 'boolean', 'the core health field is not shadowed');

      const metrics = await (await fetch(`${base}/metrics`)).text();
      for (const name of ['recovery_agent_health_score', 'recovery_agent_health_component_score{component="memory"}', 'recovery_agent_predicted_failure_probability{resource="memory"}']) {
        assert.match(metrics, new RegExp(`^${name.replace(/[{}]/g, '\\$&')} [0-9.e+-]+$`, 'm'), name);
      }
    } finally {
      await agent.stop();
    }
  });

  it('answers 404 on GET /health/history when the monitor is off', async () => {
    const agent = new Agent({ config: configFor({ enabled: false }), builtins: [healthMonitor], log: captureLogger().log });
    await agent.start();
    try {
      const res = await fetch(`http://${agent.httpAddress}/health/history`);
      assert.equal(res.status, 404);
      assert.match(((await res.json()) as { error: string }).error, /health-monitor plugin is not running/);
    } finally {
      await agent.stop();
    }
  });
});

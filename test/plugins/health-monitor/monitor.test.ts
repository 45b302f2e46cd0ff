// The score, the levels and their failures, probe isolation, and the history, with fake probes
// and time driven by the test (monitor.tick(now)).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../cli/config.js';
import type { FailureInput } from '../../../core/contracts/Failure.js';
import type { HealthProbe, HealthSample } from '../../../core/contracts/HealthProbe.js';
import { HealthHistory, parseHistoryQuery } from '../../../plugins/health-monitor/history.js';
import { HealthMonitor } from '../../../plugins/health-monitor/monitor.js';
import { blame, combineScores, levelOf, lineScore } from '../../../plugins/health-monitor/score.js';
import { captureLogger } from '../../helpers/logCapture.js';

function setup(health: Record<string, unknown> = {}) {
  const config = validateConfig({ health: { interval: '1s', sustain: 3, ...health } }, '/tmp/agent.yaml', {}).health;
  const published: FailureInput[] = [];
  const scores: Record<string, number | Error | (() => Promise<HealthSample>)> = {};
  const probe = (id: string): HealthProbe => ({
    id,
    async sample() {
      const s = scores[id];
      if (s instanceof Error) throw s;
      if (typeof s === 'function') return s();
      return { metrics: { value: s ?? 100 }, score: s ?? 100 };
    },
  });
  const probes = ['cpu', 'memory', 'disk:/a', 'disk:/b', 'store:demo'].map(probe);
  const monitor = new HealthMonitor({ config, log: captureLogger().log, probes: () => probes, sink: { publish: (f) => (published.push(f), f as never) } });
  let now = 1_000_000;
  const tick = () => monitor.tick((now += 1000));
  return { monitor, scores, published, tick, probes };
}

describe('health score', () => {
  it('scores a reading linearly between good (100) and bad (0), either way round', () => {
    assert.equal(lineScore(0.3, { good: 0.25, bad: 0 }), 100);
    assert.equal(lineScore(0.1, { good: 0.2, bad: 0 }), 50);
    assert.equal(lineScore(-1, { good: 0.2, bad: 0 }), 0);
    assert.equal(lineScore(1, { good: 0.5, bad: 1.5 }), 50); // a saturated CPU
    assert.deepEqual([levelOf(80), levelOf(79.9), levelOf(50), levelOf(49.9)], ['healthy', 'degraded', 'degraded', 'critical']);
  });

  it('weighs components, a component scoring as its worst probe, and never hides a failing one', () => {
    const w: Record<string, number> = { cpu: 1, disk: 3, memory: 2, extra: 0 };
    const c = combineScores([{ id: 'cpu', score: 100 }, { id: 'disk:/a', score: 100 }, { id: 'disk:/b', score: 60 }, { id: 'memory', score: 90 }, { id: 'extra', score: 0 }], (x) => w[x] ?? 1, 30);
    assert.equal(c.components.find((x) => x.component === 'disk')!.score, 60);
    assert.equal(c.score, 76.7); // (100 + 3·60 + 2·90) / 6, rounded: the weight-0 component is shown, not counted
    assert.equal(c.level, 'degraded');
    const failing = combineScores([{ id: 'cpu', score: 100 }, { id: 'memory', score: 100 }, { id: 'disk:/a', score: 5 }], (x) => w[x] ?? 1, 30);
    assert.equal(failing.score, 35); // the mean would be 62: capped at worst + margin
    assert.equal(failing.level, 'critical');
    assert.deepEqual(blame(failing).map((x) => x.component), ['disk']);
  });
});

describe('health monitor', () => {
  it('publishes health-degraded, then health-critical, naming the components to blame, once each level has held', async () => {
    const { scores, published, tick, monitor } = setup();
    await tick();
    scores['disk:/b'] = 40; // disk below 50: the host is at most 70, degraded
    await tick();
    await tick();
    assert.equal(published.length, 0, 'not before `sustain` samples');
    assert.equal(monitor.snapshot().level, 'healthy');
    await tick();
    assert.equal(monitor.snapshot().level, 'degraded');
    assert.equal(published.length, 1);
    const f = published[0]!;
    assert.deepEqual([f.kind, f.priority, f.subject], ['health-degraded', 'P3', 'host']);
    const ev = f.evidence as { score: number; previousLevel: string; blame: Array<{ component: string; probes: Array<{ id: string; score: number; metrics: Record<string, number> }> }> };
    assert.equal(ev.previousLevel, 'healthy');
    assert.deepEqual(ev.blame.map((b) => b.component), ['disk']);
    assert.deepEqual(ev.blame[0]!.probes.map((p) => [p.id, p.score]), [['disk:/b', 40], ['disk:/a', 100]]);
    assert.equal(ev.blame[0]!.probes[0]!.metrics.value, 40);

    scores['store:demo'] = 10;
    for (let i = 0; i < 3; i++) await tick();
    assert.deepEqual(published.map((x) => [x.kind, x.priority]), [['health-degraded', 'P3'], ['health-critical', 'P2']]);
    assert.deepEqual((published[1]!.evidence as { blame: Array<{ component: string }> }).blame.map((b) => b.component), ['store', 'disk']);

    // Back to healthy: after `sustain` samples, with nothing published; a new fall publishes again.
    delete scores['disk:/b'];
    delete scores['store:demo'];
    for (let i = 0; i < 3; i++) await tick();
    assert.equal(monitor.snapshot().level, 'healthy');
    assert.equal(published.length, 2);
  });

  it('does not publish on a dip shorter than `sustain`, nor on flapping around 80', async () => {
    const { scores, published, tick } = setup();
    for (let i = 0; i < 20; i++) {
      scores.memory = i % 2 === 0 ? 45 : 100; // 45 → host 75 (degraded) every other sample
      await tick();
    }
    assert.deepEqual(published, []);
  });

  it('takes the mildest level of a worse streak: degraded/critical alternating is degraded', async () => {
    const { scores, published, tick, monitor } = setup();
    for (let i = 0; i < 3; i++) {
      scores.memory = i % 2 === 0 ? 5 : 40;
      await tick();
    }
    assert.equal(monitor.snapshot().level, 'degraded');
    assert.deepEqual(published.map((f) => f.kind), ['health-degraded']);
  });

  it('leaves a probe that throws, hangs or answers garbage out of the score, and says why', async () => {
    const { scores, tick } = setup();
    scores.cpu = new Error('no /proc here');
    scores.memory = async () => ({ score: 'high' }) as never;
    scores['disk:/a'] = () => new Promise(() => undefined); // never answers
    const s = await tick();
    const byId = new Map(s.probes.map((p) => [p.id, p]));
    assert.match(byId.get('cpu')!.error!, /no \/proc here/);
    assert.match(byId.get('memory')!.error!, /finite score/);
    assert.match(byId.get('disk:/a')!.error!, /no sample within 1000 ms/);
    assert.equal(byId.get('disk:/a')!.score, null);
    assert.deepEqual(s.components.map((c) => c.component).sort(), ['disk', 'store']);
    const again = await tick();
    assert.match(again.probes.find((p) => p.id === 'disk:/a')!.error!, /still sampling/);
  });

  it('weighs third-party probes by health.weights.probes, and 0 turns a component off', async () => {
    const { scores, tick } = setup({ weights: { store: 0, probes: { queue: 5 } } });
    scores['store:demo'] = 0;
    const s = await tick();
    assert.equal(s.score, 100);
    assert.equal(s.components.find((c) => c.component === 'store')!.weight, 0);
  });

  it('predicts from the resources probes report and publishes predicted-exhaustion with the stores to checkpoint', async () => {
    const { scores, published, tick } = setup({ prediction: { window: '20s', recent: '5s', horizon: '60s', sustain: 3 } });
    let free = 10e9;
    scores['disk:/a'] = async () => ({ metrics: {}, score: 100, resources: { 'disk:/a': { available: (free -= 100e6), total: 100e9, unit: 'bytes', stores: ['demo'] } } });
    for (let i = 0; i < 60 && !published.some((f) => f.kind === 'predicted-exhaustion'); i++) await tick();
    const f = published.find((x) => x.kind === 'predicted-exhaustion')!;
    assert.ok(f, 'predicted');
    assert.deepEqual([f.priority, f.subject, f.fingerprint], ['P2', 'disk:/a', 'predicted-exhaustion|disk:/a']);
    const ev = f.evidence as Record<string, unknown>;
    assert.deepEqual(ev.stores, ['demo']);
    assert.equal(ev.store, 'demo');
    assert.equal(ev.unit, 'bytes');
    assert.ok(Math.abs((ev.ratePerSecond as number) - 100e6) < 1e3);
    assert.ok(Math.abs((ev.etaSeconds as number) - (ev.available as number) / 100e6) < 0.01);
    assert.equal(ev.horizonSeconds, 60);
  });
});

describe('health history', () => {
  it('keeps a fixed-size ring per metric and answers queries by name, prefix, time and count', () => {
    const h = new HealthHistory(4, 1000);
    for (let i = 1; i <= 6; i++) h.append(i * 1000, new Map([['score', i], ['component.cpu', 10 * i], ...(i === 6 ? [['late', 1] as [string, number]] : [])]));
    assert.equal(h.size, 4);
    const all = h.query();
    assert.deepEqual(all.timestamps, [3000, 4000, 5000, 6000]);
    assert.deepEqual(all.series, { score: [3, 4, 5, 6], 'component.cpu': [30, 40, 50, 60] });
    assert.deepEqual(h.query({ metrics: ['late'], since: 5000 }).series, { late: [null, 1] });
    assert.deepEqual(h.query({ metrics: ['*'], limit: 1 }).series, { 'component.cpu': [60], late: [1], score: [6] });
    assert.deepEqual(h.last('score', 2), [5, 6]);
  });

  it('reads the query string of GET /health/history, refusing bad values with RA_ERR_USAGE', () => {
    assert.deepEqual(parseHistoryQuery({ metrics: 'score, cpu.*', since: '5m', limit: '10' }, 100, 1_000_000), { metrics: ['score', 'cpu.*'], since: 700_000, limit: 10 });
    assert.deepEqual(parseHistoryQuery({ since: '1795000000000' }, 100), { since: 1795000000000 });
    assert.throws(() => parseHistoryQuery({ limit: '0' }, 100), { code: 'RA_ERR_USAGE', message: /limit must be an integer from 1 to 100 \(got "0"\)/ });
    assert.throws(() => parseHistoryQuery({ since: 'yesterday' }, 100), { code: 'RA_ERR_USAGE' });
    assert.throws(() => parseHistoryQuery({ metrics: ['a', 'b'] }, 100), { code: 'RA_ERR_USAGE' });
  });
});

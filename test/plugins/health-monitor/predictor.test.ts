// The predictor on synthetic series at the default settings (window 5 min, recent 30 s, horizon
// 5 min, guard 20 %, sustain 60 samples, samples every second): a steady fill alerts with an
// ETA within ±10 %; a burst that stops, a sawtooth and noise never alert.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { validateConfig } from '../../../cli/config.js';
import { ExhaustionPredictor, exhaustionProbability, fitLine, normalCdf, type Prediction, type PredictorOptions } from '../../../plugins/health-monitor/predictor.js';

const p = validateConfig({}, '/tmp/x.yaml', {}).health.prediction;
const DEFAULTS: PredictorOptions = { windowMs: p.window, recentMs: p.recent, horizonMs: p.horizon, guard: p.guard, sustain: p.sustain, minProbability: p.minProbability };
const TOTAL = 100e9;

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Runs a series of available bytes (one per second) through a predictor; returns each prediction. */
function run(series: (s: number) => number, seconds: number, o: Partial<PredictorOptions> = {}): Prediction[] {
  const pr = new ExhaustionPredictor({ ...DEFAULTS, ...o });
  const out: Prediction[] = [];
  for (let s = 0; s < seconds; s++) out.push(pr.push(s * 1000, { available: Math.max(0, series(s)), total: TOTAL }));
  return out;
}

describe('least-squares fit', () => {
  it('finds the slope of a line and its standard error', () => {
    const ts = [0, 1000, 2000, 3000, 4000];
    const exact = fitLine(ts, [10, 8, 6, 4, 2], 0)!;
    assert.equal(exact.slope, -2);
    assert.equal(exact.slopeStdErr, 0);
    assert.equal(exact.spanSeconds, 4);
    const noisy = fitLine(ts, [10, 8.5, 6, 3.5, 2], 0)!;
    assert.ok(Math.abs(noisy.slope + 2.1) < 1e-9, `slope ${noisy.slope}`);
    assert.ok(noisy.slopeStdErr > 0);
    assert.equal(fitLine([0, 1000], [1, 2], 0), null);
  });

  it('turns the slope and its error into a probability of exhaustion within the horizon', () => {
    assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7 && Math.abs(normalCdf(1.959964) - 0.975) < 1e-6 && Math.abs(normalCdf(-3) - 0.0013499) < 1e-6);
    assert.equal(exhaustionProbability(100, 1, 0, 300), 1); // 300 consumed of 100 left, no doubt
    assert.equal(exhaustionProbability(100, 0.1, 0, 300), 0);
    assert.ok(Math.abs(exhaustionProbability(300, 1, 0.1, 300) - 0.5) < 1e-9); // exactly on the edge
  });
});

describe('exhaustion predictor', () => {
  it('alerts on a steady fill, one horizon ahead, with the ETA within ±10 % (under noise)', () => {
    const rand = prng(7);
    const rate = 50e6; // 50 MB/s: 30 % of 100 GB is gone in 600 s
    const fullAt = 600;
    const out = run((s) => rate * (fullAt - s) + gaussian(rand) * 20e6, fullAt);
    const at = fullAt - 300; // one horizon before full
    const eta = out[at]!.etaSeconds!;
    assert.ok(Math.abs(eta - 300) / 300 <= 0.1, `ETA ${eta} s one horizon before full`);
    const fired = out.findIndex((x) => x.fire);
    assert.ok(fired > 0 && fired < fullAt, 'an alert before the disk is full');
    // The guard (20 % left) passes at 200 s, the ETA comes within the horizon at 300 s; then 60 samples of sustain.
    assert.ok(fired >= 300 + DEFAULTS.sustain - 5 && fired <= 300 + DEFAULTS.sustain + 5, `fired at ${fired} s`);
    assert.equal(out.filter((x) => x.fire).length, 1, 'one alert, not one per sample');
    assert.ok(out[fired]!.probability >= 0.9);
  });

  it('does not alert on a burst that then stops', () => {
    // 25 % free, then 17 % of the disk written in 20 s (guard passed), then flat for 10 minutes.
    const out = run((s) => TOTAL * (s < 300 ? 0.25 : s < 320 ? 0.25 - (0.17 * (s - 300)) / 20 : 0.08), 900);
    const projected = out.filter((x) => x.guardPassed && x.etaSeconds !== null && x.etaSeconds <= 300).length;
    assert.ok(projected > DEFAULTS.sustain, `the long window alone projects exhaustion for ${projected} samples`);
    assert.equal(out.filter((x) => x.fire).length, 0);
  });

  it('does not alert on a sawtooth (log rotation) with teeth up to 2/3 of the window', () => {
    for (const period of [60, 120, 200]) {
      // 10 % → 4 % free in each tooth, rotated back to 10 %: each tooth alone would be full in under 4 min.
      const tooth = (s: number) => TOTAL * (0.1 - (0.06 * (s % period)) / period);
      assert.equal(run(tooth, 3600).filter((x) => x.fire).length, 0, `teeth of ${period} s`);
    }
    // The window is what averages the teeth out: a 1-minute window on 2-minute teeth alerts.
    const tooth = (s: number) => TOTAL * (0.1 - (0.06 * (s % 120)) / 120);
    assert.ok(run(tooth, 3600, { windowMs: 60_000, sustain: 30 }).some((x) => x.fire), 'a short window alerts on the same series (so this test can fail)');
  });

  it('does not alert on noise around a level past the guard', () => {
    for (const seed of [1, 2, 3]) {
      const rand = prng(seed);
      for (const sigma of [0.002, 0.01]) {
        const out = run(() => TOTAL * (0.05 + sigma * gaussian(rand)), 3600);
        assert.equal(out.filter((x) => x.fire).length, 0, `seed ${seed}, sigma ${sigma}`);
      }
    }
    // Without the guards (a 10 s window, no sustain, no probability bar) the same noise alerts.
    const rand = prng(1);
    const loose = run(() => TOTAL * (0.05 + 0.01 * gaussian(rand)), 3600, { windowMs: 10_000, recentMs: 3000, sustain: 1, minProbability: 0 });
    assert.ok(loose.some((x) => x.fire), 'loose settings alert on the same noise (so this test can fail)');
  });

  it('fits a consumer counter against what is left, and restarts when the counter drops (a checkpoint)', () => {
    const pr = new ExhaustionPredictor({ ...DEFAULTS, sustain: 5 });
    let last: Prediction | undefined;
    // WAL grows 10 MB/s; 2 GB free on a 100 GB disk (past the guard): full in 200 s if nothing else changes.
    for (let s = 0; s < 200; s++) last = pr.push(s * 1000, { available: 2e9 - 10e6 * s, total: TOTAL, consumed: 10e6 * s });
    assert.ok(last!.alerting);
    assert.ok(Math.abs(last!.ratePerSecond - 10e6) < 1);
    const after = pr.push(200_000, { available: 2e9, total: TOTAL, consumed: 1e6 });
    assert.equal(after.resets, 1);
    assert.equal(after.ready, false);
  });
});

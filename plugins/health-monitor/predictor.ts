/**
 * Exhaustion prediction for one resource (a filesystem's bytes or inodes, memory, a store's WAL
 * against its filesystem's free space), by ordinary least squares over a sliding window.
 *
 * Why least squares and not Holt's double exponential smoothing: a line fitted over a fixed
 * window weighs every sample of the window alike, so a trend has to last to move it, and noise
 * averages out as 1/√n; it comes with a standard error of its slope, from which a probability
 * of exhaustion within the horizon follows directly; and its one knob, the window, says in
 * plain time how long a trend must last. Holt's level and trend follow the last few samples
 * (their two smoothing constants decide how few), which is what makes them cry wolf on a
 * burst or on the rising edge of a sawtooth, and they give no variance to turn into a
 * probability. (See README.md for the measured behaviour.)
 *
 * A prediction counts toward an alert only when all of these hold on a sample:
 *   - the level is past the guard: available / total ≤ guard;
 *   - the long window (since the last reset, spanning at least half the window) projects
 *     exhaustion within the horizon;
 *   - the recent window agrees (the trend still goes on: a burst that stopped fails this);
 *   - the probability of exhaustion within the horizon is at least minProbability.
 * The alert starts after `sustain` such samples in a row (`fire` is true on that sample) and
 * ends after `sustain` samples in a row without.
 *
 * Space coming back (a deleted file, a log rotation) only flattens the fitted slope, so it can
 * delay an alert but never cause one; a sawtooth whose teeth are shorter than about 2/3 of the
 * window averages out and never alerts (predictor.test.ts). A consumer's counter going down is
 * different: a checkpoint restarted it, and a line across the drop means nothing, so the fit
 * restarts there (a reset).
 */

/** One reading of a resource. */
export interface ResourceReading {
  /** What is left; exhaustion is 0. */
  readonly available: number;
  readonly total: number;
  /**
   * A counter of what one consumer has used (e.g. WAL bytes since the last checkpoint). When
   * given, its growth rate is what is fitted, against `available`: "how long until this
   * consumer alone fills what is left".
   */
  readonly consumed?: number;
}

export interface PredictorOptions {
  readonly windowMs: number;
  readonly recentMs: number;
  readonly horizonMs: number;
  /** available / total at or below which a prediction may alert (0–1). */
  readonly guard: number;
  /** Consecutive samples a prediction must hold to alert (and to clear). */
  readonly sustain: number;
  readonly minProbability: number;
}

/** A least-squares line through (t, y): y ≈ a + slope · (t − tRef), t in seconds. */
export interface LineFit {
  readonly n: number;
  readonly spanSeconds: number;
  /** Units per second. */
  readonly slope: number;
  /** Standard error of the slope (0 for a perfect line). */
  readonly slopeStdErr: number;
}

export interface Prediction {
  /** Enough samples since the last reset for the long window. */
  readonly ready: boolean;
  /** How fast the resource runs out, units per second (long window; ≤ 0: it does not). */
  readonly ratePerSecond: number;
  readonly recentRatePerSecond: number;
  /** Seconds until exhaustion at the long window's rate; null when it is not running out. */
  readonly etaSeconds: number | null;
  /** Probability that it runs out within the horizon (normal approximation on the slope). */
  readonly probability: number;
  readonly guardPassed: boolean;
  /** Consecutive samples that met every condition. */
  readonly streak: number;
  /** An alert is on. */
  readonly alerting: boolean;
  /** The alert started on this sample: publish it now. */
  readonly fire: boolean;
  /** Resets (the consumer's counter went down) since the predictor was made. */
  readonly resets: number;
}

/** Fits a line through the points with index ≥ from. Null with fewer than 3 points or no spread in time. */
export function fitLine(ts: readonly number[], ys: readonly number[], from: number): LineFit | null {
  const n = ts.length - from;
  if (n < 3) return null;
  const t0 = ts[ts.length - 1]!;
  let sx = 0;
  let sy = 0;
  for (let i = from; i < ts.length; i++) {
    sx += (ts[i]! - t0) / 1000;
    sy += ys[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxx = 0;
  let sxy = 0;
  for (let i = from; i < ts.length; i++) {
    const dx = (ts[i]! - t0) / 1000 - mx;
    sxx += dx * dx;
    sxy += dx * (ys[i]! - my);
  }
  if (sxx === 0) return null;
  const slope = sxy / sxx;
  let ssr = 0;
  for (let i = from; i < ts.length; i++) {
    const r = ys[i]! - (my + slope * ((ts[i]! - t0) / 1000 - mx));
    ssr += r * r;
  }
  const sigma2 = ssr / (n - 2);
  return { n, spanSeconds: (t0 - ts[from]!) / 1000, slope, slopeStdErr: Math.sqrt(sigma2 / sxx) };
}

/** Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  if (!Number.isFinite(z)) return z > 0 ? 1 : 0;
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

export class ExhaustionPredictor {
  private ts: number[] = [];
  /** The fitted series: −consumed when a consumer is named, else available (falling = running out). */
  private ys: number[] = [];
  private streak = 0;
  private quiet = 0;
  private alerting = false;
  private resets = 0;

  constructor(private readonly o: PredictorOptions) {}

  /** Feeds one reading taken at `t` (ms); returns the prediction as of it. */
  push(t: number, r: ResourceReading): Prediction {
    const y = r.consumed === undefined ? r.available : -r.consumed;
    const last = this.ys.length > 0 ? this.ys[this.ys.length - 1]! : undefined;
    if (last !== undefined && r.consumed !== undefined && y > last) {
      this.ts = [];
      this.ys = [];
      this.resets++;
    }
    this.ts.push(t);
    this.ys.push(y);
    this.trim(t);

    const long = this.ts.length >= 5 ? fitLine(this.ts, this.ys, 0) : null;
    const ready = long !== null && long.spanSeconds * 1000 >= this.o.windowMs / 2;
    const recent = fitLine(this.ts, this.ys, this.firstIndexAfter(t - this.o.recentMs));
    const recentReady = recent !== null && recent.spanSeconds * 1000 >= this.o.recentMs / 2;

    const rate = long ? -long.slope : 0;
    const recentRate = recent ? -recent.slope : 0;
    const horizon = this.o.horizonMs / 1000;
    const available = Math.max(0, r.available);
    const etaSeconds = rate > 0 ? available / rate : null;
    const probability = long ? exhaustionProbability(available, rate, long.slopeStdErr, horizon) : 0;
    const guardPassed = r.total > 0 && available / r.total <= this.o.guard;

    const holds =
      ready && recentReady && guardPassed &&
      etaSeconds !== null && etaSeconds <= horizon &&
      recentRate > 0 && available / recentRate <= horizon &&
      probability >= this.o.minProbability;
    let fire = false;
    if (holds) {
      this.streak++;
      this.quiet = 0;
      if (!this.alerting && this.streak >= this.o.sustain) {
        this.alerting = true;
        fire = true;
      }
    } else {
      this.streak = 0;
      if (this.alerting && ++this.quiet >= this.o.sustain) this.alerting = false;
    }
    return { ready, ratePerSecond: rate, recentRatePerSecond: recentRate, etaSeconds, probability, guardPassed, streak: this.streak, alerting: this.alerting, fire, resets: this.resets };
  }

  /** Drops samples older than the window. */
  private trim(now: number): void {
    const drop = this.firstIndexAfter(now - this.o.windowMs);
    if (drop > 0) {
      this.ts.splice(0, drop);
      this.ys.splice(0, drop);
    }
  }

  private firstIndexAfter(t: number): number {
    let i = 0;
    while (i < this.ts.length && this.ts[i]! < t) i++;
    return i;
  }
}

/**
 * P(exhausted within the horizon): the depletion over the horizon, rate · h, is normal with
 * standard deviation se · h; the probability is that it reaches what is available.
 */
export function exhaustionProbability(available: number, rate: number, slopeStdErr: number, horizonSeconds: number): number {
  const depletion = rate * horizonSeconds;
  const sd = slopeStdErr * horizonSeconds;
  if (!(sd > 0)) return depletion >= available && rate > 0 ? 1 : 0;
  return normalCdf((depletion - available) / sd);
}

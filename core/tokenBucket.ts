/**
 * A token bucket in bytes, for the background passes' rate limits (the scrub, the snapshot
 * integrity pass). Tokens accrue at `rate` per second up to `capacity`; `reserve(n)` takes n at once, going into debt if it must, and says how
 * long to wait until the debt is paid. Waiting exactly that long before the work keeps the
 * long-run rate at `rate` (to within one reservation over any window), and `capacity` bounds the
 * burst after an idle spell.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /**
   * @param rate - tokens (bytes) per second, > 0
   * @param capacity - the largest burst, > 0; the bucket starts full
   * @param now - clock in milliseconds (injectable for tests)
   */
  constructor(
    readonly rate: number,
    readonly capacity: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`token bucket rate must be a positive number (got ${rate})`);
    if (!(capacity > 0) || !Number.isFinite(capacity)) throw new RangeError(`token bucket capacity must be a positive number (got ${capacity})`);
    this.tokens = capacity;
    this.last = now();
  }

  /** Takes `n` tokens; returns the milliseconds to wait before spending them (0 when available now). */
  reserve(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }

  /** Tokens available now (negative while in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }
}

/**
 * The arithmetic of restarts, kept apart from processes so it can be tested with a fake clock:
 * a capped exponential backoff that resets after a stable uptime, and a start-rate limit
 * (systemd's StartLimitBurst / StartLimitIntervalSec). Every start counts, the first included.
 */

export interface RestartLimits {
  readonly initialMs: number;
  readonly maxMs: number;
  /** An instance that stayed up this long resets the backoff to `initialMs`. */
  readonly resetAfterMs: number;
  /** At most this many starts within `withinMs`; one more is refused. */
  readonly burst: number;
  readonly withinMs: number;
}

/** Either the wait before the next start, or a refusal by the start-rate limit. */
export type RestartPlan =
  | { readonly allowed: true; readonly delayMs: number }
  | { readonly allowed: false; readonly startsInWindow: number; readonly oldestStartAt: number };

export class RestartPolicy {
  /** Times of the starts within the window, oldest first. */
  private readonly starts: number[] = [];
  /** Restarts since the backoff was last reset. */
  private attempt = 0;

  constructor(private readonly limits: RestartLimits) {}

  /** Records a start (every spawn attempt, successful or not). */
  recordStart(at: number): void {
    this.starts.push(at);
  }

  /**
   * Plans the next restart: refused when the window already holds `burst` starts; otherwise the
   * backoff, which this call advances. `lastUptimeMs` is how long the last instance ran (null if
   * it never ran); `resetAfterMs` or more resets the backoff first.
   */
  plan(now: number, lastUptimeMs: number | null): RestartPlan {
    while (this.starts.length > 0 && this.starts[0]! <= now - this.limits.withinMs) this.starts.shift();
    if (this.starts.length >= this.limits.burst) {
      return { allowed: false, startsInWindow: this.starts.length, oldestStartAt: this.starts[0]! };
    }
    if (lastUptimeMs !== null && lastUptimeMs >= this.limits.resetAfterMs) this.attempt = 0;
    // 2^30 × any sane initial is past every cap; stop counting there so the number stays finite.
    const delayMs = Math.min(this.limits.maxMs, this.limits.initialMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return { allowed: true, delayMs };
  }
}

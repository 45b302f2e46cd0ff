/** Recovery statistics: counts, average and p95 RTO, RTO compliance. */
import type { RecoveryRecord } from './journal.js';

export interface OrchestratorStats {
  failuresDetected: number;
  duplicatesSuppressed: number;
  recoveriesSucceeded: number;
  recoveriesFailed: number;
  /** Applied by actions that cannot observe their effect (webhook, exec without a check). */
  recoveriesUnverified: number;
  /** Failures escalated (once each, however many times their recovery was retried). */
  escalations: number;
  /** Failed attempts the healer retried (not counted as failed: the failure's last attempt says how it ended). */
  recoveriesRetried: number;
  /** Low-priority failures nothing is set up to handle (no-action, not escalated): not in RTO compliance. */
  recoveriesUnhandled: number;
  /** Over successful recoveries. */
  avgRtoMs: number | null;
  p95RtoMs: number | null;
  /** Share of recoveries (of any outcome but unhandled) that ended recovered within their RTO target. */
  rtoComplianceRate: number | null;
  queued: number;
  running: number;
}

/** Keeps running totals plus a bounded sample of RTOs for the percentiles. */
export class StatsKeeper {
  failuresDetected = 0;
  duplicatesSuppressed = 0;
  succeeded = 0;
  failed = 0;
  /** Applied by actions that cannot observe their effect: neither succeeded nor failed. */
  unverified = 0;
  escalations = 0;
  retried = 0;
  /** no-action and not escalated: a low-priority failure no rule handles. */
  unhandled = 0;
  compliant = 0;
  private readonly rtos: number[] = [];

  constructor(private readonly sampleSize = 10_000) {}

  addRecovery(r: RecoveryRecord): void {
    if (r.outcome === 'recovered') {
      this.succeeded++;
      this.rtos.push(r.rtoMs);
      if (this.rtos.length > this.sampleSize) this.rtos.shift();
      if (r.withinTarget) this.compliant++;
    } else if (r.outcome === 'applied-unverified') {
      this.unverified++;
    } else if (r.retry) {
      this.retried++;
    } else if (r.outcome === 'no-action' && !r.escalated) {
      this.unhandled++;
    } else {
      this.failed++;
    }
    if (escalatedNow(r)) this.escalations++;
    this.duplicatesSuppressed += r.duplicates;
  }

  snapshot(queued: number, running: number): OrchestratorStats {
    const total = this.succeeded + this.failed + this.unverified;
    const sorted = [...this.rtos].sort((a, b) => a - b);
    return {
      failuresDetected: this.failuresDetected,
      duplicatesSuppressed: this.duplicatesSuppressed,
      recoveriesSucceeded: this.succeeded,
      recoveriesFailed: this.failed,
      recoveriesUnverified: this.unverified,
      escalations: this.escalations,
      recoveriesRetried: this.retried,
      recoveriesUnhandled: this.unhandled,
      avgRtoMs: sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null,
      p95RtoMs: sorted.length ? sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)]! : null,
      rtoComplianceRate: total ? this.compliant / total : null,
      queued,
      running,
    };
  }
}

/** Whether `r` is the record that escalated its failure (journals before `escalatedNow`: its first attempt). */
export function escalatedNow(r: RecoveryRecord): boolean {
  return r.escalatedNow ?? (r.escalated && (r.attempt ?? 1) === 1);
}

/**
 * The work probe: is a store's writer still committing? A heartbeat proves that a timer or a
 * thread of the process runs, not that its work does — a work loop stuck on a lock, a promise
 * that never settles or a dead connection leaves the heartbeat going. The store's owner counts
 * its commits (the control socket's `status`: `commits`, only growing, and `activeTransactions`,
 * `lockWaits`); no commit for `timeout` while transactions are open is a hang.
 *
 * The judge is pure (readings on a monotonic clock in, a verdict out) so that its rules are
 * tested without processes; `WorkWatch` reads the owner every `interval` and feeds it.
 *
 * Rules:
 * - the commit count moved (up, or down: a new owner counts from 0) → progress, the clock restarts;
 * - nothing open → idle, never hung: the clock restarts (an idle application owes no commits);
 * - open transactions and no commit for `timeout` since the last commit seen, or since the first
 *   reading that saw work pending after an idle one → one stall verdict, until progress or
 *   idleness ends it (`resume`);
 * - the owner did not answer (timeout) → no progress, judged on the last reading's open count: an
 *   owner whose main loop is stuck while a heartbeat thread runs answers nothing;
 * - nobody serves the store's control socket → no reading at all: the clock restarts (the process
 *   has not opened its store yet, or closed it; its crash, if it is one, is the exit's to report).
 */
import { performance } from 'node:perf_hooks';
import { isRaError } from '../../core/errors.js';

/** What the owner's status says about work at one read. */
export interface WorkReading {
  readonly commits: number;
  readonly activeTransactions: number;
  readonly lockWaits: number;
}

/** Why the judge calls it a hang: the evidence of `process-hang` with `reason: 'no-work'`. */
export interface WorkStall {
  /** Since the last commit, or since transactions became pending (whichever is later), in ms. */
  readonly stalledMs: number;
  readonly commits: number;
  readonly activeTransactions: number;
  readonly lockWaits: number;
  /** The last read went unanswered (the owner's loop did not answer within the read's timeout). */
  readonly unanswered: boolean;
}

export type WorkVerdict = { readonly type: 'stall'; readonly stall: WorkStall } | { readonly type: 'resume' } | null;

export class WorkJudge {
  private commits: number | null = null;
  private last: WorkReading | null = null;
  /** Monotonic ms of the last progress (a commit, idleness, a fresh start). */
  private since: number | null = null;
  private stalled = false;

  constructor(readonly timeoutMs: number) {}

  /** One reading (or `unanswered` / `unavailable`) at monotonic time `now` (ms). */
  observe(r: WorkReading | 'unanswered' | 'unavailable', now: number): WorkVerdict {
    if (r === 'unavailable') return this.progress(now, null);
    if (r !== 'unanswered' && (this.commits === null || r.commits !== this.commits || r.activeTransactions === 0)) return this.progress(now, r);
    const seen = r === 'unanswered' ? this.last : r;
    if (seen === null || seen.activeTransactions === 0 || this.since === null) return null;
    // Work that became pending after an idle reading is late from the first reading that saw it.
    if (r !== 'unanswered' && this.last?.activeTransactions === 0) this.since = now;
    if (r !== 'unanswered') this.last = r;
    const stalledMs = now - this.since;
    if (this.stalled || stalledMs < this.timeoutMs) return null;
    this.stalled = true;
    return { type: 'stall', stall: { stalledMs: Math.round(stalledMs), commits: seen.commits, activeTransactions: seen.activeTransactions, lockWaits: seen.lockWaits, unanswered: r === 'unanswered' } };
  }

  private progress(now: number, r: WorkReading | null): WorkVerdict {
    this.commits = r?.commits ?? null;
    this.last = r;
    this.since = now;
    if (!this.stalled) return null;
    this.stalled = false;
    return { type: 'resume' };
  }
}

export interface WorkWatchOptions {
  intervalMs: number;
  timeoutMs: number;
  /** Reads the owner's status; RA_ERR_CONTROL_UNAVAILABLE when nobody serves the store's socket. */
  read(timeoutMs: number): Promise<WorkReading>;
  onStall(stall: WorkStall): void;
  onResume(): void;
}

/** Reads the owner every `intervalMs` (one read at a time) and hands the readings to a `WorkJudge`. */
export class WorkWatch {
  private readonly judge: WorkJudge;
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private active = false;

  constructor(private readonly o: WorkWatchOptions) {
    this.judge = new WorkJudge(o.timeoutMs);
  }

  start(): void {
    this.active = true;
    this.judge.observe('unavailable', performance.now());
    this.timer = setInterval(() => void this.tick(), this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.active = false;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy || !this.active) return;
    this.busy = true;
    try {
      let r: WorkReading | 'unanswered' | 'unavailable';
      try {
        // A read answers in well under a millisecond on a live loop; twice the interval (at least
        // 500 ms, at most 5 s) tells a stuck loop from a busy one.
        r = await this.o.read(Math.min(5000, Math.max(500, 2 * this.o.intervalMs)));
      } catch (err) {
        // Any other failure (a timeout, a connection the owner dropped) is an owner that did not answer.
        r = isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE') ? 'unavailable' : 'unanswered';
      }
      if (!this.active) return;
      const v = this.judge.observe(r, performance.now());
      if (v?.type === 'stall') this.o.onStall(v.stall);
      else if (v?.type === 'resume') this.o.onResume();
    } finally {
      this.busy = false;
    }
  }
}

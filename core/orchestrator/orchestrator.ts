/**
 * The orchestrator (the seed's AutoRecoveryManager): takes failures from the bus, de-duplicates
 * them by fingerprint, queues them by priority (P0 first, oldest first within a priority), and
 * hands them to the healer with at most `maxConcurrentRecoveries` running at once and never two
 * on the same subject or the same store. Each recovery's RTO runs from the failure's detection to its verified fix
 * and is compared with the target for its priority. What the healer could not fix is escalated.
 * Failures and recoveries are journaled, so statistics survive a restart.
 *
 * A detector may resolve a failure it published (FailureBus.resolve) when its condition went
 * away by itself: the open or escalated failure is then `cleared` — journaled, emitted as a
 * `cleared` event and marked in `recentFailures()`, but not a recovery (no RTO sample, no weight
 * in RTO compliance). One being recovered right now is cleared when its recovery ends.
 *
 * A failed recovery the healer asks to retry (HealResult.retry: a cause that may be transient,
 * such as a full disk) stays open as `retrying`: when the healer's plan says (the blocking
 * condition cleared, or its backoff ran out) it is queued again, as the same failure with the
 * next attempt number, under the same limits (one recovery per subject,
 * `maxConcurrentRecoveries`). Automation is still at work, so it is **not escalated yet**: a
 * failed attempt escalates only when no retry follows it (the healer's cap, or nothing says the
 * cause may pass) or when the failure's RTO target — from its start — has passed by the time it
 * ends. So a disk full for a few seconds, healed by the retry once space is back, pages nobody
 * (the chaos suite's disk-full and EIO kinds paged a person in every trial before), while one
 * that stays full is escalated at the first failed attempt past the target, at most one backoff
 * (`retry.max`) late. Escalated, it stays so until a later attempt recovers it or its detector
 * clears it; each failure is counted as escalated once (`escalatedNow` on the record that did).
 *
 * A failure published with `settlesWithinMs` (the agent's own answer to it is under way, and its
 * detector resolves it when that answer succeeds) is `settling` until then: queued for the healer
 * only if still open that long after its detection. Resolved before, it is cleared — never
 * escalated. (Each failover of a chaos run paged a human for the deposed primary's refusal while
 * it rebuilt itself as a replica, and for the partition it reported while it stepped down: both
 * were over by themselves a second later, but an unhandled P1 escalates at its first attempt.)
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { storesOf, type Failure, type FailureResolution, type Priority } from '../contracts/Failure.js';
import type { Healer, HealResult, RetryPlan } from '../contracts/Healer.js';
import { describeError } from '../errors.js';
import type { FailureBus } from '../failureBus.js';
import { Journal, type ClearedRecord, type RecoveryRecord } from './journal.js';
import { StatsKeeper, type OrchestratorStats } from './stats.js';

export interface OrchestratorOptions {
  bus: FailureBus;
  log: Logger;
  journalFile: string;
  maxConcurrent: number;
  rtoTargets: Record<Priority, number>;
  /** The healer, looked up when a recovery starts (plugins may provide it after we start). */
  healer: () => Healer | undefined;
  /** How many recent failures and recoveries to keep in memory for the API. */
  recent?: number;
}

interface Open {
  failure: Failure;
  state: 'settling' | 'queued' | 'running' | 'retrying';
  /** While settling: the timer that queues it for the healer. */
  settleTimer?: NodeJS.Timeout;
  duplicates: number;
  /** 1 for the first recovery, then one more per retry. */
  attempt: number;
  /** Set by a failed attempt the healer asked to retry; cleared when the next one is queued. */
  retry?: RetryPlan;
  /** Ends the wait for the next attempt (the failure cleared, the agent stopping). */
  cancelRetry?: AbortController;
  /** Set once an attempt escalated it (a later failed attempt is not a new escalation). */
  escalated?: boolean;
}

/** An open failure as the API shows it; `retry` while it waits for its next attempt. */
export interface OpenFailure {
  failure: Failure;
  state: 'settling' | 'queued' | 'running' | 'retrying' | 'escalated';
  duplicates: number;
  attempt?: number;
  retry?: RecoveryRecord['retry'];
}

/** A failure as `recentFailures()` lists it: with `state: 'cleared'` once its detector closed it. */
export type RecordedFailure = Failure & { readonly state?: 'cleared'; readonly cleared?: { readonly at: number; readonly reason: string; readonly by: string } };

export interface OrchestratorEvents {
  failure: [Failure];
  /** A queued failure's recovery has started (the dashboard shows it as recovering). */
  recovering: [Failure];
  recovery: [RecoveryRecord];
  escalation: [RecoveryRecord];
  /** A failed recovery's failure is queued again (attempt ≥ 2), woken by its condition or backoff. */
  retry: [Failure, { attempt: number; trigger: 'condition' | 'backoff' }];
  /** Its detector closed an open or escalated failure (its condition went away by itself). */
  cleared: [ClearedRecord];
}

const PRIORITY_RANK: Record<Priority, number> = { P0: 0, P1: 1, P2: 2, P3: 3 };

export class Orchestrator extends EventEmitter<OrchestratorEvents> {
  private readonly journal: Journal;
  private readonly stats = new StatsKeeper();
  private readonly open = new Map<string, Open>();
  private readonly busySubjects = new Set<string>();
  private readonly running = new Set<Promise<void>>();
  /** Escalated fingerprints not yet fixed by a later recovery. */
  private readonly escalated = new Map<string, RecoveryRecord>();
  private readonly failures: RecordedFailure[] = [];
  /** Resolutions of failures being recovered right now, applied when the recovery ends. */
  private readonly clearAfterRun = new Map<string, FailureResolution>();
  private readonly recoveries: RecoveryRecord[] = [];
  private readonly abort = new AbortController();
  private unsubscribe: (() => void) | null = null;
  private seq = 0;

  constructor(private readonly opts: OrchestratorOptions) {
    super();
    this.journal = new Journal(opts.journalFile);
  }

  /** Reloads the journal, then consumes the bus (including what was published before now). */
  start(): void {
    for (const e of this.journal.load()) {
      if (e.type === 'failure') {
        this.stats.failuresDetected++;
        this.remember(this.failures, e.failure);
      } else if (e.type === 'cleared') {
        const esc = this.escalated.get(e.cleared.fingerprint);
        if (esc && esc.detectedAt <= e.cleared.detectedAt) this.escalated.delete(e.cleared.fingerprint);
        this.markCleared(e.cleared);
      } else {
        this.stats.addRecovery(e.recovery);
        this.remember(this.recoveries, e.recovery);
        // A failed attempt whose retry this restart cut short: nobody retries it now, so it shows
        // as escalated (for a person) until a new occurrence is recovered or it is cleared.
        const interrupted = e.recovery.outcome === 'failed' && e.recovery.retry !== undefined;
        if (e.recovery.escalated || interrupted) this.escalated.set(e.recovery.fingerprint, e.recovery);
        else if (e.recovery.outcome === 'recovered') this.escalated.delete(e.recovery.fingerprint);
      }
    }
    this.unsubscribe = this.opts.bus.subscribe((f) => this.accept(f), { replay: true, onResolve: (r) => this.resolve(r) });
  }

  /** Stops taking failures, aborts running recoveries and waits for them (bounded). */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    this.abort.abort();
    for (const o of this.open.values()) clearTimeout(o.settleTimer);
    await Promise.race([Promise.allSettled([...this.running]), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
    this.journal.close();
  }

  snapshot(): OrchestratorStats {
    const open = [...this.open.values()];
    return this.stats.snapshot(open.filter((o) => o.state === 'queued').length, open.filter((o) => o.state === 'running').length);
  }

  /** Failures queued, being recovered or waiting to be retried, and escalated ones not yet fixed. */
  openFailures(): OpenFailure[] {
    const out: OpenFailure[] = [...this.open.values()].map((o) => ({
      failure: o.failure,
      state: o.state,
      duplicates: o.duplicates,
      ...(o.attempt > 1 || o.retry ? { attempt: o.attempt } : {}),
      ...(o.retry ? { retry: retryFacts(o.retry) } : {}),
    }));
    for (const r of this.escalated.values()) {
      if (this.open.has(r.fingerprint)) continue;
      const f = this.failures.find((x) => x.id === r.failureId);
      if (f) out.push({ failure: f, state: 'escalated', duplicates: r.duplicates });
    }
    return out;
  }

  recentFailures(limit = 100): readonly RecordedFailure[] {
    return this.failures.slice(-limit);
  }

  recentRecoveries(limit = 100): readonly RecoveryRecord[] {
    return this.recoveries.slice(-limit);
  }

  /** Resolves when nothing is queued or running (a failure waiting to be retried or settling is neither). */
  async idle(): Promise<void> {
    while ([...this.open.values()].some((o) => o.state === 'queued' || o.state === 'running') || this.running.size > 0) await Promise.race([...this.running, new Promise((r) => setTimeout(r, 10))]);
  }

  private accept(failure: Failure): void {
    // The bus replays its backlog on subscribe: skip what the journal already holds.
    if (this.failures.some((f) => f.id === failure.id)) return;
    this.stats.failuresDetected++;
    this.remember(this.failures, failure);
    this.journal.append({ type: 'failure', at: Date.now(), failure });
    this.emit('failure', failure);
    const same = this.open.get(failure.fingerprint);
    if (same) {
      same.duplicates++;
      this.opts.log.debug({ failureId: failure.id, fingerprint: failure.fingerprint }, 'duplicate failure folded into an open one');
      return;
    }
    const o: Open = { failure, state: 'queued', duplicates: 0, attempt: 1 };
    this.open.set(failure.fingerprint, o);
    if (failure.settlesWithinMs !== undefined) this.settle(o, failure.settlesWithinMs);
    else this.pump();
  }

  /**
   * Leaves a failure to its detector for `withinMs` from its detection (see the file's comment),
   * then queues it for the healer if it is still open.
   */
  private settle(o: Open, withinMs: number): void {
    const left = o.failure.detectedAt + withinMs - Date.now();
    if (left <= 0) return this.pump();
    o.state = 'settling';
    this.opts.log.info({ failureId: o.failure.id, kind: o.failure.kind, subject: o.failure.subject, settlesWithinMs: withinMs }, 'failure left to settle: the agent is already answering it, and its detector clears it when that succeeds');
    o.settleTimer = setTimeout(() => {
      o.settleTimer = undefined;
      if (this.open.get(o.failure.fingerprint) !== o || o.state !== 'settling' || this.abort.signal.aborted) return;
      o.state = 'queued';
      this.opts.log.warn({ failureId: o.failure.id, kind: o.failure.kind, subject: o.failure.subject, settlesWithinMs: withinMs }, 'failure did not settle by itself in time: handing it to the healer');
      this.pump();
    }, left);
    o.settleTimer.unref();
  }

  /**
   * What a recovery holds while it runs: its subject, and every store it is about. Two failures
   * of one store (a crashed owner, a corrupt page of its store) are recovered one after the
   * other: one's action may hold the store offline (a page repaired while the owner is down)
   * while the other's finds it "locked by a live process" — a chaos run escalated a crash that
   * way and left the application down.
   */
  private static holds(failure: Failure): string[] {
    return [...new Set([failure.subject, ...storesOf(failure).map((id) => `store:${id}`)])];
  }

  /** Starts queued recoveries while the limit allows, most urgent first, one per subject and store. */
  private pump(): void {
    if (this.abort.signal.aborted) return;
    const queued = [...this.open.values()]
      .filter((o) => o.state === 'queued')
      .sort((a, b) => PRIORITY_RANK[a.failure.priority] - PRIORITY_RANK[b.failure.priority] || a.failure.detectedAt - b.failure.detectedAt);
    for (const o of queued) {
      if (this.running.size >= this.opts.maxConcurrent) return;
      const holds = Orchestrator.holds(o.failure);
      if (holds.some((k) => this.busySubjects.has(k))) continue;
      o.state = 'running';
      for (const k of holds) this.busySubjects.add(k);
      this.emit('recovering', o.failure);
      const p = this.recover(o).finally(() => {
        this.running.delete(p);
        for (const k of holds) this.busySubjects.delete(k);
        const pending = this.clearAfterRun.get(o.failure.fingerprint);
        if (o.retry && !pending && !this.abort.signal.aborted) this.awaitRetry(o, o.retry);
        else this.open.delete(o.failure.fingerprint);
        if (pending) {
          this.clearAfterRun.delete(o.failure.fingerprint);
          this.resolve(pending);
        }
        this.pump();
      });
      this.running.add(p);
    }
  }

  private async recover(o: Open): Promise<void> {
    const { failure } = o;
    const startedAt = Date.now();
    const healer = this.opts.healer();
    let result: HealResult;
    if (!healer) {
      result = { outcome: 'no-action', attempts: [], reason: 'no healer is running' };
    } else {
      try {
        result = await healer.heal(failure, this.abort.signal, { attempt: o.attempt });
      } catch (err) {
        result = { outcome: 'failed', attempts: [], reason: `healer threw: ${describeError(err)}` };
      }
    }
    const finishedAt = Date.now();
    // Only a failed recovery is retried; the plan is kept for when this one ends (pump).
    o.retry = result.outcome === 'failed' ? result.retry : undefined;
    const targetMs = this.opts.rtoTargets[failure.priority];
    const rtoMs = finishedAt - (failure.occurredAt ?? failure.detectedAt);
    // What automation could not fix needs a human: a failed recovery that will not be retried, or
    // is retried past the failure's RTO target, or one nothing is set up to handle when the
    // failure is urgent (P0/P1). A P2/P3 failure no rule handles is recorded as unhandled: no
    // escalation, and no weight in RTO compliance.
    const escalated =
      (result.outcome === 'failed' && (o.retry === undefined || rtoMs >= targetMs || o.escalated === true)) ||
      (result.outcome === 'no-action' && !isLowPriority(failure.priority));
    const escalatedNow = escalated && o.escalated !== true;
    const record: RecoveryRecord = {
      id: `r-${finishedAt.toString(36)}-${(++this.seq).toString(36)}`,
      failureId: failure.id,
      kind: failure.kind,
      priority: failure.priority,
      subject: failure.subject,
      fingerprint: failure.fingerprint,
      detectedAt: failure.detectedAt,
      ...(failure.occurredAt !== undefined ? { occurredAt: failure.occurredAt } : {}),
      startedAt,
      finishedAt,
      rtoMs,
      targetMs,
      withinTarget: result.outcome === 'recovered' && rtoMs <= targetMs,
      outcome: result.outcome,
      escalated,
      escalatedNow,
      attempts: result.attempts,
      duplicates: o.duplicates,
      ...(result.reason ? { reason: result.reason } : {}),
      ...(o.attempt > 1 || o.retry ? { attempt: o.attempt } : {}),
      ...(o.retry ? { retry: retryFacts(o.retry) } : {}),
    };
    this.stats.addRecovery(record);
    this.remember(this.recoveries, record);
    this.journal.append({ type: 'recovery', at: finishedAt, recovery: record });
    const log = this.opts.log;
    const facts = { failureId: failure.id, kind: failure.kind, subject: failure.subject, attempt: o.attempt, reason: record.reason, attempts: record.attempts.map((a) => `${a.action}:${a.verified ? 'ok' : (a.error ?? 'not verified')}`) };
    if (record.escalated && !escalatedNow) {
      // Escalated by an earlier attempt: a failed retry is not a new escalation.
      this.escalated.set(record.fingerprint, record);
      const msg = o.retry ? 'recovery retry failed; retrying again' : `ESCALATION: automatic recovery failed after ${o.attempt} attempts; no more retries, a human is needed`;
      (o.retry ? log.warn.bind(log) : log.error.bind(log))({ ...facts, retry: record.retry }, msg);
    } else if (record.escalated) {
      o.escalated = true;
      this.escalated.set(record.fingerprint, record);
      const why = o.retry ? `; its RTO target (${targetMs} ms) has passed; retrying (attempt ${o.retry.nextAttempt} of ${o.retry.maxAttempts}) when ${o.retry.waitingFor}` : o.attempt > 1 ? ` after ${o.attempt} attempts; no more retries, a human is needed` : '; a human is needed';
      log.error({ ...facts, outcome: record.outcome, rtoMs }, `ESCALATION: automatic recovery failed${why}`);
      this.emit('escalation', record);
    } else if (record.outcome === 'failed' && o.retry) {
      log.warn({ ...facts, retry: record.retry, rtoMs, targetMs }, `recovery failed; retrying (attempt ${o.retry.nextAttempt} of ${o.retry.maxAttempts}) when ${o.retry.waitingFor}; escalated if still failing once its RTO target has passed`);
    } else if (record.outcome === 'no-action') {
      log.warn({ failureId: failure.id, kind: failure.kind, subject: failure.subject, priority: failure.priority, reason: record.reason }, 'failure unhandled: nothing is set up to handle it (low priority, not escalated)');
    } else if (record.outcome === 'applied-unverified') {
      log.warn({ failureId: failure.id, kind: failure.kind, subject: failure.subject, rtoMs, reason: record.reason }, 'recovery applied, but not verified: its actions cannot observe their effect');
    } else {
      this.escalated.delete(record.fingerprint);
      log.info({ failureId: failure.id, kind: failure.kind, subject: failure.subject, rtoMs, targetMs, withinTarget: record.withinTarget, ...(record.attempt ? { attempt: record.attempt } : {}) }, 'recovered');
    }
    this.emit('recovery', record);
  }

  /**
   * Keeps a failed recovery's failure open until its healer's plan says to try again, then
   * queues it as its next attempt. The wait ends without a retry when the failure is cleared
   * (resolve) or the agent stops.
   */
  private awaitRetry(o: Open, plan: RetryPlan): void {
    o.state = 'retrying';
    const cancel = new AbortController();
    o.cancelRetry = cancel;
    const stop = () => cancel.abort(this.abort.signal.reason);
    this.abort.signal.addEventListener('abort', stop, { once: true });
    plan.wait(cancel.signal).then(
      (trigger) => {
        this.abort.signal.removeEventListener('abort', stop);
        if (this.open.get(o.failure.fingerprint) !== o || o.state !== 'retrying' || cancel.signal.aborted) return;
        o.attempt = plan.nextAttempt;
        o.retry = undefined;
        o.cancelRetry = undefined;
        o.state = 'queued';
        this.opts.log.info({ failureId: o.failure.id, kind: o.failure.kind, subject: o.failure.subject, attempt: o.attempt, maxAttempts: plan.maxAttempts, trigger, waitedFor: plan.waitingFor }, trigger === 'condition' ? 'retrying a failed recovery: what blocked it cleared' : 'retrying a failed recovery: its backoff ran out');
        this.emit('retry', o.failure, { attempt: o.attempt, trigger });
        this.pump();
      },
      () => this.abort.signal.removeEventListener('abort', stop),
    );
  }

  /**
   * Its detector says the failure is over. Clears the open failure with its fingerprint (when
   * queued; when running, once the recovery ends) and the escalated one, provided they were
   * detected no later than the resolved failure (a replayed old resolution must not clear a newer
   * occurrence).
   */
  private resolve(r: FailureResolution): void {
    const cleared: Failure[] = [];
    const o = this.open.get(r.fingerprint);
    if (o && o.failure.detectedAt <= r.detectedAt) {
      if (o.state === 'running') {
        this.clearAfterRun.set(r.fingerprint, r);
        return;
      }
      o.cancelRetry?.abort(new Error('the failure was cleared'));
      clearTimeout(o.settleTimer);
      this.open.delete(r.fingerprint);
      cleared.push(o.failure);
    }
    const esc = this.escalated.get(r.fingerprint);
    if (esc && esc.detectedAt <= r.detectedAt) {
      this.escalated.delete(r.fingerprint);
      const f = this.failures.find((x) => x.id === esc.failureId);
      if (f && !cleared.includes(f)) cleared.push(f);
    }
    if (cleared.length === 0) {
      this.opts.log.debug({ failureId: r.failureId, fingerprint: r.fingerprint }, 'resolution of a failure no longer open: nothing to clear');
      return;
    }
    for (const failure of cleared) {
      const record: ClearedRecord = {
        failureId: failure.id,
        resolvedFailureId: r.failureId,
        kind: failure.kind,
        priority: failure.priority,
        subject: failure.subject,
        fingerprint: failure.fingerprint,
        detectedAt: failure.detectedAt,
        clearedAt: r.resolvedAt,
        reason: r.reason,
        source: r.source,
      };
      // Replayed from the bus after a journal reload: already recorded.
      if (this.failures.some((x) => x.id === failure.id && x.state === 'cleared')) continue;
      this.journal.append({ type: 'cleared', at: Date.now(), cleared: record });
      this.markCleared(record);
      this.opts.log.info({ failureId: failure.id, kind: failure.kind, subject: failure.subject, reason: r.reason, source: r.source }, 'failure cleared by its detector (not a recovery)');
      this.emit('cleared', record);
    }
  }

  /** Marks the failure `cleared` in the recent list (shown by /failures). */
  private markCleared(c: ClearedRecord): void {
    const i = this.failures.findIndex((x) => x.id === c.failureId);
    if (i >= 0) this.failures[i] = { ...this.failures[i]!, state: 'cleared', cleared: { at: c.clearedAt, reason: c.reason, by: c.source } };
  }

  private remember<T>(list: T[], item: T): void {
    list.push(item);
    if (list.length > (this.opts.recent ?? 1000)) list.shift();
  }
}

/** A plan's facts, as journaled and served (its `wait` is not data). */
function retryFacts(p: RetryPlan): NonNullable<RecoveryRecord['retry']> {
  return { nextAttempt: p.nextAttempt, maxAttempts: p.maxAttempts, waitingFor: p.waitingFor, notAfter: p.notAfter };
}

/** P2 and P3: degraded or housekeeping, not data or availability at risk. */
function isLowPriority(p: Failure['priority']): boolean {
  return p === 'P2' || p === 'P3';
}

/**
 * Retries of failed recoveries whose cause may be transient (issue #17). A recovery that ran
 * while the fault still held — recover-store on a disk still full, a writer restarted onto a
 * disk still returning EIO — fails, and without a retry nothing tries again once the disk works,
 * so the application stays down. This wraps the healer: a `failed` result gets a retry plan
 * (HealResult.retry) when one of these says the cause may pass:
 *
 * 1. the disk of a store the failure names (its `store` / `stores` evidence, a `store:` subject,
 *    or the store of the `process:` it is about) is not usable now: its filesystem has less than
 *    `minFree` free, or it does not take a write and fsync (diskCheck.ts). The next attempt starts
 *    as soon as that clears;
 * 2. an action failed with an error of the kind that passes (ENOSPC, EDQUOT, EIO, EAGAIN, EBUSY,
 *    ETIMEDOUT, a timeout, a broken WAL: RA_ERR_WAL_WRITE, a snapshot refused over a corrupt page
 *    that its own repair is about to rebuild);
 * 3. a process's failure whose restart was applied but did not hold (the process died again or
 *    sent no heartbeat): a process that dies of its disk or a dependency may live once that is
 *    back, as a supervisor's restart backoff assumes.
 *
 * Otherwise — nothing could handle the failure, a store that does not exist, a repair refused —
 * the failure is escalated as before, with no retry. Every plan also has a backoff: `initial`
 * doubling per attempt up to `max`, after which the next attempt runs whatever the condition
 * says (one the agent cannot observe, such as an I/O fault only the application sees). After
 * `attempts` attempts in all, no plan: the failure is escalated (the orchestrator escalates a
 * retried failure only once its RTO target has passed or no retry is left).
 *
 * The orchestrator runs one recovery per subject at a time and counts the attempts; a condition
 * wakes a retry only once it was seen blocked and then clear, so a flapping one costs an attempt
 * each time and the cap bounds them all.
 */
import { storesOf, type Failure } from '../../core/contracts/Failure.js';
import type { HealContext, Healer, HealResult, RetryPlan } from '../../core/contracts/Healer.js';
import { sleep } from '../../core/sleep.js';
import { diskProblem } from './diskCheck.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  readonly initial: number;
  readonly max: number;
  readonly minFree: number;
  readonly checkEvery: number;
}

export interface RetryDeps {
  readonly policy: RetryPolicy;
  /** Configured stores: id → path. */
  readonly storePaths: ReadonlyMap<string, string>;
  /** Configured processes: id → the store they own. */
  readonly processStores: ReadonlyMap<string, string>;
  /** Why a store's disk is not usable now, or null (diskCheck.ts; replaced in tests). */
  readonly diskProblem?: (dir: string, minFree: number) => Promise<string | null>;
}

/** Errors of the kind that passes: space freed, a disk back, a peer answering again. */
// A snapshot refused over a corrupt page (a repair-archive or repair-snapshot while a page of the
// store is torn) may pass too: the page's own failure is repaired next (the mixed chaos schedule
// escalated such a repair-archive when a page-torn fault came right after archive damage).
const TRANSIENT = /ENOSPC|EDQUOT|EIO\b|EAGAIN|EBUSY|ETIMEDOUT|EINTR|no space left|input\/output error|timed out|no answer within|RA_ERR_WAL_WRITE|refusing to snapshot corrupt pages/i;

/** The backoff before attempt `next` (≥ 2): `initial` doubling per attempt, at most `max`. */
export function backoffMs(policy: Pick<RetryPolicy, 'initial' | 'max'>, next: number): number {
  return Math.min(policy.max, policy.initial * 2 ** Math.max(0, next - 2));
}

/** The healer `inner`, with a retry plan on its failed results whose cause may be transient. */
export function withRetries(inner: Healer, deps: RetryDeps): Healer {
  return {
    id: inner.id,
    async heal(failure: Failure, signal: AbortSignal, context?: HealContext): Promise<HealResult> {
      const result = await inner.heal(failure, signal, context);
      if (result.outcome !== 'failed' || signal.aborted) return result;
      const attempt = context?.attempt ?? 1;
      if (attempt >= deps.policy.attempts) {
        return attempt > 1 ? { ...result, reason: `${result.reason ?? 'failed'}; no retry left (${attempt} of ${deps.policy.attempts} attempts made)` } : result;
      }
      const plan = await planRetry(failure, result, attempt + 1, deps);
      return plan ? { ...result, retry: plan } : result;
    },
  };
}

/** The plan for attempt `next`, or null when nothing says the cause may pass. */
export async function planRetry(failure: Failure, result: HealResult, next: number, deps: RetryDeps): Promise<RetryPlan | null> {
  const check = deps.diskProblem ?? diskProblem;
  const dirs = storeDirs(failure, deps);
  const blocked: string[] = [];
  for (const dir of dirs) {
    const why = await check(dir, deps.policy.minFree);
    if (why !== null) blocked.push(why);
  }
  const transientError = [result.reason, ...result.attempts.map((a) => a.error)].find((e) => e !== undefined && TRANSIENT.test(e));
  const restartDidNotHold = failure.subject.startsWith('process:') && result.attempts.some((a) => a.applied && !a.verified && !a.undone && /restart/.test(a.action));
  if (blocked.length === 0 && transientError === undefined && !restartDidNotHold) return null;

  const delay = backoffMs(deps.policy, next);
  const notAfter = Date.now() + delay;
  const inTime = `at the latest in ${formatMs(delay)}`;
  const waitingFor =
    blocked.length > 0 ? `${blocked.join(' and ')} is back, ${inTime}` : transientError !== undefined ? `${formatMs(delay)} passed (the cause may pass: ${transientError.slice(0, 160)})` : `${formatMs(delay)} passed (the restarted process did not stay up)`;
  return {
    nextAttempt: next,
    maxAttempts: deps.policy.attempts,
    waitingFor,
    notAfter,
    async wait(signal: AbortSignal): Promise<'condition' | 'backoff'> {
      // Woken by the condition only once it was seen blocked and then usable again.
      let seenBlocked = blocked.length > 0;
      for (;;) {
        const left = notAfter - Date.now();
        if (left <= 0) return 'backoff';
        await sleep(Math.min(deps.policy.checkEvery, left), signal);
        if (signal.aborted) throw abortReason(signal);
        if (dirs.length === 0) continue;
        let usable = true;
        for (const dir of dirs) if ((await check(dir, deps.policy.minFree)) !== null) usable = false;
        if (signal.aborted) throw abortReason(signal);
        if (!usable) seenBlocked = true;
        else if (seenBlocked) return 'condition';
      }
    },
  };
}

/** The directories of the stores a failure concerns: named by it, or owned by its process. */
function storeDirs(failure: Failure, deps: RetryDeps): string[] {
  const ids = new Set(storesOf(failure));
  const m = /^process:(.+)$/.exec(failure.subject);
  const proc = typeof failure.evidence.processId === 'string' ? failure.evidence.processId : m?.[1];
  const owned = proc !== undefined ? deps.processStores.get(proc) : undefined;
  if (owned !== undefined) ids.add(owned);
  return [...ids].map((id) => deps.storePaths.get(id)).filter((p): p is string => p !== undefined);
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('aborted');
}

function formatMs(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s`;
}

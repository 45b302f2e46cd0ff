/**
 * The self-healer: for a failure, the first matching rule's steps, in order. In a step, each
 * alternative that can handle the failure is applied, then verified independently; if it does
 * not verify it is undone (when it can be) and the next alternative is tried. Every action runs
 * under a timeout and the agent's abort signal, `canHandle` included (it may answer with a
 * promise: a third-party action is asked across threads). A step none of whose actions can handle the
 * failure is skipped; the recovery succeeds when at least one step was done and none failed.
 */
import type { DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import type { Failure } from '../../core/contracts/Failure.js';
import { HealingAction, type HealingContext } from '../../core/contracts/HealingAction.js';
import type { ActionAttempt, Healer, HealResult } from '../../core/contracts/Healer.js';
import { describeError } from '../../core/errors.js';
import type { Learning } from './learning.js';
import { matchRule, type ActionRef, type Rule } from './rules.js';

export interface SelfHealerOptions {
  container: DependencyContainer;
  rules: readonly Rule[];
  learning: Learning;
  actionTimeoutMs: number;
  log: Logger;
}

export function createSelfHealer(o: SelfHealerOptions): Healer {
  return {
    id: 'self-healer',
    async heal(failure: Failure, signal: AbortSignal): Promise<HealResult> {
      const rule = matchRule(o.rules, failure);
      if (!rule) return { outcome: 'no-action', attempts: [], reason: `no healing rule for failure kind "${failure.kind}"` };
      const actions = new Map(o.container.isRegistered(HealingAction, true) ? o.container.resolveAll(HealingAction).map((a) => [a.id, a]) : []);
      const attempts: ActionAttempt[] = [];
      let done = 0;
      let stepsUnverified = 0;
      for (const [i, step] of rule.steps.entries()) {
        const ordered = o.learning.order(failure.kind, step);
        let handled = false;
        let verified = false;
        let unverified = false;
        for (const ref of ordered) {
          if (signal.aborted) return { outcome: 'failed', attempts, reason: 'the agent is stopping' };
          const action = actions.get(ref.action);
          if (!action) {
            attempts.push({ action: ref.action, applied: false, verified: false, undone: false, durationMs: 0, error: 'no running plugin provides this action' });
            continue;
          }
          let can = false;
          try {
            can = Boolean(await withTimeout(Promise.resolve().then(() => action.canHandle(failure)), ref.timeout ?? o.actionTimeoutMs, signal));
          } catch (err) {
            attempts.push({ action: ref.action, applied: false, verified: false, undone: false, durationMs: 0, error: `canHandle threw: ${describeError(err)}` });
            continue;
          }
          if (!can) continue;
          handled = true;
          const attempt = await runAction(action, ref, failure, signal, o);
          attempts.push(attempt);
          o.learning.record(failure.kind, ref.action, attempt.verified, attempt.durationMs);
          if (attempt.verified) {
            verified = true;
            break;
          }
          unverified ||= attempt.unobservable === true;
        }
        if (!handled) continue;
        if (!verified && unverified) {
          // Applied by an action that cannot tell whether it worked: done, but not as recovered.
          stepsUnverified++;
          done++;
          continue;
        }
        if (!verified) {
          return { outcome: 'failed', attempts, reason: `step ${i + 1} (${step.map((s) => s.action).join(' | ')}) had no action that verified` };
        }
        done++;
      }
      if (done === 0) return { outcome: 'no-action', attempts, reason: `no action of rule "${rule.on}" can handle this failure` };
      if (stepsUnverified > 0) return { outcome: 'applied-unverified', attempts, reason: `${stepsUnverified} step(s) applied by actions that cannot observe their effect` };
      return { outcome: 'recovered', attempts };
    },
  };
}

async function runAction(action: HealingAction, ref: ActionRef, failure: Failure, outer: AbortSignal, o: SelfHealerOptions): Promise<ActionAttempt> {
  const timeoutMs = ref.timeout ?? o.actionTimeoutMs;
  const ctrl = new AbortController();
  const onOuter = () => ctrl.abort(outer.reason);
  outer.addEventListener('abort', onOuter, { once: true });
  const timer = setTimeout(() => ctrl.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
  const ctx: HealingContext = { signal: ctrl.signal, log: o.log.child({ action: action.id, failureId: failure.id }), options: ref.options };
  const bounded = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([
      p,
      new Promise<never>((_, reject) => {
        if (ctrl.signal.aborted) reject(abortError(ctrl.signal));
        ctrl.signal.addEventListener('abort', () => reject(abortError(ctrl.signal)), { once: true });
      }),
    ]);
  const t0 = performance.now();
  let applied = false;
  let verified = false;
  let undone = false;
  let unobservable = false;
  let summary: string | undefined;
  let error: string | undefined;
  try {
    const outcome = await bounded(Promise.resolve().then(() => action.apply(failure, ctx)));
    applied = true;
    summary = outcome?.summary;
    const seen = await bounded(Promise.resolve().then(() => action.verify(failure, ctx)));
    unobservable = seen === 'unobservable';
    verified = seen === true;
    if (!verified && !unobservable) error = 'verify said the failure is not fixed';
  } catch (err) {
    error = describeError(err);
  } finally {
    clearTimeout(timer);
    outer.removeEventListener('abort', onOuter);
  }
  if (!verified && !unobservable && applied && action.undo) {
    try {
      await action.undo(failure, { ...ctx, signal: AbortSignal.timeout(timeoutMs) });
      undone = true;
    } catch (err) {
      error = `${error}; undo failed: ${describeError(err)}`;
    }
  }
  const durationMs = Math.round((performance.now() - t0) * 10) / 10;
  ctx.log.info({ applied, verified, unobservable, undone, durationMs, error }, verified ? 'action verified' : unobservable ? 'action applied; it cannot observe its effect' : 'action did not fix the failure');
  return { action: action.id, applied, verified, undone, ...(unobservable ? { unobservable } : {}), durationMs, ...(summary ? { summary } : {}), ...(error ? { error } : {}) };
}

/** `p`, or a rejection once `ms` pass or `signal` aborts: canHandle may be a call into an isolated plugin. */
async function withTimeout<T>(p: Promise<T>, ms: number, signal: AbortSignal): Promise<T> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`no answer within ${ms} ms`)), ms);
  const onOuter = () => ctrl.abort(signal.reason);
  signal.addEventListener('abort', onOuter, { once: true });
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => ctrl.signal.addEventListener('abort', () => reject(abortError(ctrl.signal)), { once: true })),
    ]);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onOuter);
  }
}

function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));
}

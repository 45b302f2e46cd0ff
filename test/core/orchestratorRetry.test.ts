import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Failure, Priority } from '../../core/contracts/Failure.js';
import type { HealContext, Healer, HealResult, RetryPlan } from '../../core/contracts/Healer.js';
import { FailureBus } from '../../core/failureBus.js';
import { health } from '../../core/http/server.js';
import { createMetricsRegistry, instrumentOrchestrator } from '../../core/metrics.js';
import { Orchestrator } from '../../core/orchestrator/orchestrator.js';
import { captureLogger } from '../helpers/logCapture.js';

const RTO: Record<Priority, number> = { P0: 30_000, P1: 120_000, P2: 300_000, P3: 3_600_000 };

/**
 * A healer whose recoveries fail until `fixed` is set, each failure with a retry plan (up to
 * `max` attempts) whose wait ends when the test calls `wake()`.
 */
function flakyHealer(max: number) {
  const calls: Array<{ subject: string; attempt: number }> = [];
  let running = 0;
  let overlapped = false;
  let wake: ((t: 'condition' | 'backoff') => void) | null = null;
  const state = { fixed: false };
  const healer: Healer = {
    id: 'flaky',
    async heal(f: Failure, _signal: AbortSignal, ctx?: HealContext): Promise<HealResult> {
      const attempt = ctx?.attempt ?? 1;
      calls.push({ subject: f.subject, attempt });
      if (++running > 1) overlapped = true;
      await new Promise((r) => setTimeout(r, 10));
      running--;
      if (state.fixed) return { outcome: 'recovered', attempts: [{ action: 'a', applied: true, verified: true, undone: false, durationMs: 10 }] };
      const result: HealResult = { outcome: 'failed', attempts: [{ action: 'a', applied: false, verified: false, undone: false, durationMs: 10, error: 'ENOSPC: no space left on device' }], reason: 'step 1 (a) had no action that verified' };
      if (attempt >= max) return result;
      const retry: RetryPlan = {
        nextAttempt: attempt + 1,
        maxAttempts: max,
        waitingFor: 'free space on /test is back',
        notAfter: Date.now() + 60_000,
        wait: (signal) =>
          new Promise((resolve, reject) => {
            wake = resolve;
            signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
          }),
      };
      return { ...result, retry };
    },
  };
  return {
    healer,
    calls,
    state,
    overlapped: () => overlapped,
    wake: (t: 'condition' | 'backoff' = 'condition') => {
      const w = wake;
      wake = null;
      assert.ok(w, 'a retry is waiting');
      w(t);
    },
  };
}

function setup(healer: Healer, rtoTargets = RTO) {
  const bus = new FailureBus();
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-orch-retry-')), 'journal.jsonl');
  const cap = captureLogger();
  const orch = new Orchestrator({ bus, log: cap.log, journalFile: file, maxConcurrent: 2, rtoTargets, healer: () => healer });
  const metrics = createMetricsRegistry();
  instrumentOrchestrator(metrics, orch);
  return { bus, orch, cap, metrics };
}

const host = { status: () => [] } as unknown as Parameters<typeof health>[0]['host'];

async function until(fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('orchestrator: retries of a failed recovery', () => {
  it('keeps the failure open as retrying, not escalated while within its RTO target, and a later attempt that recovers ends it', async () => {
    const h = flakyHealer(5);
    const { bus, orch, cap, metrics } = setup(h.healer);
    orch.start();
    const f = bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:app' });
    await until(() => orch.openFailures().some((o) => o.state === 'retrying'));
    await orch.idle(); // a failure waiting for its retry is neither queued nor running
    const open = orch.openFailures();
    assert.equal(open.length, 1);
    assert.equal(open[0]!.state, 'retrying');
    assert.equal(open[0]!.attempt, 1);
    assert.equal(open[0]!.retry?.nextAttempt, 2);
    assert.equal(open[0]!.retry?.maxAttempts, 5);
    const hl = health({ host, orchestrator: orch });
    assert.equal(hl.healthy, false, 'a P1 failure still down is unhealthy while it is retried');
    assert.match(hl.reasons[0]!, /not fixed yet: retrying automatically \(attempt 2 of 5\) when free space on \/test is back/);
    // Automation is still at it, well inside the P1 target: nobody is paged.
    assert.ok(cap.lines().some((l) => l.level === 40 && /^recovery failed; retrying \(attempt 2 of 5\)/.test(String(l.msg))));
    assert.ok(!cap.lines().some((l) => /ESCALATION/.test(String(l.msg))));
    const first = orch.recentRecoveries();
    assert.equal(first.length, 1);
    assert.equal(first[0]!.escalated, false);
    assert.equal(first[0]!.escalatedNow, false);
    assert.equal(first[0]!.attempt, 1);
    assert.equal(first[0]!.retry?.nextAttempt, 2);

    // A duplicate while waiting is folded into the retrying failure, not run on its own.
    bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:app' });
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(h.calls.length, 1);
    assert.equal(orch.openFailures()[0]!.duplicates, 1);

    // Attempt 2 fails again (still not escalated), attempt 3 recovers.
    h.wake('condition');
    await until(() => h.calls.length === 2 && orch.openFailures()[0]?.state === 'retrying');
    assert.equal(orch.openFailures()[0]!.attempt, 2);
    assert.equal(orch.recentRecoveries().at(-1)!.escalated, false);
    h.state.fixed = true;
    h.wake('backoff');
    await until(() => orch.openFailures().length === 0);
    assert.deepEqual(h.calls.map((c) => c.attempt), [1, 2, 3]);
    assert.equal(h.overlapped(), false);
    const recs = orch.recentRecoveries();
    assert.deepEqual(recs.map((r) => [r.outcome, r.attempt, r.failureId]), [['failed', 1, f.id], ['failed', 2, f.id], ['recovered', 3, f.id]]);
    assert.ok(recs[2]!.rtoMs >= recs[0]!.rtoMs, 'the RTO runs from the detection to the attempt that fixed it');
    assert.equal(health({ host, orchestrator: orch }).healthy, true);
    const s = orch.snapshot();
    assert.equal(s.escalations, 0, 'fixed by a retry within its RTO target: nobody was paged');
    assert.equal(s.recoveriesRetried, 2);
    assert.equal(s.recoveriesFailed, 0);
    assert.equal(s.recoveriesSucceeded, 1);
    const text = await metrics.metrics();
    assert.match(text, /recovery_agent_recovery_retries_total\{kind="process-crash",trigger="condition"\} 1/);
    assert.match(text, /recovery_agent_recovery_retries_total\{kind="process-crash",trigger="backoff"\} 1/);
    assert.match(text, /recovery_agent_escalations_total 0/);
    await orch.stop();
  });

  it('escalates once, at the first failed attempt past its RTO target, and a later attempt that recovers ends it', async () => {
    const h = flakyHealer(6);
    const { bus, orch, cap, metrics } = setup(h.healer, { ...RTO, P1: 150 });
    let escalations = 0;
    orch.on('escalation', () => escalations++);
    orch.start();
    bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:app' });
    await until(() => orch.openFailures()[0]?.state === 'retrying');
    assert.equal(orch.recentRecoveries().at(-1)!.escalated, false, 'attempt 1 ended inside the 150 ms target');
    await new Promise((r) => setTimeout(r, 200));
    h.wake('backoff');
    await until(() => h.calls.length === 2 && orch.openFailures()[0]?.state === 'retrying');
    const second = orch.recentRecoveries().at(-1)!;
    assert.equal(second.escalated, true);
    assert.equal(second.escalatedNow, true);
    assert.ok(second.rtoMs >= 150);
    assert.ok(cap.lines().some((l) => l.level === 50 && /^ESCALATION: automatic recovery failed; its RTO target \(150 ms\) has passed; retrying \(attempt 3 of 6\)/.test(String(l.msg))));
    assert.equal(escalations, 1);
    // Attempt 3 fails too: escalated already, not again.
    h.wake('backoff');
    await until(() => h.calls.length === 3 && orch.openFailures()[0]?.state === 'retrying');
    assert.equal(orch.recentRecoveries().at(-1)!.escalatedNow, false);
    assert.ok(cap.lines().some((l) => l.level === 40 && l.msg === 'recovery retry failed; retrying again'));
    h.state.fixed = true;
    h.wake('condition');
    await until(() => orch.openFailures().length === 0);
    assert.equal(escalations, 1);
    assert.equal(orch.snapshot().escalations, 1, 'escalated once, however many attempts');
    assert.match(await metrics.metrics(), /recovery_agent_escalations_total 1/);
    await orch.stop();
  });

  it('a journal whose last attempt waited for a retry shows the failure escalated after a restart', async () => {
    const h = flakyHealer(5);
    const { bus, orch } = setup(h.healer);
    orch.start();
    const f = bus.publish('t', { kind: 'k', priority: 'P1', subject: 'store:s' });
    await until(() => orch.openFailures()[0]?.state === 'retrying');
    await orch.stop();
    const file = (orch as unknown as { journal: { file: string } }).journal.file;
    const again = new Orchestrator({ bus: new FailureBus(), log: captureLogger().log, journalFile: file, maxConcurrent: 2, rtoTargets: RTO, healer: () => h.healer });
    again.start();
    const open = again.openFailures();
    assert.equal(open.length, 1);
    assert.equal(open[0]!.state, 'escalated', 'nobody retries it after the restart: a person must look');
    assert.equal(open[0]!.failure.id, f.id);
    await again.stop();
  });

  it('stays escalated once the healer gives no more retries, and a cleared failure stops waiting', async () => {
    const h = flakyHealer(2);
    const { bus, orch, cap } = setup(h.healer);
    orch.start();
    bus.publish('t', { kind: 'k', priority: 'P0', subject: 'store:s' });
    await until(() => orch.openFailures()[0]?.state === 'retrying');
    h.wake();
    await until(() => orch.openFailures()[0]?.state === 'escalated');
    assert.equal(h.calls.length, 2);
    assert.ok(cap.lines().some((l) => l.level === 50 && /automatic recovery failed after 2 attempts; no more retries/.test(String(l.msg))));
    assert.equal(orch.recentRecoveries().at(-1)!.retry, undefined);
    assert.equal(orch.snapshot().recoveriesFailed, 1);
    assert.equal(orch.snapshot().escalations, 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(h.calls.length, 2, 'no attempt after the cap');

    // Cleared by its detector while waiting for a retry: no retry runs.
    const bus2 = new FailureBus();
    const h2 = flakyHealer(5);
    const orch2 = new Orchestrator({ bus: bus2, log: captureLogger().log, journalFile: path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-orch-retry-')), 'j.jsonl'), maxConcurrent: 2, rtoTargets: RTO, healer: () => h2.healer });
    orch2.start();
    const f2 = bus2.publish('d', { kind: 'k', priority: 'P1', subject: 'store:t' });
    await until(() => orch2.openFailures()[0]?.state === 'retrying');
    bus2.resolve('d', f2.id, 'the store is back');
    await until(() => orch2.openFailures().length === 0);
    assert.equal(orch2.recentFailures().find((x) => x.id === f2.id)?.state, 'cleared');
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(h2.calls.length, 1);
    await orch2.stop();
    await orch.stop();
  });
});

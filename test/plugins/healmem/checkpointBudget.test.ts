// graceful-restart's wait for the owner's checkpoint is bounded by the predicted exhaustion less
// the process's stopGrace and a margin — not by the control socket's fixed 30 s — so a leaking
// process whose owner does not answer is still restarted before it reaches its limit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Failure } from '../../../core/contracts/Failure.js';
import type { PageEngine } from '../../../core/contracts/PageEngine.js';
import { checkpointBudgetMs, checkpointWithin, DEFAULT_CHECKPOINT_TIMEOUT_MS } from '../../../plugins/graceful-restart/checkpointBudget.js';

function leak(evidence: Record<string, unknown>, detectedAt = Date.now()): Failure {
  return { id: 'f-1', kind: 'memory-leak', priority: 'P2', subject: 'process:app', evidence: { processId: 'app', pid: 1, ...evidence }, detectedAt, source: 'health-monitor', fingerprint: 'memory-leak|app|1' };
}

/** A page engine whose owner answers the checkpoint after `ms` (never, when null). */
function ownerAnswering(ms: number | null) {
  const seen: { timeoutMs?: number; closed: boolean } = { closed: false };
  const engine = {
    async connectOwner(_dir: string, options?: { timeoutMs?: number }) {
      if (options?.timeoutMs !== undefined) seen.timeoutMs = options.timeoutMs;
      return {
        checkpoint: () => (ms === null ? new Promise(() => undefined) : new Promise((r) => setTimeout(() => r({ lsn: 9, redoLsn: 9, pagesWritten: 3, durationMs: ms }), ms))),
        close: () => void (seen.closed = true),
      };
    },
  } as unknown as PageEngine;
  return { engine, seen };
}

describe('graceful-restart: the checkpoint wait is bounded by the predicted exhaustion', () => {
  it('is the time to exhaustion less stopGrace and the margin, capped, and zero when none is left', () => {
    const now = 1_000_000;
    assert.equal(checkpointBudgetMs(leak({ predictedAt: now + 8000 }), { now, stopGraceMs: 2000 }), 5000, 'default margin 1 s');
    assert.equal(checkpointBudgetMs(leak({ predictedAt: now + 8000 }), { now, stopGraceMs: 2000, marginMs: 3000 }), 3000);
    assert.equal(checkpointBudgetMs(leak({ etaSeconds: 6 }, now - 1000), { now, stopGraceMs: 1000 }), 3000, 'from the detection plus the ETA without predictedAt');
    assert.equal(checkpointBudgetMs(leak({ predictedAt: now + 3600_000 }), { now, stopGraceMs: 5000 }), DEFAULT_CHECKPOINT_TIMEOUT_MS, 'never more than the cap');
    assert.equal(checkpointBudgetMs(leak({ predictedAt: now + 3600_000 }), { now, stopGraceMs: 5000, capMs: 7000 }), 7000);
    assert.equal(checkpointBudgetMs(leak({}), { now, stopGraceMs: 5000 }), DEFAULT_CHECKPOINT_TIMEOUT_MS, 'no prediction: the cap');
    assert.equal(checkpointBudgetMs(leak({ predictedAt: now + 2500 }), { now, stopGraceMs: 2000 }), 0, 'no time left: no checkpoint');
    assert.equal(checkpointBudgetMs(leak({ predictedAt: now + 3050 }), { now, stopGraceMs: 2000 }), 0, 'under 100 ms is no time');
  });

  it('gives up on an owner that does not answer once the budget is spent, and takes one that does', async () => {
    const f = leak({ predictedAt: Date.now() + 1600 });
    const budget = checkpointBudgetMs(f, { now: Date.now(), stopGraceMs: 100, marginMs: 500 });
    assert.ok(budget > 800 && budget <= 1000, String(budget));
    const hung = ownerAnswering(null);
    const t0 = performance.now();
    await assert.rejects(checkpointWithin(hung.engine, '/store', budget), /checkpoint took more than \d+ ms, the time left before the predicted exhaustion/);
    const waited = performance.now() - t0;
    assert.ok(waited >= budget - 20 && waited < budget + 700, `waited ${waited.toFixed(0)} ms for a budget of ${budget} ms`);
    assert.equal(hung.seen.timeoutMs, budget, 'the control connection is bounded by the same budget');
    assert.equal(hung.seen.closed, true, 'the connection to the owner is closed');

    const quick = ownerAnswering(20);
    assert.deepEqual(await checkpointWithin(quick.engine, '/store', budget), { lsn: 9, redoLsn: 9, pagesWritten: 3, durationMs: 20 });
  });
});

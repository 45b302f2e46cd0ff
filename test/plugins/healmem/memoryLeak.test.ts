// A leaking application (its RSS grows steadily, ~30 MiB/s) under a memoryLimit of 400 MiB:
// the health monitor's per-process RSS trend (the exhaustion predictor, on a horizon scaled down
// to 6 s) predicts it reaches the limit → memory-leak (P2) → graceful-restart checkpoints its
// store through the control socket, stops it, finds the store clean, starts it again, and
// verifies a new pid below the threshold owning the store — before the child reaches the limit
// (where it would exit 137, as the OOM killer would kill it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { startAgent, waitFor } from './harness.js';

const MiB = 2 ** 20;

describe('memory-leak → graceful-restart', () => {
  it('restarts the leaking process before it reaches its memory limit', async (t) => {
    const h = await startAgent(
      { leakBytesPerSec: 30 * MiB, limitBytes: 400 * MiB },
      {
        process: { memoryLimit: '400MiB' },
        health: { interval: '100ms', sustain: 3000, prediction: { window: '4s', recent: '2s', horizon: '6s', guard: 0.75, sustain: 5, minProbability: 0.5 } },
      },
    );
    try {
      const first = await waitFor(() => h.ready()[0], 15_000, 'the application to start');
      assert.ok(h.leaked(), 'the first instance leaks');
      const r = await waitFor(() => h.recoveries('memory-leak')[0], 30_000, 'the memory-leak recovery');
      t.diagnostic(`detected → verified in ${r.rtoMs} ms: ${r.attempts[0]?.summary}`);
      assert.deepEqual(h.oomed(), [], 'the leaking process never reached its limit');
      assert.equal(r.outcome, 'recovered', JSON.stringify(r));
      assert.equal(r.subject, 'process:app');
      assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['graceful-restart', true]]);
      assert.match(r.attempts[0]!.summary!, new RegExp(`restarted process app \\(RSS \\d+ of ${400 * MiB} bytes\\): pid ${first} → \\d+; store "demo" checkpointed first, clean after the stop`));
      const second = await waitFor(() => h.ready()[1], 10_000, 'the restarted application');
      assert.notEqual(second, first);
      const st = await ControlClient.with(h.store, (c) => c.status());
      assert.equal(st.pid, second, 'the new instance owns the store');
      assert.equal(h.agent.orchestrator.recentRecoveries().filter((x) => x.kind === 'process-crash').length, 0, 'the restart was no crash');
    } finally {
      await h.stop();
    }
  });
});

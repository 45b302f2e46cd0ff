import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { RestartPolicy } from '../../../plugins/crash-detector/restartPolicy.js';
import { childProcessConfig, startDetector, waitFor, type Harness } from './harness.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-restart-policy-'));
const running: Harness[] = [];
after(async () => {
  for (const h of running) await h.stop();
});

describe('restart policy (arithmetic)', () => {
  const limits = { initialMs: 100, maxMs: 1000, resetAfterMs: 30_000, burst: 5, withinMs: 60_000 };

  it('doubles the backoff up to the cap, and resets it after a stable uptime', () => {
    const p = new RestartPolicy({ ...limits, burst: 100 });
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      const plan = p.plan(i * 10, 50);
      assert.ok(plan.allowed);
      delays.push(plan.delayMs);
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
    const afterStable = p.plan(100, 30_000);
    assert.deepEqual(afterStable, { allowed: true, delayMs: 100 });
    assert.deepEqual(p.plan(200, 10), { allowed: true, delayMs: 200 }, 'and grows again from there');
  });

  it('refuses a start beyond `burst` within `within`, and allows it once the window has moved on', () => {
    const p = new RestartPolicy(limits);
    for (let i = 0; i < 5; i++) {
      assert.equal(p.plan(i * 1000, null).allowed, true);
      p.recordStart(i * 1000);
    }
    const refused = p.plan(5000, null);
    assert.deepEqual(refused, { allowed: false, startsInWindow: 5, oldestStartAt: 0 });
    assert.equal(p.plan(59_999, null).allowed, false);
    assert.equal(p.plan(60_000, null).allowed, true, 'the first start has left the window');
  });
});

describe('restart policy (real processes)', () => {
  it('waits out a growing backoff between restarts, and resets it after a stable uptime', async (t) => {
    const runs = path.join(tmp, 'runs-backoff');
    // Run 0 is the agent's start; runs 0-3 die at once; run 4 lives 700 ms (longer than resetAfter); the rest die at once.
    const h = await startDetector([
      childProcessConfig('flaky', { runs: { file: runs, lifetimesMs: [0, 0, 0, 0, 700, 0] } }, { restart: { backoff: { initial: '60ms', max: '240ms', resetAfter: '500ms' }, limit: { burst: 50, within: '1m' } } }),
    ]);
    running.push(h);
    const waits: number[] = [];
    const uptimes: number[] = [];
    for (let i = 0; i < 6; i++) {
      await waitFor(() => h.failures('process-crash').length === i + 1, 5000, `crash ${i + 1}`);
      const { at: exitAt, uptimeMs } = h.supervisor.get('flaky')!.lastExit!;
      uptimes.push(uptimeMs ?? 0);
      await h.supervisor.restart('flaky', 'test');
      waits.push(h.supervisor.get('flaky')!.startedAt! - exitAt);
    }
    // The backoff each restart owes, from the uptimes the supervisor saw: doubling from 60 ms to
    // the 240 ms cap, back to 60 after a run of 500 ms or more. Normally 60, 120, 240, 240, then
    // 60 and 120 after the 700 ms run; on a loaded machine a run meant to die at once can itself
    // live 500 ms (a slow start of node), and then rightly resets the backoff too.
    const expected: number[] = [];
    for (let attempt = 0, i = 0; i < 6; i++) {
      if (uptimes[i]! >= 500) attempt = 0;
      expected.push(Math.min(240, 60 * 2 ** attempt++));
    }
    t.diagnostic(`uptimes ${uptimes.join(', ')} ms; waits from exit to restart: ${waits.join(', ')} ms (backoff owed: ${expected.join(', ')})`);
    assert.ok(uptimes[4]! >= 700, 'the 700 ms run is seen as stable');
    assert.ok(expected.some((e) => e > 60), 'some restart owed a doubled backoff');
    waits.forEach((w, i) => {
      assert.ok(w >= expected[i]! - 2, `restart ${i + 1} waited ${w} ms, expected at least ${expected[i]}`);
      assert.ok(w < expected[i]! + 400, `restart ${i + 1} waited ${w} ms, expected about ${expected[i]}`);
    });
    const s = h.supervisor.get('flaky')!;
    assert.equal(s.restarts, 6);
    await h.stop();
  });

  it('gives up after more than `burst` starts within `within`: a clear error and state given-up', async () => {
    const h = await startDetector([
      childProcessConfig('crashloop', { exitAfterMs: 0, exitCode: 2 }, { restart: { backoff: { initial: '10ms', max: '20ms' }, limit: { burst: 3, within: '1m' } } }),
    ]);
    running.push(h);
    // Start 1 is the agent's own; restarts 1 and 2 are starts 2 and 3; restart 3 would be start 4.
    for (let i = 1; i <= 2; i++) {
      await waitFor(() => h.failures('process-crash').length === i, 5000, `crash ${i}`);
      await h.supervisor.restart('crashloop', 'test');
    }
    await waitFor(() => h.failures('process-crash').length === 3, 5000, 'crash 3');
    await assert.rejects(h.supervisor.restart('crashloop', 'test'), (err: unknown) => {
      assert.ok(isRaError(err, 'RA_ERR_PROCESS_GIVEN_UP'), String(err));
      assert.match(err.message, /"crashloop" was started 3 times within 60000 ms \(restart\.limit allows 3\)/);
      return true;
    });
    const s = h.supervisor.get('crashloop')!;
    assert.equal(s.state, 'given-up');
    assert.equal(s.restarts, 2);
    assert.ok(h.lines().some((l) => l.process === 'crashloop' && l.level === 50 && /giving up/.test(String(l.msg))), 'logged as an error');
    await assert.rejects(h.supervisor.restart('crashloop', 'again'), (err: unknown) => isRaError(err, 'RA_ERR_PROCESS_GIVEN_UP'));
    await h.stop();
  });

  it('shares one restart between concurrent callers, and stop() cancels a restart waiting out its backoff', async () => {
    const h = await startDetector([childProcessConfig('slowstart', { exitAfterMs: 0, exitCode: 1 }, { restart: { backoff: { initial: '400ms' } } })]);
    running.push(h);
    await waitFor(() => h.failures('process-crash').length === 1, 5000, 'the crash');
    const a = h.supervisor.restart('slowstart', 'a');
    const b = h.supervisor.restart('slowstart', 'b');
    assert.equal(a, b, 'one restart for both');
    await waitFor(() => h.supervisor.get('slowstart')!.nextStartAt, 1000, 'the backoff wait');
    await h.supervisor.stop('slowstart');
    await assert.rejects(a, (err: unknown) => isRaError(err, 'RA_ERR_PROCESS_STATE') && /cancelled/.test(err.message));
    assert.equal(h.supervisor.get('slowstart')!.state, 'stopped');
    assert.equal(h.supervisor.get('slowstart')!.restarts, 0);
    await h.stop();
    await assert.rejects(h.supervisor.restart('slowstart', 'late'), (err: unknown) => isRaError(err, 'RA_ERR_PROCESS_STATE') && /stopping/.test(err.message));
    assert.throws(() => h.supervisor.restart('nobody', 'x'), (err: unknown) => isRaError(err, 'RA_ERR_USAGE') && /no process with id "nobody"/.test(err.message));
  });
});

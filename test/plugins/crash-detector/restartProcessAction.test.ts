import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Failure } from '../../../core/contracts/Failure.js';
import { childProcessConfig, healingContext, pidExists, startDetector, waitFor, type Harness } from './harness.js';

const running: Harness[] = [];
after(async () => {
  for (const h of running) await h.stop();
});

const heartbeat = { udp: '127.0.0.1:0', timeout: '1s' };
const silent = pino({ level: 'silent' });

function fakeFailure(kind: string, evidence: Record<string, unknown>): Failure {
  return { id: `f-${kind}`, kind, priority: 'P1', subject: `process:${String(evidence.processId)}`, evidence, detectedAt: Date.now(), source: 'test', fingerprint: kind };
}

describe('restart-process healing action', () => {
  it('restarts a crashed process: a new pid that heartbeats', async (t) => {
    const h = await startDetector([childProcessConfig('writer', { heartbeatMs: 20, exitAfterMs: 300, exitCode: 9 }, { heartbeat, restart: { backoff: { initial: '20ms' } } })], { restartAction: true });
    running.push(h);
    const oldPid = h.supervisor.get('writer')!.pid!;
    const failure = await waitFor(() => h.failures('process-crash')[0], 5000, 'the crash');
    const action = h.action();
    assert.equal(action.canHandle(failure), true);
    const ctx = healingContext(silent);
    const t0 = performance.now();
    const outcome = await action.apply(failure, ctx);
    assert.equal(await action.verify(failure, ctx), true);
    t.diagnostic(`apply + verify took ${(performance.now() - t0).toFixed(0)} ms (backoff 20 ms, then a first heartbeat)`);
    const s = h.supervisor.get('writer')!;
    assert.equal(s.state, 'running');
    assert.notEqual(s.pid, oldPid);
    assert.deepEqual(outcome?.details, { processId: 'writer', oldPid, pid: s.pid });
    assert.ok(s.lastHeartbeatAt! >= s.startedAt!, 'heartbeating since the restart');
    assert.equal(s.restarts, 1);
    await h.stop();
  });

  it('kills a hung process first, then restarts it; the kill is no crash', async () => {
    const h = await startDetector([childProcessConfig('stuck', { heartbeatMs: 20 }, { heartbeat: { udp: '127.0.0.1:0', timeout: '250ms' }, restart: { backoff: { initial: '10ms' } } })], { restartAction: true });
    running.push(h);
    const oldPid = h.supervisor.get('stuck')!.pid!;
    await waitFor(() => h.supervisor.get('stuck')!.lastHeartbeatAt, 5000, 'a first heartbeat');
    process.kill(oldPid, 'SIGSTOP');
    const failure = await waitFor(() => h.failures('process-hang')[0], 3000, 'the hang');
    const action = h.action();
    assert.equal(action.canHandle(failure), true);
    const ctx = healingContext(silent);
    await action.apply(failure, ctx);
    assert.equal(pidExists(oldPid), false, 'the hung process is gone');
    assert.equal(await action.verify(failure, ctx), true);
    const s = h.supervisor.get('stuck')!;
    assert.notEqual(s.pid, oldPid);
    assert.equal(s.state, 'running');
    assert.equal(s.lastExit?.signal, 'SIGKILL');
    assert.equal(h.failures('process-crash').length, 0, 'killing the hung process is not reported as a crash');
    await h.stop();
  });

  it('verify says no when the restarted process never heartbeats, within its bound, and honours the abort signal', async () => {
    // The child never heartbeats; it exits before its first timeout, and the restarted one stays silent.
    const h = await startDetector([childProcessConfig('mute', { exitAfterMs: 100, exitCode: 1 }, { heartbeat: { udp: '127.0.0.1:0', timeout: '300ms' }, restart: { backoff: { initial: '10ms' } } })], { restartAction: true });
    running.push(h);
    const failure = await waitFor(() => h.failures('process-crash')[0], 5000, 'the crash');
    const action = h.action();
    const log = silent;
    await action.apply(failure, healingContext(log));
    let t0 = Date.now();
    assert.equal(await action.verify(failure, healingContext(log, { verifyTimeout: '200ms' })), false);
    const took = Date.now() - t0;
    assert.ok(took >= 190 && took < 1500, `verify gave up after ${took} ms`);
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 50);
    t0 = Date.now();
    assert.equal(await action.verify(failure, healingContext(log, {}, abort.signal)), false);
    assert.ok(Date.now() - t0 < 500, 'an aborted verify returns promptly');
    await h.stop();
  });

  it('verify says no at once when the restarted instance exits again, not at its bound', async () => {
    // Every instance exits after 150 ms, before any heartbeat; the heartbeat timeout of 3 s makes verify's bound 4 s.
    const h = await startDetector([childProcessConfig('flaky', { exitAfterMs: 150, exitCode: 5 }, { heartbeat: { udp: '127.0.0.1:0', timeout: '3s' }, restart: { backoff: { initial: '10ms' } } })], { restartAction: true });
    running.push(h);
    const failure = await waitFor(() => h.failures('process-crash')[0], 5000, 'the crash');
    const action = h.action();
    const ctx = healingContext(silent);
    const outcome = await action.apply(failure, ctx);
    const t0 = Date.now();
    assert.equal(await action.verify(failure, ctx), false);
    const took = Date.now() - t0;
    assert.ok(took < 1500, `verify answered ${took} ms after the restart, once the new instance exited (its bound: 4 s)`);
    assert.equal(h.supervisor.get('flaky')!.lastExit?.pid, (outcome?.details as { pid: number }).pid, 'the instance that exited is the restarted one');
    await h.stop();
  });

  it('canHandle follows the restart policy', async () => {
    const h = await startDetector(
      [
        childProcessConfig('never', {}, { restart: { policy: 'never' } }),
        childProcessConfig('onfail', {}),
        childProcessConfig('always', {}, { restart: { policy: 'always' } }),
        { id: 'attached', pidFile: '/nonexistent/ra-test.pid' },
      ],
      { restartAction: true },
    );
    running.push(h);
    const a = h.action();
    const crash = (processId: string, exitCode: number | null, signal: string | null) => fakeFailure('process-crash', { processId, pid: 1, exitCode, signal });
    assert.equal(a.canHandle(crash('never', 1, null)), false);
    assert.equal(a.canHandle(fakeFailure('process-hang', { processId: 'never', pid: 1 })), false);
    assert.equal(a.canHandle(crash('onfail', 1, null)), true);
    assert.equal(a.canHandle(crash('onfail', null, 'SIGSEGV')), true);
    assert.equal(a.canHandle(crash('onfail', 0, null)), false, 'a clean exit under on-failure');
    assert.equal(a.canHandle(fakeFailure('process-crash', { processId: 'onfail', pid: null, exitCode: null, signal: null, spawnError: 'ENOENT' })), true);
    assert.equal(a.canHandle(fakeFailure('process-hang', { processId: 'onfail', pid: 1 })), true);
    assert.equal(a.canHandle(crash('always', 0, null)), true);
    assert.equal(a.canHandle(crash('attached', 1, null)), false, 'the agent cannot restart what it did not start');
    assert.equal(a.canHandle(crash('unknown', 1, null)), false);
    assert.equal(a.canHandle(fakeFailure('page-corruption', { processId: 'onfail' })), false);
    await h.stop();
  });
});

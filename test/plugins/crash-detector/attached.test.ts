import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import type { ProcessCrashEvidence, ProcessHangEvidence } from '../../../plugins/crash-detector/index.js';
import { processStartTime } from '../../../plugins/crash-detector/procStats.js';
import type { ChildSpec } from '../../fixtures/crash-detector-child.js';
import { fixture } from '../../helpers/paths.js';
import { freePort, startDetector, waitFor, type Harness } from './harness.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-attached-'));
const children: ChildProcess[] = [];
const running: Harness[] = [];
after(async () => {
  for (const h of running) await h.stop();
  for (const c of children) c.kill('SIGKILL');
});

/** A process the agent did not start: spawned by the test itself. */
async function outsider(spec: ChildSpec = {}): Promise<{ child: ChildProcess; pid: number; start: string }> {
  const child = spawn(process.execPath, [fixture('crash-detector-child.js'), JSON.stringify(spec)], { stdio: 'ignore' });
  children.push(child);
  const pid = child.pid!;
  const start = await waitFor(() => processStartTime(pid), 2000, 'the outsider in /proc');
  return { child, pid, start };
}

const ms = (ns: bigint) => Number(ns) / 1e6;

describe('crash detector: attached processes (pidFile)', () => {
  it('attaches by pid and start time, and sees the process die within the poll interval', async (t) => {
    const { pid, start } = await outsider();
    const pidFile = path.join(tmp, 'alive.pid');
    writeFileSync(pidFile, `${pid}\n${start}\n`);
    const h = await startDetector([{ id: 'legacy', pidFile, store: 'demo' }], { stores: [{ id: 'demo', path: './x' }] });
    running.push(h);
    const s = h.supervisor.get('legacy')!;
    assert.deepEqual({ mode: s.mode, state: s.state, pid: s.pid }, { mode: 'attached', state: 'running', pid });
    assert.ok(s.startedAt !== null && Math.abs(Date.now() - s.startedAt) < 10_000, `startedAt from /proc (${s.startedAt})`);
    await assert.rejects(h.supervisor.restart('legacy', 'x'), (err: unknown) => isRaError(err, 'RA_ERR_PROCESS_STATE') && /attached/.test(err.message));
    const t0 = process.hrtime.bigint();
    process.kill(pid, 'SIGKILL');
    const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-crash'), 3000, 'process-crash');
    t.diagnostic(`attached process killed → process-crash in ${ms(d.at - t0).toFixed(1)} ms (poll every 100 ms)`);
    assert.ok(ms(d.at - t0) < 500);
    const ev = d.failure.evidence as unknown as ProcessCrashEvidence;
    assert.deepEqual(
      { processId: ev.processId, mode: ev.mode, pid: ev.pid, exitCode: ev.exitCode, signal: ev.signal, store: ev.store, reason: ev.reason },
      { processId: 'legacy', mode: 'attached', pid, exitCode: null, signal: null, store: 'demo', reason: 'gone' },
    );
    assert.ok(ev.uptimeMs !== null && ev.uptimeMs >= 0);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.failures('process-crash').length, 1, 'reported once while the pid file still names it');
    assert.equal(h.supervisor.get('legacy')!.state, 'exited');

    // The application comes back under a new pid: the agent attaches to it.
    const next = await outsider();
    writeFileSync(pidFile, `${next.pid}\n`);
    await waitFor(() => h.supervisor.get('legacy')!.state === 'running', 2000, 'the new instance');
    assert.equal(h.supervisor.get('legacy')!.pid, next.pid);
    await h.stop();
  });

  it('treats a pid file naming a live pid with another start time as dead (pid reuse)', async () => {
    const { pid, start } = await outsider();
    const pidFile = path.join(tmp, 'reused.pid');
    writeFileSync(pidFile, `${pid}\n${Number(start) - 1234}\n`);
    const h = await startDetector([{ id: 'ghost', pidFile }]);
    running.push(h);
    const f = h.failures('process-crash');
    assert.equal(f.length, 1);
    const ev = f[0]!.evidence as unknown as ProcessCrashEvidence;
    assert.equal(ev.pid, pid);
    assert.equal(ev.reason, 'pid-reused');
    assert.equal(ev.uptimeMs, null);
    const s = h.supervisor.get('ghost')!;
    assert.equal(s.state, 'exited');
    assert.equal(s.pid, null, 'the live process with that pid is not taken for ours');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.failures().length, 1, 'reported once');
    await h.stop();
  });

  it('waits for a pid file that does not exist yet, and stops watching on stop(id)', async () => {
    const pidFile = path.join(tmp, 'later.pid');
    const h = await startDetector([{ id: 'later', pidFile }]);
    running.push(h);
    assert.equal(h.supervisor.get('later')!.state, 'stopped');
    await new Promise((r) => setTimeout(r, 250));
    assert.equal(h.failures().length, 0, 'no pid file is not a crash');
    const { pid } = await outsider();
    writeFileSync(pidFile, `${pid}\n`);
    await waitFor(() => h.supervisor.get('later')!.state === 'running', 2000, 'attaching');
    await h.supervisor.stop('later');
    assert.equal(h.supervisor.get('later')!.state, 'stopped');
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(h.failures().length, 0, 'an unwatched process is not reported');
    await h.stop();
  });

  it('sees an attached process hang through its HTTP probe', async () => {
    const port = await freePort();
    const { pid, start } = await outsider({ httpPort: port });
    const pidFile = path.join(tmp, 'web.pid');
    writeFileSync(pidFile, `${pid}\n${start}\n`);
    const h = await startDetector([{ id: 'web', pidFile, heartbeat: { http: `http://127.0.0.1:${port}/`, interval: '50ms', timeout: '300ms' } }]);
    running.push(h);
    await waitFor(() => h.supervisor.get('web')!.lastHeartbeatAt, 5000, 'a first probe');
    process.kill(pid, 'SIGSTOP');
    try {
      const f = await waitFor(() => h.failures('process-hang')[0], 3000, 'process-hang');
      assert.equal((f.evidence as unknown as ProcessHangEvidence).mode, 'attached');
      // (Waited for, not read once: under load a probe answered just before the SIGSTOP can be
      // read after the hang was declared, and that real heartbeat ends it until the next silence.)
      await waitFor(() => h.supervisor.get('web')!.state === 'hung', 3000, 'the hung state');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await h.stop();
  });
});

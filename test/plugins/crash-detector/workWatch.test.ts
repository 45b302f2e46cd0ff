// The work probe (plugins/crash-detector/workWatch.ts): a writer whose heartbeat goes on while its
// work loop is stuck with a transaction open is a process-hang (reason no-work), an idle one is
// not, and restart-process heals it. The judge's rules on a fake clock; then real writer
// processes (test/fixtures/work-hang-writer.ts) with real page stores and control sockets.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { WorkJudge, type WorkReading } from '../../../plugins/crash-detector/workWatch.js';
import { pagestore } from '../../helpers/engine.js';
import { fixture } from '../../helpers/paths.js';
import { healingContext, startDetector, waitFor, type Harness } from './harness.js';

const r = (commits: number, activeTransactions: number, lockWaits = 0): WorkReading => ({ commits, activeTransactions, lockWaits });

describe('WorkJudge', () => {
  it('calls no commit for the timeout while a transaction is open a stall, once, until commits resume', () => {
    const j = new WorkJudge(1000);
    assert.equal(j.observe(r(5, 1), 0), null);
    assert.equal(j.observe(r(5, 1), 500), null);
    const v = j.observe(r(5, 2, 1), 1000);
    assert.equal(v?.type, 'stall');
    assert.deepEqual(v?.type === 'stall' ? v.stall : null, { stalledMs: 1000, commits: 5, activeTransactions: 2, lockWaits: 1, unanswered: false });
    assert.equal(j.observe(r(5, 2), 3000), null, 'one verdict per stall');
    assert.deepEqual(j.observe(r(6, 1), 3100), { type: 'resume' });
    assert.equal(j.observe(r(6, 1), 3600), null);
    assert.equal(j.observe(r(6, 1), 4100)?.type, 'stall', 'a second stall after the resume');
  });

  it('never calls an idle application hung, and counts a stall from when work became pending', () => {
    const j = new WorkJudge(1000);
    for (let t = 0; t <= 10_000; t += 500) assert.equal(j.observe(r(7, 0), t), null, `idle at ${t} ms`);
    assert.equal(j.observe(r(7, 1), 10_500), null, 'a transaction opened after 10 s without commits is not late yet');
    assert.equal(j.observe(r(7, 1), 11_000), null);
    assert.equal(j.observe(r(7, 1), 11_500)?.type, 'stall');
  });

  it('takes a moving count for progress (a new owner counts from zero) and an absent owner for no reading', () => {
    const j = new WorkJudge(1000);
    for (let t = 0, c = 0; t <= 5000; t += 250) assert.equal(j.observe(r(c++, 3), t), null, 'committing');
    assert.equal(j.observe(r(0, 1), 5250), null, 'a new owner');
    assert.equal(j.observe('unavailable', 6000), null);
    assert.equal(j.observe(r(0, 1), 6500), null, 'the clock restarted at the owner coming back');
    assert.equal(j.observe(r(0, 1), 7000), null);
    assert.equal(j.observe(r(0, 1), 7500)?.type, 'stall');
  });

  it('judges an owner that stops answering by its last reading: stuck if work was pending, nothing if idle', () => {
    const stuck = new WorkJudge(1000);
    stuck.observe(r(3, 1), 0);
    assert.equal(stuck.observe('unanswered', 600), null);
    const v = stuck.observe('unanswered', 1200);
    assert.equal(v?.type === 'stall' && v.stall.unanswered, true);
    const idle = new WorkJudge(1000);
    idle.observe(r(3, 0), 0);
    for (let t = 500; t <= 5000; t += 500) assert.equal(idle.observe('unanswered', t), null);
  });
});

describe('the work probe of a supervised store writer', { timeout: 60_000 }, () => {
  const dirs: string[] = [];
  const running: Harness[] = [];
  after(async () => {
    for (const h of running) await h.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function writer(mode: 'commit' | 'idle', workWatch: Record<string, unknown> = { interval: '100ms', timeout: '800ms' }) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-work-hang-'));
    dirs.push(dir);
    const store = path.join(dir, 'store');
    const h = await startDetector(
      [{ id: 'w', command: process.execPath, args: [fixture('work-hang-writer.js'), store, '--mode', mode], store: 's', heartbeat: { udp: '127.0.0.1:0', timeout: '5s' }, workWatch, restart: { backoff: { initial: '20ms' } } }],
      { stores: [{ id: 's', engine: 'pagestore', path: store }], engines: [pagestore], restartAction: true },
    );
    running.push(h);
    // Ready: the store is open and its owner answers on the control socket.
    await waitFor(() => h.supervisor.get('w')!.lastHeartbeatAt !== null, 10_000, 'a first heartbeat');
    await ownerStatus(store);
    return { h, store };
  }

  /** The status of the store's owner, once one serves its control socket. */
  async function ownerStatus(store: string) {
    for (const deadline = Date.now() + 10_000; ; ) {
      const s = await ControlClient.with(store, (c) => c.status()).catch(() => null);
      if (s !== null) return s;
      if (Date.now() > deadline) throw new Error('the writer never served its control socket');
      await new Promise((res) => setTimeout(res, 50));
    }
  }

  it('publishes process-hang (no-work) for a writer stuck with a transaction open while it heartbeats, and restart-process heals it', async (t) => {
    const { h, store } = await writer('commit');
    await new Promise((res) => setTimeout(res, 2000));
    assert.deepEqual(h.failures('process-hang'), [], 'a committing writer is not hung (2 s, timeout 800 ms)');
    const pid = h.supervisor.get('w')!.pid!;
    process.kill(pid, 'SIGUSR2');
    const stuckAt = Date.now();
    const f = await waitFor(() => h.failures('process-hang')[0], 5000, 'process-hang');
    t.diagnostic(`detected ${Date.now() - stuckAt} ms after the loop got stuck (timeout 800 ms)`);
    assert.equal(f.evidence.reason, 'no-work');
    assert.equal(f.evidence.pid, pid);
    const work = f.evidence.work as { stalledMs: number; activeTransactions: number; unanswered: boolean };
    assert.ok(work.stalledMs >= 800 && work.activeTransactions >= 1 && !work.unanswered, JSON.stringify(work));
    const s = h.supervisor.get('w')!;
    assert.equal(s.state, 'hung');
    assert.ok(Date.now() - s.lastHeartbeatAt! < 500, 'its heartbeat goes on');
    assert.ok(h.lines().some((l) => /no commit for [\d.]+ s while \d+ transaction\(s\) are open/.test(String(l.msg))), 'the log says why');

    const action = h.action();
    assert.equal(action.canHandle(f), true);
    const ctx = healingContext(pino({ level: 'silent' }));
    await action.apply(f, ctx);
    assert.equal(await action.verify(f, ctx), true);
    const after = h.supervisor.get('w')!;
    assert.notEqual(after.pid, pid);
    // The new instance commits again: the owner's count moves.
    const first = await ownerStatus(store);
    await new Promise((res) => setTimeout(res, 300));
    const second = await ControlClient.with(store, (c) => c.status());
    assert.equal(second.pid, after.pid);
    assert.ok(second.commits > first.commits, `commits ${first.commits} → ${second.commits}`);
    await new Promise((res) => setTimeout(res, 1200));
    assert.equal(h.failures('process-hang').length, 1, 'the restarted writer is not hung');
    await h.stop();
  });

  it('does not call an idle writer (nothing open, nothing committed) hung', async () => {
    const { h } = await writer('idle');
    await new Promise((res) => setTimeout(res, 2500));
    assert.deepEqual(h.failures('process-hang'), []);
    assert.equal(h.supervisor.get('w')!.state, 'running');
    await h.stop();
  });
});

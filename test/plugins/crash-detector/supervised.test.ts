import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { HEARTBEAT_ENV, PROCESS_ID_ENV, type ProcessCrashEvidence, type ProcessHangEvidence } from '../../../plugins/crash-detector/index.js';
import { childProcessConfig, freePort, pidExists, startDetector, waitFor, type Harness } from './harness.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ra-crash-detector-'));
const running: Harness[] = [];
after(async () => {
  for (const h of running) await h.stop();
});
async function detector(...args: Parameters<typeof startDetector>): Promise<Harness> {
  const h = await startDetector(...args);
  running.push(h);
  return h;
}
const ms = (ns: bigint) => Number(ns) / 1e6;

describe('crash detector: supervised processes', () => {
  it('publishes process-crash with the exit code at once (< 200 ms; goal < 50 ms)', async (t) => {
    const mark = path.join(tmp, 'exit-mark');
    const h = await detector([childProcessConfig('quitter', { exitAfterMs: 300, exitCode: 3, markFile: mark }, { store: 'demo' })], { stores: [{ id: 'demo', path: './var/x' }] });
    const first = h.supervisor.get('quitter')!;
    assert.equal(first.state, 'running');
    assert.equal(first.mode, 'supervised');
    assert.ok(first.pid! > 0);
    const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-crash'), 5000, 'process-crash');
    const latency = ms(d.at - BigInt(readFileSync(mark, 'utf8')));
    t.diagnostic(`exit → process-crash published: ${latency.toFixed(2)} ms (from the child's last act before exit)`);
    assert.ok(latency < 200, `published ${latency} ms after the exit`);
    const f = d.failure;
    assert.equal(f.priority, 'P1');
    assert.equal(f.subject, 'process:quitter');
    assert.equal(f.source, 'crash-detector');
    const ev = f.evidence as unknown as ProcessCrashEvidence;
    assert.equal(ev.processId, 'quitter');
    assert.equal(ev.pid, first.pid);
    assert.equal(ev.exitCode, 3);
    assert.equal(ev.signal, null);
    assert.equal(ev.store, 'demo');
    assert.equal(ev.lastHeartbeatAt, null);
    assert.ok(ev.uptimeMs !== null && ev.uptimeMs >= 250 && ev.uptimeMs < 5000, `uptime ${ev.uptimeMs}`);
    const s = h.supervisor.get('quitter')!;
    assert.equal(s.state, 'exited');
    assert.equal(s.pid, null);
    assert.deepEqual({ code: s.lastExit?.code, signal: s.lastExit?.signal, pid: s.lastExit?.pid }, { code: 3, signal: null, pid: first.pid });
    assert.equal(s.crashes, 1);
    await h.stop();
  });

  it('a clean exit (code 0) is no crash under on-failure, and is one under always', async () => {
    const h = await detector([
      childProcessConfig('done', { exitAfterMs: 100, exitCode: 0 }),
      childProcessConfig('daemon', { exitAfterMs: 100, exitCode: 0 }, { restart: { policy: 'always' } }),
    ]);
    const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-crash'), 5000, 'process-crash');
    assert.equal(d.failure.subject, 'process:daemon');
    await waitFor(() => h.supervisor.get('done')!.state === 'exited' || undefined, 5000, 'the clean exit');
    await sleep(200);
    assert.deepEqual(h.delivered.filter((x) => x.failure.kind === 'process-crash').map((x) => x.failure.subject), ['process:daemon']);
    const done = h.supervisor.get('done')!;
    assert.equal(done.crashes, 0);
    assert.equal(done.lastExit?.code, 0);
    await h.stop();
  });

  it('publishes process-crash with the signal when the child is killed', async (t) => {
    const h = await detector([childProcessConfig('victim', { heartbeatMs: 50 }, { heartbeat: { udp: '127.0.0.1:0', timeout: '2s' } })]);
    const pid = h.supervisor.get('victim')!.pid!;
    await waitFor(() => h.supervisor.get('victim')!.lastHeartbeatAt, 5000, 'a first heartbeat');
    const t0 = process.hrtime.bigint();
    process.kill(pid, 'SIGKILL');
    const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-crash'), 5000, 'process-crash');
    const latency = ms(d.at - t0);
    t.diagnostic(`SIGKILL → process-crash published: ${latency.toFixed(2)} ms`);
    assert.ok(latency < 200, `published ${latency} ms after the kill`);
    const ev = d.failure.evidence as unknown as ProcessCrashEvidence;
    assert.equal(ev.signal, 'SIGKILL');
    assert.equal(ev.exitCode, null);
    assert.equal(ev.pid, pid);
    assert.ok(ev.lastHeartbeatAt !== null && Date.now() - ev.lastHeartbeatAt < 2000, 'the last heartbeat is in the evidence');
    assert.equal(ev.store, undefined);
    await h.stop();
  });

  it('hands the child its heartbeat address and token, and publishes process-hang once per hang (SIGSTOP)', async (t) => {
    const timeout = 300;
    const h = await detector([childProcessConfig('sleeper', { heartbeatMs: 30, printEnv: [HEARTBEAT_ENV, PROCESS_ID_ENV] }, { heartbeat: { udp: '127.0.0.1:0', timeout } })]);
    const pid = h.supervisor.get('sleeper')!.pid!;
    await waitFor(() => h.supervisor.get('sleeper')!.lastHeartbeatAt, 5000, 'a first heartbeat');
    const stdout = () => h.lines().filter((l) => l.process === 'sleeper' && l.stream === 'stdout').map((l) => String(l.msg));
    const env = await waitFor(() => stdout().length >= 2 && stdout(), 5000, 'the environment printed');
    assert.match(env[0]!, /^RECOVERY_AGENT_HEARTBEAT=udp:\/\/127\.0\.0\.1:[1-9]\d*\/[0-9a-f]{32}$/);
    assert.equal(env[1], 'RECOVERY_AGENT_PROCESS_ID=sleeper');
    const t0 = process.hrtime.bigint();
    process.kill(pid, 'SIGSTOP');
    try {
      const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-hang'), 5000, 'process-hang');
      const sinceStop = ms(d.at - t0);
      const ev = d.failure.evidence as unknown as ProcessHangEvidence;
      const sinceLastBeat = d.failure.detectedAt - ev.lastHeartbeatAt!;
      t.diagnostic(`SIGSTOP → process-hang: ${sinceStop.toFixed(1)} ms after the stop, ${sinceLastBeat} ms after the last heartbeat (timeout ${timeout} ms)`);
      assert.ok(sinceStop < timeout + 500, `hang seen ${sinceStop} ms after SIGSTOP`);
      assert.ok(sinceLastBeat >= timeout - 1, `not before the timeout (${sinceLastBeat} ms)`);
      assert.deepEqual({ processId: ev.processId, pid: ev.pid, timeoutMs: ev.timeoutMs }, { processId: 'sleeper', pid, timeoutMs: timeout });
      assert.equal(d.failure.priority, 'P1');
      assert.equal(d.failure.subject, 'process:sleeper');
      assert.equal(h.supervisor.get('sleeper')!.state, 'hung');
      await new Promise((r) => setTimeout(r, timeout * 2));
      assert.equal(h.failures('process-hang').length, 1, 'one failure per hang');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(() => h.supervisor.get('sleeper')!.state === 'running', 3000, 'heartbeats to resume');
    process.kill(pid, 'SIGSTOP');
    try {
      await waitFor(() => h.failures('process-hang').length === 2, 3000, 'a second hang');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    assert.equal(h.supervisor.get('sleeper')!.hangs, 2);
    assert.equal(h.failures('process-crash').length, 0);
    await h.stop();
  });

  it('an HTTP probe keeps a serving process alive and sees it hang', async (t) => {
    const port = await freePort();
    const timeout = 400;
    const h = await detector([childProcessConfig('web', { httpPort: port }, { heartbeat: { http: `http://127.0.0.1:${port}/health`, interval: '50ms', timeout } })]);
    const pid = h.supervisor.get('web')!.pid!;
    await waitFor(() => h.supervisor.get('web')!.lastHeartbeatAt, 5000, 'a first successful probe');
    await new Promise((r) => setTimeout(r, timeout + 200));
    assert.equal(h.supervisor.get('web')!.state, 'running', 'probes count as heartbeats');
    assert.equal(h.failures().length, 0);
    const t0 = process.hrtime.bigint();
    process.kill(pid, 'SIGSTOP');
    try {
      const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-hang'), 5000, 'process-hang');
      t.diagnostic(`HTTP probe: SIGSTOP → process-hang in ${ms(d.at - t0).toFixed(1)} ms (timeout ${timeout} ms)`);
      assert.ok(ms(d.at - t0) < timeout + 500);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(() => h.supervisor.get('web')!.state === 'running', 3000, 'probes to succeed again');
    await h.stop();
  });

  it('a TCP probe sees a process that stops accepting connections', async (t) => {
    const port = await freePort();
    const timeout = 400;
    const h = await detector([childProcessConfig('tcp', { tcpPort: port }, { heartbeat: { tcp: `127.0.0.1:${port}`, interval: '50ms', timeout } })]);
    const pid = h.supervisor.get('tcp')!.pid!;
    await waitFor(() => h.supervisor.get('tcp')!.lastHeartbeatAt, 5000, 'a first successful connect');
    await new Promise((r) => setTimeout(r, timeout + 200));
    assert.equal(h.supervisor.get('tcp')!.state, 'running');
    const t0 = process.hrtime.bigint();
    process.kill(pid, 'SIGUSR2'); // closes its listener
    const d = await waitFor(() => h.delivered.find((x) => x.failure.kind === 'process-hang'), 5000, 'process-hang');
    t.diagnostic(`TCP probe: listener closed → process-hang in ${ms(d.at - t0).toFixed(1)} ms (timeout ${timeout} ms)`);
    assert.ok(ms(d.at - t0) < timeout + 500);
    assert.equal((d.failure.evidence as unknown as ProcessHangEvidence).pid, pid);
    await h.stop();
  });

  it('on stop, SIGTERMs children, SIGKILLs those that ignore it after the grace, and reports no crash', async () => {
    const h = await detector([
      childProcessConfig('polite', {}, { stopGrace: '2s' }),
      childProcessConfig('stubborn', { ignoreTerm: true, print: ['ready'] }, { stopGrace: '300ms' }),
    ]);
    const polite = h.supervisor.get('polite')!.pid!;
    const stubborn = h.supervisor.get('stubborn')!.pid!;
    // Wait until the stubborn child has installed its SIGTERM handler (it prints after).
    await waitFor(() => h.lines().some((l) => l.process === 'stubborn' && l.msg === 'ready'), 5000, 'the stubborn child to be ready');
    const t0 = Date.now();
    await h.stop();
    const took = Date.now() - t0;
    assert.ok(!pidExists(polite) && !pidExists(stubborn), 'both children are gone');
    assert.ok(took >= 250 && took < 3000, `stop took ${took} ms`);
    assert.equal(h.failures().length, 0, 'an exit while stopping is not a crash');
    const [p, s] = h.supervisor.list();
    assert.equal(p!.lastExit?.signal, 'SIGTERM');
    assert.equal(s!.lastExit?.signal, 'SIGKILL');
    assert.equal(p!.state, 'stopped');
    assert.ok(h.lines().some((l) => l.process === 'stubborn' && /did not stop within its grace period/.test(String(l.msg))));
  });

  it('pipes stdout and stderr into the log line by line, truncating huge lines', async () => {
    const h = await detector([childProcessConfig('chatty', { print: ['hello world', 'second line'], hugeLineBytes: 100_000 })]);
    const pid = h.supervisor.get('chatty')!.pid!;
    await waitFor(() => h.lines().some((l) => l.msg === 'after-huge'), 5000, 'the line after the huge one');
    const lines = h.lines().filter((l) => l.process === 'chatty' && l.stream === 'stdout');
    assert.deepEqual(lines.slice(0, 2).map((l) => [l.msg, l.processPid, l.plugin]), [['hello world', pid, 'crash-detector'], ['second line', pid, 'crash-detector']]);
    const huge = lines.find((l) => typeof l.truncatedBytes === 'number')!;
    assert.equal(huge.truncatedBytes, 100_000 - 16 * 1024);
    assert.equal(String(huge.msg).length, 16 * 1024 + 1);
    await h.stop();
  });

  it('samples CPU %, RSS and threads from /proc', async (t) => {
    const h = await detector([childProcessConfig('busy', { busy: true }), childProcessConfig('idle', {})]);
    const busy = await waitFor(() => {
      const s = h.supervisor.get('busy')!;
      return s.cpuPercent !== null ? s : undefined;
    }, 5000, 'a CPU sample');
    await new Promise((r) => setTimeout(r, 1100));
    const b = h.supervisor.get('busy')!;
    const i = h.supervisor.get('idle')!;
    t.diagnostic(`busy child: ${b.cpuPercent}% CPU, ${b.rssBytes} B RSS, ${b.threads} threads; idle child: ${i.cpuPercent}%`);
    assert.ok(busy.cpuPercent !== null);
    assert.ok(b.cpuPercent! > 10, `a busy child uses CPU (${b.cpuPercent}%)`);
    assert.ok(i.cpuPercent! < b.cpuPercent!, 'an idle one uses less');
    assert.ok(b.rssBytes! > 5 * 2 ** 20 && b.rssBytes! < 2 ** 30, `rss ${b.rssBytes}`);
    assert.ok(b.threads! >= 2, `node runs several threads (${b.threads})`);
    await h.stop();
  });

  it('a command that cannot start is a crash of that process only', async () => {
    const h = await detector([
      { id: 'missing', command: path.join(tmp, 'no-such-program') },
      childProcessConfig('fine', {}),
    ]);
    const f = h.failures('process-crash');
    assert.equal(f.length, 1);
    const ev = f[0]!.evidence as unknown as ProcessCrashEvidence;
    assert.equal(ev.reason, 'spawn-failed');
    assert.equal(ev.pid, null);
    assert.match(ev.spawnError!, /ENOENT/);
    assert.equal(h.supervisor.get('missing')!.state, 'exited');
    assert.equal(h.supervisor.get('fine')!.state, 'running');
    await h.stop();
  });
});

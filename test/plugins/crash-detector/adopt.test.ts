/**
 * The agent's own crash: `kill -9` of a real agent (`recovery-agent run`) that supervises the
 * demo writer on a real store, then a second agent on the same config. The writer must survive
 * the agent (its output goes to a file, not a pipe to the dead agent), keep its pid, be adopted
 * (heartbeats included) with no duplicate started and no "store is locked" crash loop; its later
 * `kill -9` must be seen and recovered like any crash.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { ProcessStatus } from '../../../core/contracts/ProcessSupervisor.js';
import { BIN } from '../../helpers/cli.js';
import { repoRoot } from '../../helpers/paths.js';
import { freePort, pidExists } from './harness.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-adopt-'));
const agents: ChildProcess[] = [];
const writers = new Set<number>();
after(() => {
  for (const a of agents) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  for (const pid of writers) if (pidExists(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Polls `check` until it returns a value; on time-out the error ends with `context()` (an agent's last log lines). */
async function until<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, ms: number, what: string, context: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Pids of the processes whose command line names `needle`. */
function pidsRunning(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      if (st.slice(st.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').includes(needle)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('crash detector: a restarted agent adopts what the crashed one started', () => {
  it('kill -9 of the agent: the writer keeps running and its pid, is adopted, and its later crash is recovered', { timeout: 90_000 }, async (t) => {
    const [httpPort, udpPort] = [await freePort(), await freePort()];
    const store = path.join(dir, 'store');
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, [
      `agent: { dataDir: ${path.join(dir, 'agent')}, workers: 1, http: { listen: 127.0.0.1:${httpPort} } }`,
      'stores:',
      `  - { id: s, engine: pagestore, path: ${store} }`,
      'processes:',
      '  - id: writer',
      `    command: ${process.execPath}`,
      `    args: [${path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js')}, --store, ${store}, --rate, '20', --pages, '64']`,
      '    store: s',
      `    heartbeat: { udp: 127.0.0.1:${udpPort}, timeout: 1s }`,
      '    restart: { policy: on-failure, backoff: { initial: 100ms, max: 1s }, limit: { burst: 5, within: 60s } }',
      '',
    ].join('\n'));
    const stdoutFile = path.join(dir, 'agent', 'processes', 'writer.stdout');
    const startAgent = (n: number) => {
      const log = path.join(dir, `agent${n}.log`);
      const a = spawn(process.execPath, [BIN, 'run', '-c', cfg], { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
      agents.push(a);
      const text = () => readFileSync(log, 'utf8');
      return { a, log: text, tail: () => text().split('\n').filter((l) => !l.includes('"stream"')).slice(-15).join('\n') };
    };
    const status = async (): Promise<ProcessStatus | undefined> => {
      try {
        const res = await fetch(`http://127.0.0.1:${httpPort}/status`, { signal: AbortSignal.timeout(2000) });
        return ((await res.json()) as { processes: ProcessStatus[] }).processes.find((p) => p.id === 'writer');
      } catch {
        return undefined; // not listening (yet, or any more)
      }
    };

    // Agent 1 starts the writer.
    const one = startAgent(1);
    const first = await until(async () => {
      const s = await status();
      return s?.state === 'running' && s.lastHeartbeatAt !== null ? s : undefined;
    }, 30_000, 'agent 1 running the writer, heartbeating', one.tail);
    const writer = first.pid!;
    writers.add(writer);
    assert.equal(first.adopted, false);
    await until(() => one.log().includes('accounts created'), 10_000, "the writer's output in agent 1's log");

    // kill -9 of the agent. The writer keeps running, and keeps writing (a progress line every 5 s).
    one.a.kill('SIGKILL');
    await new Promise((r) => one.a.once('exit', r));
    const sizeAtKill = statSync(stdoutFile).size;
    await until(() => statSync(stdoutFile).size > sizeAtKill, 8000, 'the orphaned writer writing output');
    assert.ok(pidExists(writer), 'the writer survived its agent and its own output since');
    assert.deepEqual(pidsRunning(store), [writer]);

    // Agent 2 adopts it: same pid, no second writer, heartbeats still recognised.
    const two = startAgent(2);
    const adopted = await until(async () => {
      const s = await status();
      return s?.state === 'running' ? s : undefined;
    }, 30_000, 'agent 2 listing the writer as running', two.tail);
    assert.equal(adopted.pid, writer, 'the writer kept its pid');
    assert.equal(adopted.adopted, true);
    assert.equal(adopted.restarts, 0);
    await new Promise((r) => setTimeout(r, 1500)); // longer than the heartbeat timeout
    const later = (await status())!;
    assert.deepEqual({ pid: later.pid, state: later.state, crashes: later.crashes, hangs: later.hangs }, { pid: writer, state: 'running', crashes: 0, hangs: 0 }, 'no crash, no hang: its heartbeats still count');
    assert.ok(later.lastHeartbeatAt !== null && Date.now() - later.lastHeartbeatAt < 1500, 'heartbeats of the adopted writer are received');
    assert.deepEqual(pidsRunning(store), [writer], 'no duplicate writer was started');
    assert.doesNotMatch(two.log(), /"msg":"process started"/);
    assert.doesNotMatch(two.log(), /RA_ERR_STORE_LOCKED[^\n]*"process":"writer"|"process":"writer"[^\n]*locked by process/, 'no writer crash-looping on the store lock');
    await until(() => two.log().split('\n').some((l) => l.includes(`"processPid":${writer}`) && l.includes('"stream":"stdout"')), 8000, "the adopted writer's output in agent 2's log");

    // kill -9 of the adopted writer: a crash (exit code unknown), recovered by a restart.
    const killedAt = Date.now();
    process.kill(writer, 'SIGKILL');
    const restarted = await until(async () => {
      const s = await status();
      return s?.state === 'running' && s.pid !== writer && s.pid !== null ? s : undefined;
    }, 30_000, 'the writer restarted after its crash', two.tail);
    writers.add(restarted.pid!);
    t.diagnostic(`adopted writer kill -9 → restarted as pid ${restarted.pid} in ${Date.now() - killedAt} ms`);
    assert.deepEqual({ crashes: restarted.crashes, restarts: restarted.restarts, adopted: restarted.adopted }, { crashes: 1, restarts: 1, adopted: false });
    assert.deepEqual({ pid: restarted.lastExit?.pid, code: restarted.lastExit?.code, signal: restarted.lastExit?.signal }, { pid: writer, code: null, signal: null });
    const died = two.log().split('\n').find((l) => l.includes('"msg":"process died"'));
    assert.ok(died !== undefined, 'the crash was published');
    const ev = JSON.parse(died) as Record<string, unknown>;
    assert.deepEqual([ev.processPid, ev.exitCode, ev.reason, ev.adopted], [writer, null, 'gone', true], 'evidence: adopted, exit code unknown');
    assert.doesNotMatch(two.log(), /ESCALATION[^\n]*process:writer|process:writer[^\n]*ESCALATION/, 'the crash was recovered without escalation');
    assert.deepEqual(pidsRunning(store), [restarted.pid]);

    // kill -9 of agent 2, and its record of the writer lost: agent 3 still finds the orphan an agent
    // of this dataDir started (by its environment, command line and cwd) and adopts it.
    two.a.kill('SIGKILL');
    await new Promise((r) => two.a.once('exit', r));
    rmSync(path.join(dir, 'agent', 'processes', 'instances.json'));
    const three = startAgent(3);
    const found = await until(async () => {
      const s = await status();
      return s?.state === 'running' ? s : undefined;
    }, 30_000, 'agent 3 listing the writer as running', three.tail);
    assert.deepEqual({ pid: found.pid, adopted: found.adopted }, { pid: restarted.pid, adopted: true }, 'the unrecorded orphan was adopted');
    assert.match(three.log(), /no record of this process, but an earlier agent of this dataDir started the live process found: adopting it/);
    assert.doesNotMatch(three.log(), /"msg":"process started"/);
    assert.deepEqual(pidsRunning(store), [restarted.pid], 'no duplicate writer was started');

    // A normal stop of the agent stops what it supervises.
    three.a.kill('SIGTERM');
    await new Promise((r) => three.a.once('exit', r));
    assert.equal(pidsRunning(store).length, 0, 'stopping the agent stopped the writer');
    const records = JSON.parse(readFileSync(path.join(dir, 'agent', 'processes', 'instances.json'), 'utf8')) as { instances: object };
    assert.deepEqual(records.instances, {}, 'nothing left to adopt');
  });
});

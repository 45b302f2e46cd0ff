// For the replication end-to-end tests: agents started as separate processes (`recovery-agent
// run`) on a config written here, and their `GET /replication`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { BIN } from '../../helpers/cli.js';

export async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Agent {
  child: ChildProcess;
  /** The agent's HTTP base URL, once it is ready. */
  base: Promise<string>;
  log: string;
}

/** Starts `recovery-agent run` in `dir` with `<name>.yaml` holding `yaml` (after the agent section). */
export function startAgent(dir: string, name: string, yaml: string): Agent {
  writeFileSync(path.join(dir, `${name}.yaml`), `agent: { dataDir: ./${name}-data, workers: 2, http: { listen: 127.0.0.1:0 } }\n${yaml}`);
  const log = path.join(dir, `${name}-${Date.now()}.log`);
  const child = spawn(process.execPath, [BIN, 'run', '--config', path.join(dir, `${name}.yaml`)], { cwd: dir, stdio: ['ignore', openSync(log, 'w'), 'inherit'] });
  const base = until(`agent ${name} ready`, () => {
    if (child.exitCode !== null) throw new Error(`agent ${name} exited with ${child.exitCode}: ${readFileSync(log, 'utf8').slice(-2000)}`);
    const line = readFileSync(log, 'utf8').split('\n').find((l) => l.includes('"recovery-agent ready"'));
    return line ? `http://${(JSON.parse(line) as { http: string }).http}` : undefined;
  });
  return { child, base, log };
}

/** SIGKILLs every agent of `agents` still running (a test's `after`: nothing outlives the file). */
export function killAgents(agents: readonly Agent[]): void {
  for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL');
}

export function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', (code) => r(code))));
}

/** A loopback port free a moment ago. */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

export async function replicationOf<T>(base: string, store: string): Promise<T> {
  return ((await (await fetch(`${base}/replication`)).json()) as { stores: Record<string, T> }).stores[store]!;
}

/** ackWriter.ts's output so far: its pid, the acknowledged commits (complete lines only: a kill may cut the last), whether it finished. */
export function acked(stdoutFile: string): { pid: number | null; acks: Array<{ seq: number; page: number }>; done: boolean } {
  const text = existsSync(stdoutFile) ? readFileSync(stdoutFile, 'utf8') : '';
  const lines = text.split('\n').slice(0, -1);
  const ready = lines.find((l) => l.startsWith('ready '));
  const acks = lines.flatMap((l) => {
    const m = /^acked (\d+) (\d+)$/.exec(l);
    return m ? [{ seq: Number(m[1]), page: Number(m[2]) }] : [];
  });
  return { pid: ready ? Number(ready.split(' ')[1]) : null, acks, done: lines.includes('done') };
}


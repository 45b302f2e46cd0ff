/**
 * The agent under test: a real `bin/recovery-agent.js run` process with a generated config in a
 * trial's directory — one pagestore store with a fast scrub, scheduled snapshots and a WAL
 * archive, and one supervised chaos writer (chaosWriter.ts) with a UDP heartbeat. The harness
 * plays systemd: `start()` again after the agent was killed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../helpers/etcd.js';
import { BIN } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';
import type { AgentExtras } from './faults/types.js';

export const TOKEN = 'chaos-harness-token-0123456789';

export interface AgentPaths {
  dir: string;
  store: string;
  snapshots: string;
  record: string;
  pages: number;
  /** The last `cold` pages get few writes (chaosWriter.ts --cold). */
  cold: number;
  seed: number;
}

export class AgentUnderTest {
  child: ChildProcess | null = null;
  /** Exits of agent processes the harness did not cause (crashes), with how they ended. */
  readonly unexpectedExits: string[] = [];
  private expectExit = false;
  private starts = 0;

  private constructor(
    readonly p: AgentPaths,
    readonly port: number,
    readonly config: string,
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  /**
   * `extras`: what a fault kind needs in the agent's environment and config (faults/types.ts);
   * `appEnv`: environment for the supervised writer only (a fault family's LD_PRELOAD).
   */
  static async create(p: AgentPaths, extras: AgentExtras = {}, appEnv: Readonly<Record<string, string>> = {}): Promise<AgentUnderTest> {
    const [port, hb] = [await freePort(), await freePort()];
    const writer = path.join(repoRoot(), 'dist', 'test', 'chaos', 'chaosWriter.js');
    const config = {
      agent: { dataDir: path.join(p.dir, 'agent'), workers: 1, logFormat: 'json', logLevel: 'info', http: { listen: `127.0.0.1:${port}`, token: TOKEN } },
      stores: [{ id: 's', engine: 'pagestore', path: p.store, scrub: { rate: '64MiB/s', interval: '1s', walInterval: '500ms' }, snapshots: { dir: p.snapshots, every: '1s', fullEvery: 3, keep: { full: 2, incremental: 4 }, verifyEvery: '500ms' } }],
      processes: [{
        id: 'app', command: process.execPath, store: 's',
        args: [writer, '--store', p.store, '--archive', p.snapshots, '--record', p.record, '--seed', String(p.seed), '--pages', String(p.pages), '--cold', String(p.cold)],
        env: appEnv,
        heartbeat: { udp: `127.0.0.1:${hb}`, timeout: '3s' },
        restart: { policy: 'on-failure', backoff: { initial: '50ms', max: '1s', resetAfter: '5s' }, limit: { burst: 20, within: '60s' } },
        ...extras.process,
      }],
      ...(extras.health ? { health: extras.health } : {}),
    };
    const file = path.join(p.dir, 'agent.yaml');
    writeFileSync(file, JSON.stringify(config, null, 2)); // JSON is YAML
    return new AgentUnderTest(p, port, file, extras.env ?? {});
  }

  get pid(): number | null {
    const c = this.child;
    return c && c.exitCode === null && c.signalCode === null ? c.pid! : null;
  }

  start(): void {
    const log = openSync(path.join(this.p.dir, `agent-${++this.starts}.log`), 'w');
    const child = spawn(process.execPath, [BIN, 'run', '--config', this.config], { cwd: this.p.dir, env: { ...process.env, ...this.env }, stdio: ['ignore', log, log] });
    closeSync(log);
    this.expectExit = false;
    child.once('exit', (code, signal) => {
      if (!this.expectExit) this.unexpectedExits.push(`agent pid ${child.pid} ended with ${signal ?? `exit code ${code}`}`);
    });
    this.child = child;
  }

  /** Marks the running agent's coming end as caused by the harness (a SIGKILL fault, a stop). */
  expectEnd(): void {
    this.expectExit = true;
  }

  /** Waits until the current agent process has exited. */
  async exited(ms: number): Promise<boolean> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return true;
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      c.once('exit', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /** SIGTERM (the agent stops its application first), SIGKILL after `ms`. False if it had to be killed. */
  async stop(ms = 20_000): Promise<boolean> {
    const c = this.child;
    if (!c || this.pid === null) return true;
    this.expectEnd();
    c.kill('SIGCONT');
    c.kill('SIGTERM');
    if (await this.exited(ms)) return true;
    c.kill('SIGKILL');
    await this.exited(5000);
    return false;
  }

  async get<T>(route: string): Promise<{ status: number; body: T } | null> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.port}${route}`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(1000) });
      const text = await res.text();
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      return null;
    }
  }
}

/**
 * A cluster under faults, shared by `faults.test.ts` and `bench/failover.ts` (#15 item 5): a
 * real etcd of 1 or 3 members, three agents (`recovery-agent run`, separate processes) with
 * member stores in sync mode (`syncReplicas: 1`) and the same `processes` entry — the writer
 * `faultWriter.ts`, which records every acknowledged commit with its epoch and a monotonic stamp
 * — and a TCP fault proxy (`faultProxy.ts`) on every link a fault cuts:
 *
 * - each agent reaches each etcd member through its own proxy (`cluster.etcd` lists them), so
 *   one agent can be cut off from etcd while the others are not;
 * - each member advertises its replication address through a proxy (`replication.advertise`);
 *   the replicas stream from the leader's advertised address, so cutting the primary's proxy
 *   cuts the primary off from its replicas.
 *
 * Host death is SIGKILL of an agent and its writer together; SIGSTOP/SIGCONT of both freezes a
 * host. Nothing here is specific to one fault; the checker is `failoverChecker.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterDoc } from '../../../plugins/cluster/routes.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { BIN } from '../../helpers/cli.js';
import { freePort } from '../../helpers/etcd.js';
import { repoRoot } from '../../helpers/paths.js';
import { copyStoreDir } from '../../helpers/store.js';
import { needTool } from '../../helpers/tools.js';
import { check, RecordTail, type CheckResult, type Run } from './failoverChecker.js';
import { startProxy, type FaultProxy } from './faultProxy.js';

export const TTL_MS = 2000;
const PAGES = 32;
const writerJs = path.join(repoRoot(), 'dist', 'test', 'plugins', 'cluster', 'faultWriter.js');

export const now = (): bigint => process.hrtime.bigint();

export async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined> | T | undefined, explain?: () => Promise<string>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${explain ? `\n${await explain()}` : ''}`);
    await sleep(50);
  }
}

function alive(pid: number | null | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function signal(pid: number | null | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

// ---- etcd: 1 or 3 members on loopback --------------------------------------------------------

export interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly url: string;
  process: ChildProcess | null;
}

export class Etcd {
  private constructor(
    readonly dir: string,
    readonly members: EtcdMember[],
    private readonly initialCluster: string,
    private readonly peers: Map<string, number>,
  ) {}

  static async start(size: 1 | 3): Promise<Etcd> {
    needTool('etcd', 'etcd-server');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ra-etcd-'));
    const members: EtcdMember[] = [];
    const peers = new Map<string, number>();
    for (let i = 0; i < size; i++) {
      const clientPort = await freePort();
      const name = `e${i}`;
      peers.set(name, await freePort());
      members.push({ name, clientPort, url: `http://127.0.0.1:${clientPort}`, process: null });
    }
    const initialCluster = [...peers].map(([n, p]) => `${n}=http://127.0.0.1:${p}`).join(',');
    const etcd = new Etcd(dir, members, initialCluster, peers);
    for (const m of members) etcd.spawn(m);
    await Promise.all(members.map((m) => etcd.healthy(m)));
    return etcd;
  }

  private spawn(m: EtcdMember): void {
    const peer = `http://127.0.0.1:${this.peers.get(m.name)}`;
    const log = fs.openSync(path.join(this.dir, `${m.name}.log`), 'a');
    m.process = spawn(
      'etcd',
      [
        '--name', m.name, '--data-dir', path.join(this.dir, m.name),
        '--listen-client-urls', m.url, '--advertise-client-urls', m.url,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
        '--initial-cluster', this.initialCluster, '--initial-cluster-state', 'new', '--initial-cluster-token', path.basename(this.dir),
        // Fast enough for 2 s leases (as test/helpers/etcd.ts).
        '--heartbeat-interval', '100', '--election-timeout', '1000',
        // etcd 3.5's default, off in Debian's 3.4: a member started again after it was killed
        // asks the others before it calls an election, instead of deposing a healthy leader (a
        // bench run saw a 1.3 s etcd outage, and every lease lapse, after such a restart).
        '--pre-vote',
      ],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
  }

  /** Waits until the member answers its /health (a 3-member cluster: once it has a leader). */
  async healthy(m: EtcdMember, ms = 20_000): Promise<void> {
    await waitFor(`etcd ${m.name} healthy`, ms, async () => {
      if (m.process?.exitCode !== null) throw new Error(`etcd ${m.name} exited: ${fs.readFileSync(path.join(this.dir, `${m.name}.log`), 'utf8').slice(-1500)}`);
      try {
        const res = await fetch(`${m.url}/health`, { signal: AbortSignal.timeout(1000) });
        return res.ok && ((await res.json()) as { health?: string }).health === 'true' ? true : undefined;
      } catch {
        return undefined;
      }
    });
  }

  /** The member etcd's raft elected leader, by its own status (grpc-gateway `/v3/maintenance/status`). */
  async leader(): Promise<EtcdMember> {
    return waitFor('an etcd leader', 10_000, async () => {
      for (const m of this.members) {
        if (!m.process || m.process.exitCode !== null) continue;
        try {
          const res = await fetch(`${m.url}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
          const s = (await res.json()) as { header?: { member_id?: string }; leader?: string };
          if (s.leader && s.leader === s.header?.member_id) return m;
        } catch {
          // down or no leader yet
        }
      }
      return undefined;
    });
  }

  async kill(m: EtcdMember): Promise<void> {
    const p = m.process;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exit = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await exit;
  }

  /** Starts a killed member again on its data dir (it rejoins the raft group). */
  async restart(m: EtcdMember): Promise<void> {
    this.spawn(m);
    await this.healthy(m);
  }

  /** Starts every member that is down again. */
  async restartDead(): Promise<void> {
    for (const m of this.members) if (!m.process || m.process.exitCode !== null || m.process.signalCode !== null) await this.restart(m);
  }

  async close(): Promise<void> {
    for (const m of this.members) await this.kill(m);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---- agents ----------------------------------------------------------------------------------

export class Node {
  child: ChildProcess | null = null;
  readonly base: string;
  readonly store: string;
  /** The writer's record file (every run of this node's writer appends to it). */
  readonly record: string;
  log = '';

  constructor(
    readonly name: string,
    readonly dir: string,
    readonly http: number,
    readonly repl: number,
    /** Inbound replication: what this member advertises. */
    readonly replProxy: FaultProxy,
    /** This agent to each etcd member. */
    readonly etcdProxies: FaultProxy[],
  ) {
    this.base = `http://127.0.0.1:${http}`;
    this.store = path.join(dir, name);
    this.record = path.join(dir, `${name}.rec`);
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The pid of this node's writer now running, if any (the last run in its record file, alive). */
  writerPid(): number | null {
    const m = [...fs.readFileSync(this.record, 'utf8').matchAll(/^run (\d+) /gm)].pop();
    const pid = m ? Number(m[1]) : null;
    return alive(pid) ? pid : null;
  }

  start(): void {
    const file = path.join(this.dir, `${this.name}.yaml`);
    const config = {
      agent: { dataDir: path.join(this.dir, `${this.name}-data`), workers: 1, http: { listen: `127.0.0.1:${this.http}` } },
      cluster: { name: 'faults', member: this.name, etcd: this.etcdProxies.map((p) => `http://${p.address}`), ttl: `${TTL_MS}ms`, renewMargin: '500ms', pollInterval: '200ms' },
      stores: [{ id: 's', path: this.store, replication: { role: 'member', listen: `127.0.0.1:${this.repl}`, advertise: this.replProxy.address, secretFile: path.join(this.dir, 'repl.secret'), mode: 'sync', syncReplicas: 1, syncTimeoutMs: '60s' } }],
      processes: [{
        id: 'app', command: process.execPath, args: [writerJs, '--store', this.store, '--record', this.record, '--node', this.name, '--control', '--concurrency', '4'], store: 's',
        // An application crash with the agent alive is restarted in place (the bench's first kind).
        // The benchmark crashes each writer on purpose, often more than the default 5 times a
        // minute: that limit (a crash loop: escalate) is not what it measures.
        restart: { policy: 'on-failure', backoff: { initial: '50ms', max: '1s', resetAfter: '2s' }, limit: { burst: 50, within: '60s' } },
      }],
    };
    fs.writeFileSync(file, JSON.stringify(config)); // JSON is YAML
    this.log = path.join(this.dir, `${this.name}-${Date.now()}.log`);
    const out = fs.openSync(this.log, 'w');
    this.child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: this.dir, stdio: ['ignore', out, out] });
    fs.closeSync(out);
  }

  /** Host death: the agent and its writer SIGKILLed together; waits until both are gone. */
  async kill(): Promise<void> {
    const writer = this.writerPid();
    const child = this.child;
    if (child && this.running) {
      const exit = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      signal(writer, 'SIGKILL');
      await exit;
    } else signal(writer, 'SIGKILL');
    await waitFor(`${this.name}'s writer gone`, 5000, () => (alive(writer) ? undefined : true));
  }

  /** Freezes the host (agent and writer); returns the writer frozen, for `thaw`. */
  freeze(): number | null {
    const writer = this.writerPid();
    signal(this.child?.pid, 'SIGSTOP');
    signal(writer, 'SIGSTOP');
    return writer;
  }

  thaw(writer: number | null): void {
    signal(writer, 'SIGCONT');
    signal(this.child?.pid, 'SIGCONT');
  }

  async get(p: string): Promise<{ status: number; body: unknown; text: string } | null> {
    try {
      const res = await fetch(`${this.base}${p}`, { signal: AbortSignal.timeout(1000) });
      const text = await res.text();
      let body: unknown = null;
      try {
        body = JSON.parse(text);
      } catch {
        // /metrics is text
      }
      return { status: res.status, body, text };
    } catch {
      return null;
    }
  }

  async cluster(): Promise<ClusterDoc | null> {
    return ((await this.get('/cluster'))?.body as ClusterDoc | undefined) ?? null;
  }
}

export class Cluster {
  private readonly tail = new RecordTail();

  private constructor(
    readonly dir: string,
    readonly etcd: Etcd,
    readonly nodes: Node[],
  ) {}

  static async start(opts: { etcdMembers: 1 | 3 }): Promise<Cluster> {
    const etcd = await Etcd.start(opts.etcdMembers);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ra-faults-'));
    await (await PageStore.open(path.join(dir, 'a'), { create: true, pageCount: PAGES, controlSocket: false })).close();
    copyStoreDir(path.join(dir, 'a'), path.join(dir, 'b'));
    copyStoreDir(path.join(dir, 'a'), path.join(dir, 'c'));
    fs.writeFileSync(path.join(dir, 'repl.secret'), 'fault-test-secret-bytes\n', { mode: 0o600 });
    const nodes: Node[] = [];
    for (const name of ['a', 'b', 'c']) {
      const [http, repl] = [await freePort(), await freePort()];
      const replProxy = await startProxy({ host: '127.0.0.1', port: repl });
      const etcdProxies = await Promise.all(etcd.members.map((m) => startProxy({ host: '127.0.0.1', port: m.clientPort })));
      const n = new Node(name, dir, http, repl, replProxy, etcdProxies);
      fs.writeFileSync(n.record, '');
      nodes.push(n);
    }
    const c = new Cluster(dir, etcd, nodes);
    for (const n of nodes) n.start();
    return c;
  }

  /** The members whose /primary answers 200 (leader, and its store serves the epoch). */
  async primaries(among: readonly Node[] = this.nodes): Promise<Node[]> {
    const answers = await Promise.all(among.map(async (n) => ((await n.get('/primary'))?.status === 200 ? n : null)));
    return answers.filter((n): n is Node => n !== null);
  }

  /** Exactly one primary among `among` (other than `not`), with an epoch above `after`. */
  async newPrimary(what: string, ms: number, opts: { among?: readonly Node[]; after?: number } = {}): Promise<{ node: Node; epoch: number }> {
    return waitFor(what, ms, async () => {
      const p = await this.primaries(opts.among ?? this.nodes.filter((n) => n.running));
      if (p.length !== 1) return undefined;
      const epoch = (await p[0]!.cluster())?.leader?.epoch;
      return epoch !== undefined && epoch > (opts.after ?? 0) ? { node: p[0]!, epoch } : undefined;
    }, () => this.explain());
  }

  runs(): Run[] {
    return this.tail.read(this.nodes.map((n) => ({ node: n.name, file: n.record })));
  }

  check(): CheckResult {
    return check(this.runs());
  }

  /** The first commit acknowledged by `node` in `epoch` at or after `since` (ns), if any yet. */
  firstAck(node: Node, epoch: number, since: bigint): bigint | undefined {
    let first: bigint | undefined;
    for (const r of this.runs()) {
      if (r.node !== node.name) continue;
      for (const a of r.acks) if (a.epoch === epoch && a.ns >= since && (first === undefined || a.ns < first)) first = a.ns;
    }
    return first;
  }

  /** Waits until `node` acknowledged `count` commits in `epoch` after `since`; returns the first one's stamp. */
  async acksAfter(node: Node, epoch: number, since: bigint, count: number, ms: number): Promise<bigint> {
    return waitFor(`${count} commits acknowledged by ${node.name} in epoch ${epoch}`, ms, () => {
      const stamps = this.runs().filter((r) => r.node === node.name).flatMap((r) => r.acks).filter((a) => a.epoch === epoch && a.ns >= since).map((a) => a.ns);
      if (stamps.length < count) return undefined;
      return stamps.reduce((x, y) => (y < x ? y : x));
    }, () => this.explain());
  }

  /**
   * One primary (epoch above `after`) that acknowledges `count` commits in its epoch after it was
   * seen (or after `since`, when given and later): if another member is elected meanwhile, that
   * one is awaited instead, and `onElection` told. Between faults, and after one whose answer may
   * take several elections (an etcd leader killed under load), the cluster is free to elect
   * again: a wait for one named primary's commits then timed out although the cluster was
   * committing (seed 9's primary-cut-etcd trial 40).
   */
  async steadyPrimary(count: number, ms: number, opts: { after?: number; since?: bigint; onElection?: (line: string) => void } = {}): Promise<{ node: Node; epoch: number }> {
    const deadline = Date.now() + ms;
    const left = (): number => Math.max(1, deadline - Date.now());
    for (;;) {
      const { node, epoch } = await this.newPrimary('one primary', left(), { after: opts.after ?? 0 });
      const seen = now();
      const since = opts.since !== undefined && opts.since > seen ? opts.since : seen;
      const acked = (): number => this.runs().filter((r) => r.node === node.name).reduce((k, r) => k + r.acks.filter((a) => a.epoch === epoch && a.ns >= since).length, 0);
      const later = await waitFor(`${count} commits acknowledged by ${node.name} in epoch ${epoch} (or a later election)`, left(), async () => {
        if (acked() >= count) return { leader: null };
        const leader = (await node.cluster())?.leader;
        return leader && leader.epoch > epoch ? { leader } : undefined;
      }, () => this.explain());
      if (later.leader === null) return { node, epoch };
      opts.onElection?.(`${later.leader.member} elected at epoch ${later.leader.epoch} while ${node.name}'s commits in epoch ${epoch} were awaited`);
    }
  }

  /** Waits until `node` is a streaming replica again (its /readiness 200, /primary 503). */
  async replicaAgain(node: Node, ms: number): Promise<void> {
    await waitFor(`${node.name} a streaming replica`, ms, async () => ((await node.get('/readiness'))?.status === 200 && (await node.get('/primary'))?.status === 503 ? true : undefined), () => this.explain());
  }

  /** Every running node's view and the tail of its log, for a failure's message. */
  async explain(): Promise<string> {
    const parts = await Promise.all(
      this.nodes.map(async (n) => {
        const doc = await n.cluster();
        const tail = n.log && fs.existsSync(n.log) ? fs.readFileSync(n.log, 'utf8').split('\n').slice(-10).join('\n') : '';
        return `${n.name} (${n.running ? 'running' : 'down'}): leader=${JSON.stringify(doc?.leader)} roles=${JSON.stringify(doc?.self.roles)} eligible=${doc?.self.reason}\n${tail}`;
      }),
    );
    return parts.join('\n---\n');
  }

  async close(keep = false): Promise<void> {
    for (const n of this.nodes) {
      const writer = fs.existsSync(n.record) ? n.writerPid() : null;
      signal(writer, 'SIGCONT');
      signal(n.child?.pid, 'SIGCONT');
      if (n.running) n.child!.kill('SIGKILL');
      signal(writer, 'SIGKILL');
      n.replProxy.close().catch(() => undefined);
      for (const p of n.etcdProxies) p.close().catch(() => undefined);
    }
    await this.etcd.close();
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Three agents as separate processes (`recovery-agent run`, each with its own `cluster:` section)
 * and one real etcd: one leader; the leader SIGSTOPped for 2×ttl loses to another member with a
 * larger epoch; and the fencing guarantee, by the host's CLOCK_MONOTONIC stamps each agent
 * reports in `GET /cluster`: the old leader's lease deadline had passed before the new leader's
 * election was known. `recovery-agent cluster status` prints the table.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterDoc } from '../../../plugins/cluster/routes.js';
import { BIN, cli } from '../../helpers/cli.js';
import { freePort, startEtcd, type EtcdServer } from '../../helpers/etcd.js';

const TTL = 2000;

interface Agent {
  name: string;
  child: ChildProcess;
  base: string;
  log: string;
}

async function startAgent(dir: string, name: string, etcd: string): Promise<Agent> {
  const port = await freePort();
  const file = path.join(dir, `${name}.yaml`);
  fs.writeFileSync(file, `agent: { dataDir: ./${name}-data, workers: 1, http: { listen: 127.0.0.1:${port} } }\ncluster: { name: three, member: ${name}, etcd: [${etcd}], ttl: 2s, renewMargin: 500ms, pollInterval: 200ms }\n`);
  const log = path.join(dir, `${name}.log`);
  const child = spawn(process.execPath, [BIN, 'run', '--config', file], { cwd: dir, stdio: ['ignore', fs.openSync(log, 'w'), fs.openSync(log, 'a')] });
  return { name, child, base: `http://127.0.0.1:${port}`, log };
}

async function get(a: Agent, p: string): Promise<{ status: number; body: unknown } | null> {
  try {
    const res = await fetch(`${a.base}${p}`, { signal: AbortSignal.timeout(1000) });
    return { status: res.status, body: await res.json() };
  } catch {
    return null; // not up yet, or stopped
  }
}

async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** The agents whose /primary answers 200 now. */
async function primaries(agents: Agent[]): Promise<Agent[]> {
  const answers = await Promise.all(agents.map(async (a) => ((await get(a, '/primary'))?.status === 200 ? a : null)));
  return answers.filter((a): a is Agent => a !== null);
}

describe('cluster: three agent processes and a real etcd', () => {
  let etcd: EtcdServer;
  let dir: string;
  const agents: Agent[] = [];
  before(async () => {
    etcd = await startEtcd();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ra-cluster-'));
    for (const n of ['a', 'b', 'c']) agents.push(await startAgent(dir, n, etcd.url));
  });
  after(async () => {
    for (const a of agents) {
      if (a.child.exitCode === null && a.child.signalCode === null) {
        a.child.kill('SIGCONT');
        a.child.kill('SIGKILL');
      }
    }
    await etcd?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('one leader; SIGSTOP of it for 2×ttl: another leads with a larger epoch, elected after the old deadline', async () => {
    const [first] = await waitFor('one primary', 30_000, async () => {
      const p = await primaries(agents);
      return p.length === 1 ? p : undefined;
    });
    const doc1 = (await get(first!, '/cluster'))!.body as ClusterDoc;
    const epoch1 = doc1.leader!.epoch;
    assert.equal(doc1.leader!.member, first!.name);
    // Every member sees all three, with one leader among them.
    await waitFor('every member to list three', 10_000, async () => {
      const docs = await Promise.all(agents.map(async (a) => (await get(a, '/cluster'))?.body as ClusterDoc | undefined));
      return docs.every((d) => d?.members.length === 3 && d.leader?.member === first!.name) ? true : undefined;
    });
    const table = cli(['cluster', 'status', '--url', agents[0]!.base]);
    assert.equal(table.status, 0, table.stderr);
    assert.match(table.stdout, new RegExp(`leader ${first!.name}, epoch ${epoch1}`));
    assert.equal(table.stdout.split('\n').filter((l) => /\| Leader /.test(l)).length, 1, table.stdout);
    const json = cli(['cluster', 'status', '--json', '--url', agents[1]!.base]);
    assert.equal((JSON.parse(json.stdout) as ClusterDoc).leader?.member, first!.name);

    first!.child.kill('SIGSTOP');
    const stoppedAt = Date.now();
    const others = agents.filter((a) => a !== first);
    const [second] = await waitFor('a new primary', 4 * TTL, async () => {
      const p = await primaries(others);
      return p.length === 1 ? p : undefined;
    });
    const doc2 = (await get(second!, '/cluster'))!.body as ClusterDoc;
    assert.ok(doc2.leader!.epoch > epoch1, `epoch ${doc2.leader!.epoch} after ${epoch1}`);
    const won = doc2.self.leadership.find((e) => e.leader && e.epoch === doc2.leader!.epoch)!;
    // Keep it stopped for 2×ttl in all, then let it run: it must step down, not come back as a leader.
    await sleep(Math.max(0, 2 * TTL - (Date.now() - stoppedAt)));
    first!.child.kill('SIGCONT');
    const stepped = await waitFor('the old leader to record its step-down', 10_000, async () => {
      const d = (await get(first!, '/cluster'))?.body as ClusterDoc | undefined;
      return d?.self.leadership.find((e) => !e.leader && e.epoch === epoch1);
    });
    assert.ok(stepped.deadline !== null);
    // The fencing guarantee: both stamps are CLOCK_MONOTONIC of this host, in ns.
    assert.ok(BigInt(stepped.deadline) < BigInt(won.at), `old deadline ${stepped.deadline} must precede the election at ${won.at}`);
    // And afterwards exactly one primary: the new one.
    await sleep(500);
    assert.deepEqual((await primaries(agents)).map((a) => a.name), [second!.name]);
    // The old leader goes on as a replica once it holds a new lease.
    await waitFor('the old leader to answer /replica 200', 2 * TTL, async () => ((await get(first!, '/replica'))?.status === 200 ? true : undefined));
  });
});

// End to end, two agents as separate processes on loopback: a primary agent supervising the demo
// writer (examples/demo-writer.ts), whose store's owner streams its log (pagestore's sender,
// configured by the agent's replication.json), and a replica agent whose store began as a copy of
// the primary's taken before the writer first ran. Commits flow, both agents show lag, kill -9 of
// the replica agent and a restart resume from its durable position (the bytes it receives after
// the restart are those written meanwhile, not the log from the start), and once the writer has
// stopped cleanly and the replica caught up, every page is equal on both.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { repoRoot } from '../../helpers/paths.js';
import { copyStoreDir } from '../../helpers/store.js';
import { exited, freePort, replicationOf, startAgent, until, type Agent, killAgents } from './agentHarness.js';

const PAGES = 64;

interface ReplicaSide {
  state: string;
  durableLsn: number;
  appliedLsn: number;
  primaryFlushedLsn: number | null;
  lagBytes: number | null;
  lagMs: number | null;
  bytesReceived: number;
}
interface PrimarySide {
  owner: string;
  flushedLsn: number | null;
  replicas: Array<{ id: string; state: string; durableLsn: number; appliedLsn: number; lagBytes: number; lagMs: number }>;
}

describe('replication between two agents, end to end', () => {
  const agents: Agent[] = [];
  after(() => {
    killAgents(agents);
  });

  it('streams commits, shows lag on both, resumes after kill -9 without a re-copy, ends page-equal', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ra-repl2-'));
    const primaryDir = path.join(root, 'primary');
    const replicaDir = path.join(root, 'replica');
    // The replica's base: the primary store, created and closed cleanly, copied before the writer runs.
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, controlSocket: false })).close();
    copyStoreDir(primaryDir, replicaDir);
    const basePages = readFileSync(path.join(replicaDir, 'pages.db'));
    writeFileSync(path.join(root, 'repl.secret'), 'two-agents-on-one-machine-secret\n', { mode: 0o600 });
    const port = await freePort();
    const writerJs = path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js');

    const primary = startAgent(
      root,
      'primary',
      `stores:
  - id: p
    path: ./primary
    replication: { role: primary, listen: 127.0.0.1:${port}, secretFile: ./repl.secret }
processes:
  - id: writer
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(writerJs)}, --store, ./primary, --rate, '200', --pages, '${PAGES}']
    store: p
    restart: { policy: on-failure, backoff: { initial: 50ms, max: 1s } }
`,
    );
    agents.push(primary);
    const pBase = await primary.base;
    assert.equal(statSync(path.join(primaryDir, 'replication.json')).mode & 0o777, 0o600, 'replication.json is private');
    assert.doesNotMatch(readFileSync(primary.log, 'utf8'), /two-agents-on-one-machine-secret/, 'the secret is never logged');

    const replicaYaml = `stores:
  - id: r
    path: ./replica
    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./repl.secret, id: r1 }
`;
    let replica = startAgent(root, 'replica', replicaYaml);
    agents.push(replica);
    let rBase = await replica.base;

    // Commits flow; both sides report lag.
    const flowing = await until('commits applied on the replica', async () => {
      const s = await replicationOf<ReplicaSide>(rBase, 'r');
      return s.state === 'streaming' && s.appliedLsn > 64 * 1024 && s.lagBytes !== null ? s : undefined;
    });
    assert.equal(typeof flowing.lagMs, 'number');
    const pSide = await until('the primary agent to see the replica', async () => {
      const s = await replicationOf<PrimarySide>(pBase, 'p');
      return s.owner === 'up' && s.replicas.some((x) => x.id === 'r1' && x.appliedLsn > 0) ? s : undefined;
    });
    const r1 = pSide.replicas.find((x) => x.id === 'r1')!;
    assert.equal(typeof r1.lagBytes, 'number');
    assert.equal(typeof r1.lagMs, 'number');
    const metrics = await (await fetch(`${pBase}/metrics`)).text();
    assert.match(metrics, /recovery_agent_replication_lag_bytes\{store="p",replica="r1"\} \d+/);
    assert.match(metrics, /recovery_agent_replication_lag_seconds\{store="p",replica="r1"\} [\d.e-]+/);

    // kill -9 of the replica agent while the writer goes on; a restart resumes from its durable end.
    replica.child.kill('SIGKILL');
    await exited(replica.child);
    await new Promise((r) => setTimeout(r, 1500));
    replica = startAgent(root, 'replica', replicaYaml);
    agents.push(replica);
    rBase = await replica.base;
    // Where it reopened (redo only): the durable end it says hello from.
    const opened = readFileSync(replica.log, 'utf8').split('\n').find((l) => l.includes('"replica store open"'));
    const resumedAt = (JSON.parse(opened!) as { durableLsn: number }).durableLsn;
    assert.ok(resumedAt >= flowing.durableLsn, 'the restarted replica kept what was durable');
    const again = await until('the restarted replica streaming', async () => {
      const s = await replicationOf<ReplicaSide>(rBase, 'r');
      return s.state === 'streaming' && s.primaryFlushedLsn !== null && s.bytesReceived > 0 ? s : undefined;
    });
    // What it received is what was written since its durable end: at most the log between them.
    assert.ok(again.bytesReceived <= again.durableLsn - resumedAt, `received ${again.bytesReceived} bytes for [${resumedAt}, ${again.durableLsn})`);
    assert.ok(again.bytesReceived < again.durableLsn - 64, 'not the log again from the start');

    // The writer stops cleanly (the agent's SIGTERM); the replica catches up with the log's end.
    primary.child.kill('SIGTERM');
    assert.equal(await exited(primary.child), 0);
    const caught = await until('the replica to apply everything it has', async () => {
      const s = await replicationOf<ReplicaSide>(rBase, 'r');
      return s.appliedLsn === s.durableLsn && s.state !== 'streaming' ? s : undefined;
    });
    replica.child.kill('SIGTERM');
    assert.equal(await exited(replica.child), 0);

    const mine = readFileSync(path.join(replicaDir, 'pages.db'));
    const theirs = readFileSync(path.join(primaryDir, 'pages.db'));
    assert.equal(mine.byteLength, theirs.byteLength);
    const pageSize = theirs.byteLength / PAGES;
    assert.ok(!mine.equals(basePages), 'the writer changed pages, and the replica has the changes');
    for (let id = 0; id < PAGES; id++) {
      assert.ok(mine.subarray(id * pageSize, (id + 1) * pageSize).equals(theirs.subarray(id * pageSize, (id + 1) * pageSize)), `page ${id} differs (replica applied to ${caught.appliedLsn})`);
    }
  });
});

// End to end, three nodes as separate processes on one machine (#14 "Tests"): a primary agent
// supervising ackWriter.ts with a mixed workload (commits and aborts, changes of several sizes)
// and two replica agents streaming from its owner. Once the writer has finished and closed the
// store and both replicas have applied everything they have, every page of the data file is
// byte-equal on all three.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { repoRoot } from '../../helpers/paths.js';
import { copyStoreDir } from '../../helpers/store.js';
import { acked, exited, freePort, replicationOf, startAgent, until, type Agent, killAgents } from './agentHarness.js';

const PAGES = 128;
const TRANSACTIONS = 3000;

interface ReplicaSide {
  state: string;
  durableLsn: number;
  appliedLsn: number;
  bytesReceived: number;
}

describe('replication to two replicas, three processes', () => {
  const agents: Agent[] = [];
  after(() => {
    killAgents(agents);
  });

  it('ends with every committed page equal on the primary and both replicas', async () => {
    const root = path.join(os.tmpdir(), `ra-repl3-${process.pid}-${Date.now()}`);
    mkdirSync(root);
    const primaryDir = path.join(root, 'primary');
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, controlSocket: false })).close();
    const base = readFileSync(path.join(primaryDir, 'pages.db'));
    for (const r of ['r1', 'r2']) copyStoreDir(primaryDir, path.join(root, r));
    writeFileSync(path.join(root, 'repl.secret'), 'three-nodes-on-one-machine-secret\n', { mode: 0o600 });
    const port = await freePort();
    const writerJs = path.join(repoRoot(), 'dist', 'test', 'plugins', 'replication', 'ackWriter.js');

    const replicas = ['r1', 'r2'].map((id) => {
      const a = startAgent(
        root,
        id,
        `stores:
  - id: r
    path: ./${id}
    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./repl.secret, id: ${id} }
`,
      );
      agents.push(a);
      return a;
    });
    const bases = await Promise.all(replicas.map((a) => a.base));
    // Sync with two replicas: the writer only gets going once both are streaming.
    const primary = startAgent(
      root,
      'primary',
      `stores:
  - id: p
    path: ./primary
    replication: { role: primary, listen: 127.0.0.1:${port}, secretFile: ./repl.secret, mode: sync, syncReplicas: 2 }
processes:
  - id: writer
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(writerJs)}, --store, ./primary, --concurrency, '6', --mixed, --limit, '${TRANSACTIONS}']
    store: p
    restart: { policy: never }
`,
    );
    agents.push(primary);
    await primary.base;

    const out = path.join(root, 'primary-data', 'processes', 'writer.stdout');
    const done = await until('the writer to finish', () => (acked(out).done ? acked(out) : undefined), 120_000);
    assert.ok(done.acks.length >= TRANSACTIONS * 0.75, `${done.acks.length} commits`);
    for (const [i, rb] of bases.entries()) {
      await until(`replica r${i + 1} to apply everything`, async () => {
        const s = await replicationOf<ReplicaSide>(rb, 'r');
        return s.state !== 'streaming' && s.appliedLsn === s.durableLsn && s.bytesReceived > 0 ? s : undefined;
      });
    }
    for (const a of [...replicas, primary]) {
      a.child.kill('SIGTERM');
      assert.equal(await exited(a.child), 0, 'each agent stops cleanly');
    }

    const theirs = readFileSync(path.join(primaryDir, 'pages.db'));
    assert.ok(!theirs.equals(base), 'the writer changed pages');
    const pageSize = theirs.byteLength / PAGES;
    for (const id of ['r1', 'r2']) {
      const mine = readFileSync(path.join(root, id, 'pages.db'));
      assert.equal(mine.byteLength, theirs.byteLength);
      for (let p = 0; p < PAGES; p++) {
        assert.ok(mine.subarray(p * pageSize, (p + 1) * pageSize).equals(theirs.subarray(p * pageSize, (p + 1) * pageSize)), `${id}: page ${p} differs from the primary's`);
      }
    }
  });
});

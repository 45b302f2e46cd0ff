// End to end, sync mode (#14 "Tests": kill -9 of the primary's owner mid-stream, no acknowledged
// commit missing on the replica). Two agents as separate processes on loopback: the primary
// agent supervises ackWriter.ts on a store with `mode: sync` (so the owner acknowledges a commit
// only once the replica has it durable) and the replica agent streams it. The writer prints each
// acknowledged commit; it is SIGKILLed mid-stream. Once the replica has applied everything it
// has, its pages are read through the engine's replica face: every page holds at least the
// highest acknowledged seq written to it.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { PAGE_HEADER_SIZE } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { pagestore } from '../../helpers/engine.js';
import { repoRoot } from '../../helpers/paths.js';
import { copyStoreDir } from '../../helpers/store.js';
import { acked, exited, freePort, replicationOf, startAgent, until, type Agent, killAgents } from './agentHarness.js';

const PAGES = 64;

interface ReplicaSide {
  state: string;
  durableLsn: number;
  appliedLsn: number;
}

describe('sync replication between two agents, kill -9 of the primary\'s writer', () => {
  const agents: Agent[] = [];
  after(() => {
    killAgents(agents);
  });

  it('loses no acknowledged commit on the replica', async () => {
    const root = path.join(os.tmpdir(), `ra-replsync-${process.pid}-${Date.now()}`);
    mkdirSync(root);
    const primaryDir = path.join(root, 'primary');
    const replicaDir = path.join(root, 'replica');
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, controlSocket: false })).close();
    copyStoreDir(primaryDir, replicaDir);
    writeFileSync(path.join(root, 'repl.secret'), 'sync-mode-kill-nine-test-secret\n', { mode: 0o600 });
    const port = await freePort();
    const writerJs = path.join(repoRoot(), 'dist', 'test', 'plugins', 'replication', 'ackWriter.js');

    const primary = startAgent(
      root,
      'primary',
      `stores:
  - id: p
    path: ./primary
    replication: { role: primary, listen: 127.0.0.1:${port}, secretFile: ./repl.secret, mode: sync }
processes:
  - id: writer
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(writerJs)}, --store, ./primary, --concurrency, '4']
    store: p
    restart: { policy: never }
`,
    );
    agents.push(primary);
    await primary.base;
    const replica = startAgent(
      root,
      'replica',
      `stores:
  - id: r
    path: ./replica
    replication: { role: replica, primary: 127.0.0.1:${port}, secretFile: ./repl.secret, id: r1 }
`,
    );
    agents.push(replica);
    const rBase = await replica.base;
    assert.equal(JSON.parse(readFileSync(path.join(primaryDir, 'replication.json'), 'utf8')).mode, 'sync');

    const out = path.join(root, 'primary-data', 'processes', 'writer.stdout');
    const before = await until('the writer acknowledging commits', () => {
      const a = acked(out);
      return a.pid !== null && a.acks.length >= 300 ? a : undefined;
    }, 60_000);
    // kill -9 mid-stream: commits are in flight, some flushed here and not yet acknowledged.
    process.kill(before.pid!, 'SIGKILL');
    const { acks } = acked(out);
    assert.ok(acks.length >= before.acks.length);

    // The owner is gone, so is the stream; the replica applies what it has durable.
    const end = await until('the replica disconnected with everything applied', async () => {
      const s = await replicationOf<ReplicaSide>(rBase, 'r');
      return s.state !== 'streaming' && s.appliedLsn === s.durableLsn && s.durableLsn > 0 ? s : undefined;
    });
    replica.child.kill('SIGTERM');
    assert.equal(await exited(replica.child), 0, 'the replica agent stops cleanly');
    primary.child.kill('SIGKILL');
    await exited(primary.child);
    const last = acked(out).acks;
    assert.deepEqual(last.slice(0, acks.length), acks, 'no line came after the kill');

    // Read through the engine's replica face, every record below the durable end applied.
    const r = await pagestore.replica.openReplica(replicaDir);
    const values = new Map<number, bigint>();
    try {
      assert.equal(r.position().durableLsn, end.durableLsn, 'reopened at the durable end');
      for (let page = 1; page < PAGES; page++) {
        const image = await r.readPage(page, end.durableLsn);
        values.set(page, image.readBigUInt64LE(PAGE_HEADER_SIZE));
      }
    } finally {
      await r.close();
    }
    const highest = new Map<number, number>();
    for (const a of last) highest.set(a.page, Math.max(highest.get(a.page) ?? 0, a.seq));
    assert.equal(highest.size, PAGES - 1, 'every page got acknowledged commits');
    for (const [page, seq] of highest) {
      assert.ok(values.get(page)! >= BigInt(seq), `page ${page}: acknowledged seq ${seq} is missing on the replica (it holds ${values.get(page)})`);
    }
  });
});

// A replica's damaged pages repaired from its primary (#14 item 5, "in both directions"): a
// primary store's owner (PageStore with replication.json: its real sender, real TCP on loopback)
// streams to a replica run by the agent's ReplicaSession while a writer keeps committing. Bytes
// flipped in the replica's data file (page 0, hot pages the writer keeps changing, cold ones) are
// repaired by `ReplicaSession.repairPage` from the primary (`primary:<address>`); once the primary
// closes cleanly and the replica has applied everything, every page of the replica is byte-equal
// to the primary's (the oracle: the primary's own data file).
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { REPAIR_REPLICA_PAGE, replicaRepairAction } from '../../../plugins/replication/replicaHealing.js';
import { pageCorruptionFailure } from '../../../core/contracts/pageCorruption.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import { pagestore } from '../../helpers/engine.js';
import { copyStoreDir, tmpStoreDir } from '../../helpers/store.js';
import { diskPage, xorOnDisk } from '../../helpers/pageFile.js';
import { until } from './agentHarness.js';

const PAGES = 64;
const PAGE = 4096;
const SECRET = 'replica-from-primary-secret-0123456789';
const HOT = 16;

describe('replica pages repaired from the primary', () => {
  const root = path.dirname(tmpStoreDir('ra-replfromprim-'));
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  const log = pino({ level: 'silent' });
  let store: PageStore | undefined;
  let session: ReplicaSession;
  let writing = true;
  let writer: Promise<number> | undefined;
  const writerErrors: string[] = [];

  const write = async (pages: number[], tag: string) => {
    const tx = store!.begin();
    try {
      for (const p of pages) await tx.write(p, 0, Buffer.from(`${tag} page ${p}`));
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => undefined);
      throw err;
    }
  };

  before(async () => {
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 256 * 1024, controlSocket: false })).close();
    copyStoreDir(primaryDir, replicaDir);
    writeFileSync(path.join(primaryDir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50 }), { mode: 0o600 });
    store = await PageStore.open(primaryDir, { checkpointIntervalMs: 0, controlSocket: false });
    const { port } = store.replicationAddress!;
    session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port, secret: SECRET, id: 'r1', log, onRefused: () => undefined });
    await session.start();
    for (let p = 1; p < PAGES; p += 8) await write(Array.from({ length: Math.min(8, PAGES - p) }, (_, k) => p + k), 'v0');
    writer = (async () => {
      let n = 0;
      while (writing) {
        try {
          await write([1 + (n % (HOT - 1)), 1 + ((n * 7) % (HOT - 1))], `w${n}`);
        } catch (err) {
          writerErrors.push(String(err));
        }
        n++;
        if (n % 150 === 0) await store!.checkpoint();
        await new Promise((r) => setTimeout(r, 2));
      }
      return n;
    })();
    await until('the replica streaming', () => (session.status().state === 'streaming' && session.status().appliedLsn > 0 ? true : undefined));
  });
  after(async () => {
    writing = false;
    await writer?.catch(() => undefined);
    await session?.stop();
    await store?.close();
  });

  it('the healing action repair-replica-page takes a page-corruption of a replica store, repairs from the primary and verifies by reading back', async () => {
    const action = replicaRepairAction((id) => (id === 'r' ? session : undefined));
    assert.equal(action.id, REPAIR_REPLICA_PAGE);
    const pages = [2, HOT + 4];
    const failure = { ...pageCorruptionFailure({ storeId: 'r', path: replicaDir, pages: pages.map((pageId) => ({ pageId, reason: 'checksum' })), foundBy: 'scrub' }), id: 'f-1', source: 'test', at: Date.now() } as unknown as Failure;
    const other = { ...failure, evidence: { ...failure.evidence, storeId: 'elsewhere' } } as Failure;
    assert.equal(await action.canHandle(failure), true);
    assert.equal(await action.canHandle(other), false, 'a store that is not a replica here is the data repairer\'s');
    for (const p of pages) flipBytes(replicaDir, p, 100);
    const ctx = { signal: new AbortController().signal, log, options: {} };
    assert.equal(await action.verify(failure, ctx), false, 'verify sees the damage itself');
    const out = await action.apply(failure, ctx);
    assert.match(String(out?.summary), /2 page\(s\) of replica store r repaired from primary:127\.0\.0\.1:/);
    assert.equal(await action.verify(failure, ctx), true);
    for (const p of pages) assert.equal(verifyPage(diskPage(replicaDir, p), p), null);
  });

  it('repairs flipped bytes in page 0 and in data pages of the replica from the primary, while the writer runs; page-equal after catch-up', async () => {
    const source = `primary:127.0.0.1:${store!.replicationAddress!.port}`;
    const targets = [0, 1, 5, HOT + 2, HOT + 9, PAGES - 1, 3];
    for (const [i, p] of targets.entries()) {
      await new Promise((r) => setTimeout(r, 30));
      flipBytes(replicaDir, p, 40 + ((i * 997) % (PAGE - 80)));
      assert.ok(verifyPage(diskPage(replicaDir, p), p) !== null, `page ${p} is damaged on the replica`);
      const r = await session.repairPage(p);
      assert.equal(r.source, source);
      assert.equal(verifyPage(diskPage(replicaDir, p), p), null, `page ${p} verifies after the repair`);
    }
    assert.ok(session.status().state === 'streaming', 'the stream went on');

    writing = false;
    const commits = await writer!;
    assert.ok(commits > 0);
    assert.deepEqual(writerErrors, []);
    const flushed = store!.status().flushedLsn;
    await until('the replica caught up', () => (session.status().durableLsn >= flushed && session.status().appliedLsn >= flushed ? true : undefined));
    await store!.close();
    store = undefined;
    await until('the replica applied the close', () => (session.status().state !== 'streaming' && session.status().appliedLsn === session.status().durableLsn ? true : undefined));
    await session.stop();
    const mine = readFileSync(path.join(replicaDir, 'pages.db'));
    const theirs = readFileSync(path.join(primaryDir, 'pages.db'));
    assert.equal(mine.byteLength, theirs.byteLength);
    for (let p = 0; p < PAGES; p++) assert.ok(mine.subarray(p * PAGE, (p + 1) * PAGE).equals(theirs.subarray(p * PAGE, (p + 1) * PAGE)), `page ${p} byte-equal to the primary's`);
  });
});

function flipBytes(dir: string, id: number, at: number): void {
  xorOnDisk(dir, id, at, [0xa5, 0xa5, 0xa5, 0xa5]);
}

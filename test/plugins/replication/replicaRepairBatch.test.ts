// A burst of corrupt pages of a replication primary repaired as a batch (data-repairer batch.ts):
// the primary's real owner (PageStore with replication.json, its sender over loopback TCP) and a
// replica run by the agent's ReplicaSession. Many pages, bits flipped on disk, come back from the
// replica through the batch requests (page-states, replica-pages, write-pages) byte for byte as
// they were; their images together are longer than the control socket's 1 MiB line, so the
// install must be split to be served at all. A stale copy inside a batch — from a test replica
// speaking the protocol — is refused by the owner alone, and the other pages are installed; an
// image the owner finds stale at install time is refused alone as well.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import type { PageSource } from '../../../core/contracts/PageSource.js';
import { FrameType, ackFrame, connectChannel, helloFrame, pageFrame, parsePageRequest, type ReplicationChannel } from '../../../core/replication/protocol.js';
import { repairPages } from '../../../plugins/data-repairer/batch.js';
import { OwnerConnections } from '../../../plugins/data-repairer/owners.js';
import { orderSources } from '../../../plugins/data-repairer/repair.js';
import { ControlClient, writePagesBatches } from '../../../plugins/pagestore/controlClient.js';
import { MAX_LINE } from '../../../plugins/pagestore/controlSocket.js';
import { pageLsn } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { replicaPageSource } from '../../../plugins/replication/pageSource.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { pagestore } from '../../helpers/engine.js';
import { copyStoreDir, tmpStoreDir } from '../../helpers/store.js';
import { diskPage, xorOnDisk } from '../../helpers/pageFile.js';
import { until } from './agentHarness.js';

const PAGES = 320;
const PAGE = 4096;
const SECRET = 'replica-repair-batch-secret-0123456789';

describe('a burst of corrupt pages repaired from a replica as a batch', () => {
  const root = path.dirname(tmpStoreDir('ra-replbatch-'));
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  const owners = new OwnerConnections();
  let store: PageStore;
  let session: ReplicaSession;

  const write = async (pages: number[], tag: string) => {
    const tx = store.begin();
    for (const p of pages) await tx.write(p, 0, Buffer.from(`${tag} page ${p}`));
    await tx.commit();
  };
  /** Pages not in the owner's memory (cacheBytes 0 keeps 16 frames): only those are repaired from a source. */
  const cold = async (from: number, n: number) => {
    await store.checkpoint();
    const out: number[] = [];
    for (let p = from; out.length < n && p < PAGES; p++) if (!(await store.readPage(p)).cached) out.push(p);
    assert.equal(out.length, n);
    return out;
  };

  /** Checkpoints, then reads pages 300.. until `p` has left the owner's memory. */
  const evict = async (p: number) => {
    await store.checkpoint();
    for (let q = 300; (await store.readPage(p)).cached; q = q + 1 < PAGES ? q + 1 : 300) {
      const tx = store.begin();
      await tx.read(q);
      await tx.commit();
    }
  };

  before(async () => {
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 256 * 1024, controlSocket: false })).close();
    copyStoreDir(primaryDir, replicaDir);
    writeFileSync(path.join(primaryDir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50 }), { mode: 0o600 });
    store = await PageStore.open(primaryDir, { checkpointIntervalMs: 0, cacheBytes: 0 });
    session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port: store.replicationAddress!.port, secret: SECRET, id: 'r1', log: pino({ level: 'silent' }), onRefused: () => undefined });
    await session.start();
    for (let p = 1; p < PAGES; p += 16) await write(Array.from({ length: Math.min(16, PAGES - p) }, (_, k) => p + k), 'v0');
    await store.checkpoint();
    const flushed = store.status().flushedLsn;
    await until('the replica applied everything', () => (session.status().state === 'streaming' && session.status().appliedLsn >= flushed ? true : undefined));
  });
  after(async () => {
    owners.closeAll();
    await session?.stop();
    await store?.close();
  });

  it('repairs 240 corrupt pages in one batch from the replica, byte-equal, the install split to fit the line limit', async () => {
    const pages = await cold(1, 240);
    const good = new Map(pages.map((p) => [p, diskPage(primaryDir, p)]));
    // The install's images in one line would not be served: the client must cut them.
    const line = JSON.stringify({ op: 'write-pages', pages: pages.map((p) => ({ pageId: p, image: good.get(p)!.toString('base64') })) });
    assert.ok(line.length > MAX_LINE, 'one request would be over the line limit');
    const cut = writePagesBatches(pages.map((p) => ({ pageId: p, image: good.get(p)! })));
    assert.ok(cut.length >= 2 && cut.every((b) => JSON.stringify({ op: 'write-pages', pages: b }).length <= MAX_LINE));
    assert.deepEqual(cut.flat().map((e) => e.pageId), pages);
    for (const [i, p] of pages.entries()) flipBit(primaryDir, p, 100 + ((i * 997) % (PAGE - 200)));
    for (const p of pages) assert.notDeepEqual(diskPage(primaryDir, p), good.get(p));
    const refuse: PageSource = { id: 'snapshot', pageFor: () => Promise.reject(new Error('not to be asked')) };
    const ends = await repairPages(pagestore, { id: 'p', store: primaryDir, sources: orderSources([refuse, replicaPageSource(() => true)]), owners }, pages);
    assert.deepEqual(ends.filter((e) => e.error).map((e) => `${e.pageId}: ${String(e.error)}`), []);
    for (const e of ends) {
      assert.equal(e.outcome!.result, 'repaired');
      assert.equal(e.outcome!.source, 'replica:r1');
      assert.equal(e.outcome!.mode, 'online');
      assert.ok(diskPage(primaryDir, e.pageId).equals(good.get(e.pageId)!), `page ${e.pageId} is byte for byte what it was`);
    }
    // Again: every page verifies now, and the kept connection is reused.
    const again = await repairPages(pagestore, { id: 'p', store: primaryDir, sources: [replicaPageSource(() => true)], owners }, pages.slice(0, 5));
    assert.deepEqual(again.map((e) => e.outcome?.result), Array(5).fill('already-valid'));
  });

  it('refuses an image that is stale at install time alone; the others of the request are written', async () => {
    const [a, p, b] = await cold(260, 3);
    const stale = diskPage(primaryDir, p!);
    await write([p!], 'newer');
    await evict(p!);
    for (const x of [a!, b!]) assert.equal((await store.readPage(x)).cached, false);
    const good = [a!, b!].map((x) => diskPage(primaryDir, x));
    for (const x of [a!, p!, b!]) flipBit(primaryDir, x, 1000);
    const answers = await ControlClient.with(primaryDir, (c) => c.writePages([{ pageId: a!, image: good[0] }, { pageId: p!, image: stale }, { pageId: b!, image: good[1] }]));
    assert.equal(answers.length, 3);
    assert.equal(answers[0]!.error, undefined);
    assert.equal(answers[2]!.error, undefined);
    assert.match(String(answers[1]!.error), /older than the version this store knows/);
    assert.ok(diskPage(primaryDir, a!).equals(good[0]!) && diskPage(primaryDir, b!).equals(good[1]!));
    assert.ok((await store.readPage(p!)).fault, 'the stale page was not written');
  });

  it('refuses a stale copy from a replica inside a batch alone (a lost write) and installs the others', async () => {
    const [a, p, b] = await cold(280, 3);
    const stale = diskPage(primaryDir, p!);
    await write([p!], 'newer');
    await evict(p!);
    for (const x of [a!, b!]) assert.equal((await store.readPage(x)).cached, false);
    const good = new Map([a!, p!, b!].map((x) => [x, diskPage(primaryDir, x)]));
    assert.ok(pageLsn(good.get(p!)!) > pageLsn(stale));
    // Only a test replica is connected now: it answers `p` with its stale copy, the others well.
    await session.stop();
    const flushed = store.status().flushedLsn;
    const { rolling } = await rollingAt(walDirOf(primaryDir), (await pagestore.files.readState(primaryDir)).storeId, 256 * 1024, flushed);
    const ch: ReplicationChannel = await connectChannel({ host: '127.0.0.1', port: store.replicationAddress!.port, secret: SECRET });
    ch.epoch = 1;
    ch.send(helloFrame({ epoch: 1, lsn: flushed, rolling, id: 'test' }));
    ch.send(ackFrame(1, { durableLsn: flushed, appliedLsn: flushed }));
    const asked: number[] = [];
    void (async () => {
      for (;;) {
        const f = await ch.next();
        if (f.type !== FrameType.pageRequest) continue;
        const req = parsePageRequest(f);
        asked.push(req.pageId);
        const img = req.pageId === p ? stale : good.get(req.pageId)!;
        ch.send(pageFrame(1, req.pageId, pageLsn(img), img));
      }
    })().catch(() => undefined);
    try {
      await until('the test replica streaming', () => (store.status().replication!.replicas.some((x) => x.id === 'test' && x.state === 'streaming') ? true : undefined));
      for (const x of [a!, p!, b!]) flipBit(primaryDir, x, 2000);
      const ends = await repairPages(pagestore, { id: 'p', store: primaryDir, sources: [replicaPageSource(() => true)], owners }, [a!, p!, b!]);
      assert.deepEqual(asked.sort((x, y) => x - y), [a!, p!, b!].sort((x, y) => x - y), 'one request per page, all of them');
      assert.equal(ends[0]!.outcome?.source, 'replica:test');
      assert.equal(ends[2]!.outcome?.source, 'replica:test');
      assert.match(String(ends[1]!.error), /stale: its LSN \d+ is older than the newest change/);
      assert.ok(diskPage(primaryDir, a!).equals(good.get(a!)!) && diskPage(primaryDir, b!).equals(good.get(b!)!));
      assert.ok((await store.readPage(p!)).fault, 'the stale copy was not installed');
    } finally {
      ch.close();
    }
  });
});

function flipBit(dir: string, id: number, at: number): void {
  xorOnDisk(dir, id, at, 1 << at % 8);
}

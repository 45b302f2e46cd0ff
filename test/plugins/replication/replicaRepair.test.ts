// Page repair from a replica (#14 item 5), primary's side: a primary store's owner (PageStore with
// replication.json: its real sender, real TCP on loopback) streams to a replica run by the
// agent's ReplicaSession (the real replica store, applying on this thread). While a writer keeps
// committing, single bit flips in pages of the primary's data file (page 0 among them) are
// repaired by the data repairer through the owner from the replica: source `replica:r1`, byte for
// byte the page before the flip. A replica that answers with a valid but stale copy (a test
// replica speaking the protocol) is refused by the owner as a lost write, and the next source is used.
// The CLI's `repair --json`, run as its own process, names the replica as the source.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import type { PageSource } from '../../../core/contracts/PageSource.js';
import { FrameType, ackFrame, connectChannel, helloFrame, pageFrame, parsePageRequest, type ReplicationChannel } from '../../../core/replication/protocol.js';
import { orderSources, repairPage } from '../../../plugins/data-repairer/repair.js';
import { pageLsn } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { replicaPageSource } from '../../../plugins/replication/pageSource.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { BIN } from '../../helpers/cli.js';
import { pagestore } from '../../helpers/engine.js';
import { copyStoreDir, tmpStoreDir } from '../../helpers/store.js';
import { diskPage, xorOnDisk } from '../../helpers/pageFile.js';
import { until } from './agentHarness.js';

const PAGES = 64;
const PAGE = 4096;
const SECRET = 'replica-repair-test-secret-0123456789';
/** Pages the writer keeps changing during the test; the others are changed once, then left alone. */
const HOT = 24;

describe('page repair from a replica (primary side)', () => {
  const root = path.dirname(tmpStoreDir('ra-replrepair-'));
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  const log = pino({ level: 'silent' });
  let store: PageStore;
  let session: ReplicaSession;
  let writing = true;
  let writer: Promise<number>;
  const writerErrors: string[] = [];

  const write = async (pages: number[], tag: string) => {
    const tx = store.begin();
    try {
      for (const p of pages) await tx.write(p, 0, Buffer.from(`${tag} page ${p}`));
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => undefined);
      throw err;
    }
  };
  /** Checkpoints, then reads hot pages until `p` has left the owner's cache (nothing else loads a cold page). */
  const evict = async (p: number) => {
    await store.checkpoint(); // a dirty page stays in memory
    for (let q = 1; (await store.readPage(p)).cached; q = (q % (HOT - 1)) + 1) {
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
    const { port } = store.replicationAddress!;
    session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port, secret: SECRET, id: 'r1', log, onRefused: () => undefined });
    await session.start();
    // Every page gets content, then the writer keeps the hot ones changing.
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
        if (n % 200 === 0) await store.checkpoint();
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

  it('repairs bit flips in pages of the primary (page 0 among them) from the replica while the writer runs, byte-equal', async () => {
    const replica = replicaPageSource((s) => s.path === primaryDir);
    const refuse: PageSource = { id: 'snapshot', pageFor: () => Promise.reject(new Error('not to be asked')) };
    const targets = [0, ...Array.from({ length: 20 }, (_, i) => HOT + i * 2)];
    for (const [i, p] of targets.entries()) {
      await evict(p);
      const good = diskPage(primaryDir, p);
      flipBit(primaryDir, p, 100 + ((i * 997) % (PAGE - 200)));
      assert.notDeepEqual(diskPage(primaryDir, p), good);
      const r = await repairPage(pagestore, { id: 'p', store: primaryDir, sources: orderSources([refuse, replica]) }, p);
      assert.equal(r.result, 'repaired', `page ${p}`);
      assert.equal(r.mode, 'online');
      assert.equal(r.source, 'replica:r1', `page ${p} came from the replica`);
      assert.ok(diskPage(primaryDir, p).equals(good), `page ${p} is byte for byte what it was`);
    }
    const before = store.status().flushedLsn;
    await until('the writer committing after the repairs', () => (store.status().flushedLsn > before ? true : undefined));
    assert.deepEqual(writerErrors, [], 'the writer never hit a corrupt page');
  });

  it('`recovery-agent repair --json` (a separate process) repairs from the replica and names it', async () => {
    const P = HOT + 3;
    await evict(P);
    const good = diskPage(primaryDir, P);
    flipBit(primaryDir, P, 2222);
    // Not spawnSync: this process is the store's owner and must go on answering its socket.
    const { stdout } = await promisify(execFile)(process.execPath, [BIN, 'repair', '--store', primaryDir, '--page', String(P), '--json'], { timeout: 60_000 });
    const out = JSON.parse(stdout) as { repaired: Array<{ pageId: number; source: string; result: string }>; failed: unknown[] };
    assert.deepEqual(out.failed, []);
    assert.equal(out.repaired[0]!.source, 'replica:r1');
    assert.ok(diskPage(primaryDir, P).equals(good));
  });

  it('refuses a valid-looking stale copy from a replica (a lost write) and uses the next source', async () => {
    const P = HOT + 1; // a cold page the first test left alone
    await evict(P);
    const stale = diskPage(primaryDir, P);
    await write([P], 'newer');
    await store.checkpoint();
    await evict(P);
    const good = diskPage(primaryDir, P);
    assert.ok(pageLsn(good) > pageLsn(stale));
    // Only a test replica that answers with the stale copy is connected now.
    await session.stop();
    const flushed = store.status().flushedLsn;
    const { rolling } = await rollingAt(walDirOf(primaryDir), (await pagestore.files.readState(primaryDir)).storeId, 256 * 1024, flushed);
    const ch: ReplicationChannel = await connectChannel({ host: '127.0.0.1', port: store.replicationAddress!.port, secret: SECRET });
    ch.epoch = 1;
    ch.send(helloFrame({ epoch: 1, lsn: flushed, rolling, id: 'stale' }));
    ch.send(ackFrame(1, { durableLsn: flushed, appliedLsn: flushed }));
    let asked = 0;
    void (async () => {
      for (;;) {
        const f = await ch.next();
        if (f.type !== FrameType.pageRequest) continue;
        const req = parsePageRequest(f);
        asked++;
        ch.send(pageFrame(1, req.pageId, pageLsn(stale), stale));
      }
    })().catch(() => undefined);
    try {
      await until('the test replica streaming', () => (store.status().replication!.replicas.some((x) => x.id === 'stale' && x.state === 'streaming') ? true : undefined));
      flipBit(primaryDir, P, 3000);
      await assert.rejects(store.replicaPage(P), /stale: its LSN \d+ is older than the newest change/);
      const reference: PageSource = { id: 'reference', pageFor: async () => ({ image: good, lsn: pageLsn(good), account: { from: 'the test', recordsApplied: 0 } }) };
      const r = await repairPage(pagestore, { id: 'p', store: primaryDir, sources: orderSources([reference, replicaPageSource(() => true)]) }, P);
      assert.equal(r.source, 'reference', 'the stale replica copy was refused, the next source used');
      assert.ok(asked >= 2, 'the replica was asked');
      assert.ok(diskPage(primaryDir, P).equals(good));
    } finally {
      ch.close();
    }
  });
});

/** Flips one bit of page `id` on disk, away from its header (bit rot). */
function flipBit(dir: string, id: number, at: number): void {
  xorOnDisk(dir, id, at, 1 << at % 8);
}

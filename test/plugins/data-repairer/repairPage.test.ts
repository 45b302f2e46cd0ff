// DataRepairer: a corrupt page is rebuilt from the newest snapshot plus the WAL (archived and
// live) and written — online through the owner's control socket, or offline under the store
// lock — byte for byte the page it was; the owner's cached copy is used when it has one; an
// image that does not verify is never written; no source means a clear error.
import assert from 'node:assert/strict';
import { readFileSync, openSync, writeSync, closeSync, existsSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { repairPage } from '../../../plugins/data-repairer/repair.js';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { controlSocketOf } from '../../../plugins/pagestore/controlSocket.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { listArchive, walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { archiveDirOf } from '../../../plugins/snapshot-manager/manifest.js';
import { prng } from '../../helpers/prng.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';
import { snapshotPageSource, type RebuiltPage } from '../../../plugins/snapshot-manager/pageSource.js';

const PAGES = 64;
const PAGE = 4096;

function diskPage(dir: string, id: number): Buffer {
  return readFileSync(path.join(dir, 'pages.db')).subarray(id * PAGE, (id + 1) * PAGE);
}

/** Overwrites 64 bytes in the middle of a page, as bit rot or a stray write would. */
function corrupt(dir: string, id: number): void {
  const fd = openSync(path.join(dir, 'pages.db'), 'r+');
  writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, id * PAGE + 1000);
  closeSync(fd);
}

const openStore = (dir: string, snaps: string) =>
  PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 65536, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps), cacheBytes: 0 });

describe('repair-page: rebuild from snapshot + WAL', () => {
  const root = path.dirname(tmpStoreDir('ra-repair-'));
  const dir = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 1 });
  /** What each page's payload should start with. */
  const model = new Map<number, string>();
  let store: PageStore;

  const write = async (pages: number[], tag: string) => {
    const tx = store.begin();
    for (const p of pages) {
      const v = `${tag} page ${p}`;
      await tx.write(p, 0, Buffer.from(v));
      model.set(p, v);
    }
    await tx.commit();
  };
  const read = async (p: number) => {
    const tx = store.begin();
    try {
      return (await tx.read(p)).subarray(0, model.get(p)!.length).toString();
    } finally {
      await tx.commit();
    }
  };
  /** Reads other pages until `p` has left the owner's 16-page cache. */
  const evict = async (p: number) => {
    for (let q = 1; (await store.readPage(p)).cached; q = (q % (PAGES - 1)) + 1) if (q !== p && model.has(q)) await read(q);
  };

  before(async () => {
    store = await openStore(dir, snaps);
    for (let p = 1; p < PAGES; p += 8) await write(Array.from({ length: Math.min(8, PAGES - p) }, (_, k) => p + k), 'v0');
    await createSnapshot({ engine: pagestore, store: dir, dir: snaps, pool });
    // After the snapshot: many changes, checkpoints that retire (and archive) WAL segments.
    const rnd = prng(11);
    for (let i = 1; i <= 400; i++) {
      await write([1 + (rnd() % (PAGES - 1)), 1 + (rnd() % (PAGES - 1)), 5], `v${i}`);
      if (i % 50 === 0) await store.checkpoint();
    }
    await store.checkpoint();
    assert.ok((await listArchive(snaps)).length > 0, 'some WAL since the snapshot was archived');
  });
  after(async () => {
    await store.close().catch(() => undefined);
    await pool.close();
  });

  it('repairs a page its owner does not hold in memory, online, through the control socket', async () => {
    await evict(5);
    const good = Buffer.from(diskPage(dir, 5));
    corrupt(dir, 5);
    await assert.rejects(read(5), (e: unknown) => isRaError(e, 'RA_ERR_PAGE_CORRUPT'), 'the owner never hands out the bad page');
    const r = await repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => snaps)] }, 5);
    assert.equal(r.result, 'repaired');
    assert.equal(r.mode, 'online');
    assert.equal(r.source, 'snapshot');
    assert.ok(r.rebuilt!.recordsApplied >= 400, `records applied: ${r.rebuilt!.recordsApplied}`);
    const segments = r.rebuilt!.segments as RebuiltPage['segments'];
    assert.ok(segments.archived > 0 && segments.live > 0, JSON.stringify(segments));
    assert.deepEqual(diskPage(dir, 5), good, 'the page on disk is the page it was, byte for byte');
    assert.equal(await read(5), model.get(5));
    // The page goes on changing normally.
    await write([5], 'after-repair');
    assert.equal(await read(5), 'after-repair page 5');
  });

  it("writes the owner's cached copy when the owner holds the page", async () => {
    assert.equal(await read(9), model.get(9));
    await store.checkpoint();
    const good = Buffer.from(diskPage(dir, 9));
    corrupt(dir, 9);
    assert.equal((await store.readPage(9)).cached, true);
    const r = await repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => snaps)] }, 9);
    assert.equal(r.source, 'owner-cache');
    assert.deepEqual(diskPage(dir, 9), good);
  });

  it('refuses an image that does not verify, and one from the future; the disk is unchanged', async () => {
    await evict(13);
    const good = Buffer.from(diskPage(dir, 13));
    const bad = Buffer.from(good);
    bad[2000] ^= 1;
    await assert.rejects(store.repairPage(13, bad), /fails its checksum check/);
    await assert.rejects(store.repairPage(14, good), /page-id/);
    const c = await ControlClient.connect(dir);
    try {
      await assert.rejects(c.writePage(13, bad), (e: unknown) => isRaError(e, 'RA_ERR_PAGE_CORRUPT'));
      await assert.rejects(c.writePage(PAGES + 3, good), (e: unknown) => isRaError(e, 'RA_ERR_PAGE_RANGE'));
    } finally {
      c.close();
    }
    assert.deepEqual(diskPage(dir, 13), good);
  });

  it('answers status and checkpoint, and rejects malformed requests with an error', async () => {
    const c = await ControlClient.connect(dir);
    try {
      const s = await c.status();
      assert.equal(s.pid, process.pid);
      assert.equal(s.endLsn, store.endLsn);
      await write([3], 'before-ckpt');
      const k = await c.checkpoint();
      assert.ok(k.pagesWritten >= 1);
    } finally {
      c.close();
    }
    const ask = (line: string) =>
      new Promise<string>((resolve, reject) => {
        const sock = net.createConnection(controlSocketOf(dir));
        let got = '';
        sock.on('data', (d) => (got += d.toString()));
        sock.on('end', () => resolve(got));
        sock.on('error', reject);
        sock.write(line);
      });
    assert.match(await ask('{"op":"format-disk"}\n{"op":"status"}\n'), /^\{"ok":false,"code":"RA_ERR_CONTROL".*unknown op[^\n]*\n$/);
    assert.match(await ask('not json\n'), /"ok":false.*not JSON/);
    assert.match(await ask('{"op":"read-page","pageId":"7"}\n'), /"ok":false.*needs an integer/);
    assert.match(await ask(' '.repeat((1 << 20) + 10)), /"ok":false.*longer than 1048576 bytes/);
  });

  it('repairs offline, under the store lock, when nobody has the store open; the socket is gone', async () => {
    await store.close();
    assert.equal(existsSync(controlSocketOf(dir)), false);
    const good = Buffer.from(diskPage(dir, 21));
    corrupt(dir, 21);
    const r = await repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => snaps)] }, 21);
    assert.equal(r.mode, 'offline');
    assert.equal(r.source, 'snapshot');
    assert.deepEqual(diskPage(dir, 21), good);
    const again = await repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => snaps)] }, 21);
    assert.equal(again.result, 'already-valid');
    store = await openStore(dir, snaps);
    assert.equal(await read(21), model.get(21));
    for (let p = 0; p < PAGES; p++) assert.equal(verifyPage(diskPage(dir, p), p), null, `page ${p}`);
  });

  it('escalates with a clear error when no source can rebuild the page', async () => {
    await store.close();
    corrupt(dir, 30);
    await assert.rejects(repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => undefined)] }, 30), (e: unknown) => isRaError(e, 'RA_ERR_REPAIR_NO_SOURCE') && /no snapshots.dir/.test((e as Error).message));
    // A hole in the archived WAL between the snapshot and the live log.
    const archived = await listArchive(snaps);
    const gone = archived[archived.length - 1]!;
    unlinkSync(path.join(archiveDirOf(snaps), gone.file));
    unlinkSync(path.join(archiveDirOf(snaps), gone.file.replace(/\.lz4$/, '.json')));
    const before = diskPage(dir, 30);
    await assert.rejects(repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => snaps)] }, 30), (e: unknown) => isRaError(e, 'RA_ERR_REPAIR_NO_SOURCE') && /gap|neither/.test((e as Error).message));
    assert.deepEqual(diskPage(dir, 30), before, 'nothing written');
    store = await openStore(dir, snaps);
  });
});

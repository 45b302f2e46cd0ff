// What a store's owner accepts on its control socket's write-page (issue #11, defect 3): only an
// image for a page that is bad on disk and not in memory, no older than the newest version the
// owner has held, and for page 0 only this store's own superblock. Driven over the real socket.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { sealPage } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { cli } from '../../helpers/cli.js';
import { tmpStoreDir } from '../../helpers/store.js';

const PAGE = 4096;
const PAGES = 64;

async function commitBalance(store: PageStore, pageId: number, balance: number): Promise<void> {
  const tx = store.begin();
  await tx.write(pageId, 0, Buffer.from(`balance=${balance};`.padEnd(16, ' ')));
  await tx.commit();
}

async function balanceOf(store: PageStore, pageId: number): Promise<string> {
  const tx = store.begin();
  const p = await tx.read(pageId);
  await tx.commit();
  return p.subarray(0, 16).toString().trim();
}

/** Reads every other page, so a 16-frame cache evicts `pageId` (clean after a checkpoint). */
async function evictAllBut(store: PageStore, pageId: number): Promise<void> {
  const tx = store.begin();
  for (let id = 1; id < PAGES; id++) if (id !== pageId) await tx.read(id);
  await tx.commit();
}

/** Flips a byte of page `pageId` in the data file behind the store's back (a failing disk). */
function damageOnDisk(dir: string, pageId: number, at = 700): void {
  const fd = openSync(path.join(dir, 'pages.db'), 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, pageId * PAGE + at);
    b[0]! ^= 0x20;
    writeSync(fd, b, 0, 1, pageId * PAGE + at);
  } finally {
    closeSync(fd);
  }
}

function openSmall(dir: string, create = false): Promise<PageStore> {
  return PageStore.open(dir, { ...(create ? { create: true, pageCount: PAGES, pageSize: PAGE } : {}), cacheBytes: 16 * PAGE, checkpointIntervalMs: 0 });
}

async function refused(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (err: Error & { code?: string; message: string }) => {
    assert.equal(err.code, 'RA_ERR_REPAIR_REFUSED', err.message);
    assert.match(err.message, new RegExp(reason));
    return true;
  });
}

describe('control socket write-page (pageStore.repairPage)', () => {
  it('refuses a stale image of a page that is valid on disk, and the committed value stays', async () => {
    const dir = tmpStoreDir('ra-ctlrepair-');
    let store = await openSmall(dir, true);
    const c = await ControlClient.connect(dir);
    try {
      await commitBalance(store, 9, 100);
      const old = await c.readPage(9);
      await commitBalance(store, 9, 999);
      await c.checkpoint();
      await evictAllBut(store, 9);
      await refused(c.writePage(9, old.image), 'copy on disk verifies');
    } finally {
      c.close();
      await store.close();
    }
    store = await openSmall(dir);
    try {
      assert.equal(await balanceOf(store, 9), 'balance=999;');
    } finally {
      await store.close();
    }
    const scan = cli(['scan', '--store', dir, '--json']);
    assert.equal(scan.status, 0, scan.stdout + scan.stderr);
  });

  it('refuses an image older than the version it evicted when the disk copy is bad, and takes the current one', async () => {
    const dir = tmpStoreDir('ra-ctlrepair-');
    const store = await openSmall(dir, true);
    const c = await ControlClient.connect(dir);
    try {
      await commitBalance(store, 21, 5);
      const older = await c.readPage(21);
      await commitBalance(store, 21, 6);
      await commitBalance(store, 21, 7);
      await c.checkpoint();
      const current = await c.readPage(21);
      await evictAllBut(store, 21);
      damageOnDisk(dir, 21);
      assert.ok((await c.readPage(21)).fault, 'the page is bad on disk');
      await refused(c.writePage(21, older.image), 'older than the version this store knows');
      const r = await c.writePage(21, current.image);
      assert.equal(r.source, 'image');
      assert.equal(await balanceOf(store, 21), 'balance=7;');
    } finally {
      c.close();
      await store.close();
    }
  });

  for (const damage of ['payload', 'header', 'zero'] as const) {
    it(`refuses a stale image after the store was reopened (${damage} of the disk copy damaged)`, async () => {
      const dir = tmpStoreDir('ra-ctlrepair-reopen-');
      let store = await openSmall(dir, true);
      let c = await ControlClient.connect(dir);
      await commitBalance(store, 7, 1);
      await c.checkpoint();
      const old = await c.readPage(7);
      await commitBalance(store, 7, 2);
      await c.checkpoint();
      c.close();
      await store.close();
      const fd = openSync(path.join(dir, 'pages.db'), 'r+');
      if (damage === 'payload') writeSync(fd, Buffer.from([0x42]), 0, 1, 7 * PAGE + 900);
      if (damage === 'header') writeSync(fd, Buffer.alloc(8, 0xee), 0, 8, 7 * PAGE + 8);
      if (damage === 'zero') writeSync(fd, Buffer.alloc(PAGE), 0, PAGE, 7 * PAGE);
      closeSync(fd);
      store = await openSmall(dir);
      c = await ControlClient.connect(dir);
      try {
        assert.ok((await c.readPage(7)).fault, 'the page is bad on disk');
        await refused(c.writePage(7, old.image), 'older than the version this store knows');
      } finally {
        c.close();
        await store.close();
      }
    });
  }

  // The lost commit of chaos seed 17 trial 10 (page-torn, session 8): a transaction asked for the
  // page while its repair image was being written, so its pin waited on the install; the install
  // then trimmed the cache before that pin could pin the new frame, and with every older frame
  // dirty the new one was the only one to evict. The transaction changed a frame the cache no
  // longer held: its commit was acknowledged, but no checkpoint wrote the page, and the redo point
  // moved past its record.
  it('keeps the change of a transaction that waited for the page while its repair image was installed', async () => {
    const dir = tmpStoreDir('ra-ctlrepair-race-');
    let store = await openSmall(dir, true);
    try {
      await commitBalance(store, 40, 1);
      await store.checkpoint();
      const current = await store.readPage(40);
      await evictAllBut(store, 40);
      // 16 dirty frames: a full cache that can evict nothing else.
      const tx = store.begin();
      for (let id = 1; id <= 16; id++) await tx.write(id, 0, Buffer.from(`dirty=${id};`));
      await tx.commit();
      damageOnDisk(dir, 40);
      const repaired = store.repairPage(40, current.image, (await store.flushAll()));
      const changed = commitBalance(store, 40, 2); // its pin waits for the install
      assert.equal((await repaired).source, 'image');
      await changed;
      assert.equal(await balanceOf(store, 40), 'balance=2;');
      await store.checkpoint();
      await evictAllBut(store, 40);
      assert.equal(await balanceOf(store, 40), 'balance=2;', 'read back from disk after a checkpoint');
    } finally {
      await store.close();
    }
    store = await openSmall(dir);
    try {
      assert.equal(await balanceOf(store, 40), 'balance=2;', 'after a reopen');
    } finally {
      await store.close();
    }
  });

  // page-torn of the chaos suite: verifyPage reports `checksum` before `magic`, so a page whose
  // first half was overwritten fails "only its checksum", and the garbage LSN of its torn header
  // made every image look stale. A torn header (magic, version and page id garbage) is not held
  // against an image offered as of a durable LSN (see repairPage); the cache's and the live WAL's
  // bounds still are, an image without `asOfLsn` is still refused, and `asOfLsn` is still checked
  // against the durable end and the image's own LSN.
  it('takes an image as of a durable LSN for a page whose torn header holds a garbage LSN, and nothing older', async () => {
    const dir = tmpStoreDir('ra-ctlrepair-torn-');
    let store = await openSmall(dir, true);
    let c = await ControlClient.connect(dir);
    await commitBalance(store, 9, 2);
    await c.checkpoint();
    const old = await c.readPage(9);
    await commitBalance(store, 9, 3);
    await c.checkpoint();
    const current = await c.readPage(9);
    c.close();
    await store.close();
    const fd = openSync(path.join(dir, 'pages.db'), 'r+');
    writeSync(fd, Buffer.alloc(PAGE / 2, 0xee), 0, PAGE / 2, 9 * PAGE); // LSN 0xeeee…: past any log
    closeSync(fd);
    store = await openSmall(dir);
    c = await ControlClient.connect(dir);
    try {
      assert.equal((await c.readPage(9)).fault, 'checksum', 'a torn header fails its checksum first');
      const durable = (await c.status()).flushedLsn;
      await refused(c.writePage(9, current.image), 'older than the version this store knows \\(LSN 1[0-9]{18,}\\)');
      await refused(c.writePage(9, old.image, durable), 'older than the version this store knows');
      await refused(c.writePage(9, current.image, durable + 1_000_000), "past this store's durable end");
      await refused(c.writePage(9, current.image, 1), 'below its own LSN');
      assert.equal((await c.readPage(9)).fault, 'checksum', 'nothing was written');
      const r = await c.writePage(9, current.image, durable);
      assert.equal(r.source, 'image');
      assert.equal(await balanceOf(store, 9), 'balance=3;');
    } finally {
      c.close();
      await store.close();
    }
  });

  // A header whose identity is intact keeps its LSN as a bound: one flipped bit of the LSN field
  // (page-bitflip once set bit 38) is not told from a real LSN past the end of a log that recovery
  // cut, so an image with other contents is still refused. One with the very bytes of the bad
  // copy but for checksum and LSN changes no byte of the page: it is taken.
  it('holds the LSN of a bad copy whose header identity is intact against an image with other contents, not against its own', async () => {
    const dir = tmpStoreDir('ra-ctlrepair-lsnflip-');
    let store = await openSmall(dir, true);
    let c = await ControlClient.connect(dir);
    await commitBalance(store, 9, 2);
    await c.checkpoint();
    const current = await c.readPage(9);
    c.close();
    await store.close();
    const fd = openSync(path.join(dir, 'pages.db'), 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, 9 * PAGE + 24 + 4);
    b[0]! ^= 0x40; // bit 38 of the page LSN
    writeSync(fd, b, 0, 1, 9 * PAGE + 24 + 4);
    closeSync(fd);
    // Same LSN, other contents, sealed: it verifies, and neither the cache nor the live WAL knows better.
    const other = Buffer.from(current.image);
    other.write('balance=9;', 32);
    sealPage(other);
    store = await openSmall(dir);
    c = await ControlClient.connect(dir);
    try {
      assert.equal((await c.readPage(9)).fault, 'checksum');
      const durable = (await c.status()).flushedLsn;
      await refused(c.writePage(9, other, durable), 'older than the version this store knows \\(LSN 27487790[0-9]+\\)');
      assert.equal((await c.readPage(9)).fault, 'checksum', 'nothing was written');
      const r = await c.writePage(9, current.image, durable);
      assert.equal(r.source, 'image');
      assert.equal(await balanceOf(store, 9), 'balance=2;');
    } finally {
      c.close();
      await store.close();
    }
  });

  it('reads the live WAL once for all repairs, and still refuses a page changed before the open or after that read', async () => {
    const dir = tmpStoreDir('ra-ctlrepair-once-');
    let store = await openSmall(dir, true);
    let c = await ControlClient.connect(dir);
    await commitBalance(store, 7, 1);
    await c.checkpoint();
    const old7 = await c.readPage(7);
    await commitBalance(store, 7, 2);
    await c.checkpoint();
    c.close();
    await store.close();
    store = await openSmall(dir);
    c = await ControlClient.connect(dir);
    try {
      // Changed before the open: only the WAL knows (the cache is new).
      const cur7 = await c.readPage(7);
      assert.equal(cur7.fault, null);
      damageOnDisk(dir, 7);
      await refused(c.writePage(7, old7.image), 'older than the version this store knows');
      assert.equal(store.repairStats.walReads, 1);
      // A good copy goes in.
      assert.equal((await c.writePage(7, cur7.image)).source, 'image');
      assert.equal(await balanceOf(store, 7), 'balance=2;');
      // Changed after that read, then evicted: the cache remembers it.
      await commitBalance(store, 9, 1);
      await c.checkpoint();
      const old9 = await c.readPage(9);
      await commitBalance(store, 9, 2);
      await c.checkpoint();
      await evictAllBut(store, 5);
      damageOnDisk(dir, 9);
      await refused(c.writePage(9, old9.image), 'older than the version this store knows');
      // The WAL was not read again.
      assert.equal(store.repairStats.walReads, 1, 'one read of the WAL for every repair of the process');
    } finally {
      c.close();
      await store.close();
    }
  });

  it("never installs another store's superblock as page 0; its own is taken back when page 0 is bad", async () => {
    const dir = tmpStoreDir('ra-ctlrepair-');
    const otherDir = tmpStoreDir('ra-ctlrepair-other-');
    const other = await openSmall(otherDir, true);
    const c2 = await ControlClient.connect(otherDir);
    const foreign = (await c2.readPage(0)).image;
    c2.close();
    await other.close();

    let store = await openSmall(dir, true);
    const c = await ControlClient.connect(dir);
    try {
      const own = (await c.readPage(0)).image;
      await refused(c.writePage(0, foreign), 'not this store.s superblock');
      await evictAllBut(store, 0);
      damageOnDisk(dir, 0, 200);
      await refused(c.writePage(0, foreign), 'not this store.s superblock');
      const r = await c.writePage(0, own);
      assert.equal(r.source, 'image');
    } finally {
      c.close();
      await store.close();
    }
    store = await openSmall(dir);
    await store.close();
  });

  it('scan reports a store whose page 0 is another store\'s superblock, or whose control file is damaged', () => {
    const dir = tmpStoreDir('ra-ctlrepair-scan-');
    const otherDir = tmpStoreDir('ra-ctlrepair-scan-other-');
    assert.equal(cli(['recover', '--store', dir]).status, 2, 'no store yet');
    return (async () => {
      await (await openSmall(dir, true)).close();
      await (await openSmall(otherDir, true)).close();
      // Another store's superblock, byte for byte: page 0 verifies as a page, but is not ours.
      const src = openSync(path.join(otherDir, 'pages.db'), 'r');
      const sb = Buffer.alloc(PAGE);
      readSync(src, sb, 0, PAGE, 0);
      closeSync(src);
      const dst = openSync(path.join(dir, 'pages.db'), 'r+');
      writeSync(dst, sb, 0, PAGE, 0);
      closeSync(dst);
      await assert.rejects(openSmall(dir), (err: unknown) => isRaError(err, 'RA_ERR_STORE_INVALID'));
      const r = cli(['scan', '--store', dir, '--json']);
      assert.notEqual(r.status, 0, `scan must not call this store clean:\n${r.stdout}${r.stderr}`);
      assert.match(r.stdout + r.stderr, /superblock/);

      const dir2 = tmpStoreDir('ra-ctlrepair-scan2-');
      await (await openSmall(dir2, true)).close();
      const fd = openSync(path.join(dir2, 'control'), 'r+');
      writeSync(fd, Buffer.from([0xee]), 0, 1, 30);
      closeSync(fd);
      await assert.rejects(openSmall(dir2), (err: unknown) => isRaError(err, 'RA_ERR_STORE_INVALID'));
      const r2 = cli(['scan', '--store', dir2, '--json']);
      assert.notEqual(r2.status, 0, `scan must not call this store clean:\n${r2.stdout}${r2.stderr}`);
      assert.match(r2.stdout + r2.stderr, /control/);
    })();
  });
});

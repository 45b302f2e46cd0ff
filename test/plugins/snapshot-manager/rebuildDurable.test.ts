// Page repair from snapshot + WAL as of the live owner's durable LSN (#17, page-bitflip and
// page-torn of the chaos suite):
//   - the WAL is read up to the durable LSN taken first, so a live segment the owner fills and
//     leaves for the next one while it is read is not taken for a partial copy (it was: a GAP);
//   - a WAL that ends before that LSN (records missing) is refused, never rebuilt into a stale page;
//   - a page whose torn header holds a garbage LSN is repaired online with the image as of that
//     LSN (the owner refused it as older than the garbage).
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { LiveOwner, PageEngine } from '../../../core/contracts/PageEngine.js';
import { isRaError } from '../../../core/errors.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { repairPage } from '../../../plugins/data-repairer/repair.js';
import { PAGE_HEADER_SIZE, verifyPage } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { segmentPath } from '../../../plugins/pagestore/walSegments.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { rebuildPage, snapshotPageSource } from '../../../plugins/snapshot-manager/pageSource.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 65536;
const PAGE = 4096;

/** A store with a snapshot, page 7 changed after it; its directories. */
async function setUp(pool: WorkerPool, prefix: string) {
  const root = path.dirname(tmpStoreDir(prefix));
  const dir = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const store = await PageStore.open(dir, { create: true, pageCount: 32, pageSize: PAGE, segmentSize: SEGMENT, checkpointIntervalMs: 0, cacheBytes: 16 * PAGE, archiver: walArchiver(pagestore, snaps) });
  const put = async (pageId: number, v: string | Buffer) => {
    const tx = store.begin();
    await tx.write(pageId, 0, typeof v === 'string' ? Buffer.from(v) : v);
    await tx.commit();
  };
  await put(7, 'before the snapshot');
  await createSnapshot({ engine: pagestore, store: dir, dir: snaps, pool });
  return { dir, snaps, store, put, walDir: path.join(dir, 'wal') };
}

/** An owner that answers only `status`, with `flushedLsn` (the page source asks nothing else). */
const ownerAt = (flushedLsn: number) => ({ status: async () => ({ flushedLsn }) }) as unknown as LiveOwner;
const payload = (image: Buffer) => image.subarray(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + 24).toString();

describe('rebuild from snapshot + WAL as of the owner\'s durable LSN', () => {
  const pool = new WorkerPool({ threads: 1 });
  after(() => pool.close());

  it('is not thrown off by the owner filling a segment and starting the next while it reads', async () => {
    const { dir, snaps, store, put, walDir } = await setUp(pool, 'ra-rebuild-switch-');
    try {
      await put(7, 'after the snapshot');
      const durable = await store.flushAll();
      const a = Math.floor(durable / SEGMENT) * SEGMENT;
      const partialA = readFileSync(segmentPath(walDir, a)); // segment A as it is at the durable LSN
      // The owner goes on: A fills up and B, the next, gets records.
      for (let i = 0; store.endLsn < a + SEGMENT + 4096; i++) await put(3, Buffer.alloc(2000, i & 0xff));
      await store.flushAll();
      const b = a + SEGMENT;
      const fullA = readFileSync(segmentPath(walDir, a));
      const fullB = readFileSync(segmentPath(walDir, b));
      // Back to the moment the durable LSN was taken: A partial, B not started (same files).
      writeFileSync(segmentPath(walDir, a), partialA);
      const fd = openSync(segmentPath(walDir, b), 'r+');
      ftruncateSync(fd, 0);
      closeSync(fd);
      // The switch happens right after the reader has read A: A full, B with records.
      let switched = false;
      const engine: PageEngine = {
        ...pagestore,
        log: {
          ...pagestore.log,
          forEachPageRecord(buf, from, lsn, visit) {
            const end = pagestore.log.forEachPageRecord(buf, from, lsn, visit);
            if (!switched && lsn >= a && lsn < b) {
              switched = true;
              writeFileSync(segmentPath(walDir, a), fullA);
              writeFileSync(segmentPath(walDir, b), fullB);
            }
            return end;
          },
        },
      };
      const got = await snapshotPageSource(() => snaps).pageFor({ id: 's', path: dir, engine, owner: ownerAt(durable) }, 7);
      assert.ok(switched, 'the segments switched during the read');
      assert.ok(got, 'a copy');
      assert.equal(verifyPage(got.image, 7), null);
      assert.match(payload(got.image), /^after the snapshot/);
      assert.equal(got.asOfLsn, durable, 'the copy is as of the durable LSN taken first');
      assert.equal(got.account.endLsn, durable);
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('refuses a WAL that ends before the durable LSN (records missing) instead of a stale page', async () => {
    const { dir, snaps, store, put, walDir } = await setUp(pool, 'ra-rebuild-stale-');
    try {
      await put(7, 'v1 after the snapshot');
      const v1 = await store.flushAll();
      await put(7, 'v2 after the snapshot');
      const durable = await store.flushAll();
      const a = Math.floor(durable / SEGMENT) * SEGMENT;
      assert.equal(Math.floor(v1 / SEGMENT) * SEGMENT, a, 'both changes in one segment');
      // The log the source finds lacks v2's record: its end looks like the end of the log.
      const full = readFileSync(segmentPath(walDir, a));
      writeFileSync(segmentPath(walDir, a), full.subarray(0, v1 - a));
      try {
        // Without the owner's durable LSN, what is found is taken as the whole log: v1, stale.
        const blind = await rebuildPage(pagestore, dir, snaps, 7);
        assert.match(payload(blind.image), /^v1 after/, 'the scenario: a rebuild that stops at v1');
        // With it, the missing records are a gap, and nothing is offered.
        await assert.rejects(snapshotPageSource(() => snaps).pageFor({ id: 's', path: dir, engine: pagestore, owner: ownerAt(durable) }, 7), (err) => {
          // Each snapshot's answer, in one error (rebuildPage tries the older ones too).
          assert.ok(isRaError(err, 'RA_ERR_REPAIR_NO_SOURCE'), String(err));
          assert.match((err as Error).message, new RegExp(`the WAL found ends at LSN ${v1}, before the owner's durable LSN ${durable}.*\\[RA_ERR_WAL_GAP\\]`));
          return true;
        });
      } finally {
        writeFileSync(segmentPath(walDir, a), full);
      }
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  it('repairs online a page whose torn header holds a garbage LSN, with the image as of the durable LSN', async () => {
    const { dir, snaps, store, put } = await setUp(pool, 'ra-rebuild-torn-');
    try {
      await put(7, 'current after the snapshot');
      await store.checkpoint();
      // Page 7 out of the owner's memory (clean, written), then its first half torn: garbage
      // header, LSN 0xeeee… (far past the log), checksum failing first.
      for (let p = 8; (await store.readPage(7)).cached; p = p === 31 ? 8 : p + 1) {
        const tx = store.begin();
        await tx.read(p);
        await tx.commit();
      }
      const fd = openSync(path.join(dir, 'pages.db'), 'r+');
      writeSync(fd, Buffer.alloc(PAGE / 2, 0xee), 0, PAGE / 2, 7 * PAGE);
      closeSync(fd);
      assert.equal((await store.readPage(7)).fault, 'checksum');
      const r = await repairPage(pagestore, { store: dir, sources: [snapshotPageSource(() => snaps)] }, 7);
      assert.equal(r.result, 'repaired');
      assert.equal(r.source, 'snapshot');
      assert.equal(r.mode, 'online');
      const tx = store.begin();
      assert.match((await tx.read(7)).subarray(0, 26).toString(), /^current after the snapshot/);
      await tx.commit();
    } finally {
      await store.close().catch(() => undefined);
    }
  });
});

import assert from 'node:assert/strict';
import { openSync, readdirSync, readSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { tmpStoreDir } from '../../helpers/store.js';

const small = { create: true, pageCount: 32, pageSize: 4096, checkpointIntervalMs: 0 } as const;

describe('page store', () => {
  it('commits durably, aborts from before-images, and keeps data across reopen', async () => {
    const dir = tmpStoreDir();
    let store = await PageStore.open(dir, small);
    assert.equal(store.payloadSize, 4096 - 32);
    const t1 = store.begin();
    await t1.write(3, 0, Buffer.from('committed'));
    await t1.write(3, store.payloadSize - 4, Buffer.from('tail'));
    await t1.commit();
    const t2 = store.begin();
    await t2.write(3, 0, Buffer.from('ABORTED!!'));
    await t2.write(4, 10, Buffer.from('gone'));
    assert.equal((await t2.read(3)).subarray(0, 9).toString(), 'ABORTED!!', 'a transaction sees its own writes');
    await t2.abort();
    await store.close();

    store = await PageStore.open(dir);
    const r = store.begin();
    const p3 = await r.read(3);
    assert.equal(p3.subarray(0, 9).toString(), 'committed');
    assert.equal(p3.subarray(store.payloadSize - 4).toString(), 'tail');
    assert.deepEqual([...(await r.read(4)).subarray(10, 14)], [0, 0, 0, 0]);
    await r.commit();
    await assert.rejects(r.commit(), (err: unknown) => isRaError(err, 'RA_ERR_TX_STATE'));
    await store.close();
  });

  it('validates page ids, ranges and data with clear errors', async () => {
    const store = await PageStore.open(tmpStoreDir(), small);
    const tx = store.begin();
    await assert.rejects(tx.read(0), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_RANGE') && /page 0 is the superblock/.test(err.message));
    await assert.rejects(tx.read(32), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_RANGE'));
    await assert.rejects(tx.write(1, store.payloadSize - 2, Buffer.from('abc')), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_RANGE') && /does not fit/.test(err.message));
    await assert.rejects(tx.write(1, -1, Buffer.from('a')), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_RANGE'));
    await assert.rejects(tx.write(1, 0, Buffer.alloc(0)), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_RANGE'));
    await tx.abort();
    await store.close();
    await assert.rejects(PageStore.open(tmpStoreDir(), { create: true, pageCount: 8, pageSize: 3000 }), (err: unknown) => isRaError(err, 'RA_ERR_STORE_OPTIONS') && /pageSize must be a power of two/.test(err.message));
    await assert.rejects(PageStore.open(tmpStoreDir(), { create: true, pageCount: 1 }), (err: unknown) => isRaError(err, 'RA_ERR_STORE_OPTIONS'));
    await assert.rejects(PageStore.open(tmpStoreDir()), (err: unknown) => isRaError(err, 'RA_ERR_STORE_NOT_FOUND'));
  });

  it('allows one writer per store, and takes over the lock of a dead owner', async () => {
    const dir = tmpStoreDir();
    const store = await PageStore.open(dir, small);
    await assert.rejects(PageStore.open(dir), (err: unknown) => isRaError(err, 'RA_ERR_STORE_LOCKED') && new RegExp(`process ${process.pid}`).test(err.message));
    await store.close();
    // A lock left by a process that no longer exists (pid far beyond pid_max) is stale.
    writeFileSync(path.join(dir, 'LOCK'), '999999999\n12345\n');
    const again = await PageStore.open(dir);
    await again.close();
    // A live pid whose start time differs is a reused pid: stale too.
    writeFileSync(path.join(dir, 'LOCK'), `${process.pid}\n1\n`);
    const third = await PageStore.open(dir);
    await third.close();
  });

  it('finds a deadlock within a second and rolls the victim back', async () => {
    const store = await PageStore.open(tmpStoreDir(), small);
    const a = store.begin();
    const b = store.begin();
    await a.write(1, 0, Buffer.from('a1'));
    await b.write(2, 0, Buffer.from('b2'));
    const t0 = Date.now();
    const results = await Promise.allSettled([a.write(2, 0, Buffer.from('a2')), b.write(1, 0, Buffer.from('b1'))]);
    assert.ok(Date.now() - t0 < 1000);
    const rejected = results.filter((r) => r.status === 'rejected');
    assert.equal(rejected.length, 1, 'exactly one victim');
    const reason = (rejected[0] as PromiseRejectedResult).reason as Error;
    assert.ok(isRaError(reason, 'RA_ERR_DEADLOCK'), String(reason));
    assert.match(reason.message, /deadlock victim/);
    const [victim, survivor] = results[0]!.status === 'rejected' ? [a, b] : [b, a];
    assert.equal(victim.state, 'aborted');
    await survivor.commit();
    const r = store.begin();
    const winner = survivor === a ? 'a' : 'b';
    assert.equal((await r.read(1)).subarray(0, 2).toString(), `${winner}1`);
    assert.equal((await r.read(2)).subarray(0, 2).toString(), `${winner}2`);
    await r.commit();
    assert.equal(store.lockStats.deadlocks, 1);
    await store.close();
  });

  it('shares fdatasyncs among concurrent commits (group commit)', async () => {
    const store = await PageStore.open(tmpStoreDir(), { ...small, pageCount: 80 });
    const before = store.walStats.flushes;
    await Promise.all(
      Array.from({ length: 64 }, async (_, i) => {
        const tx = store.begin();
        await tx.write(1 + i, 0, Buffer.from(`tx${i}`));
        await tx.commit();
      }),
    );
    const flushes = store.walStats.flushes - before;
    assert.ok(flushes <= 8, `64 concurrent commits took ${flushes} WAL flushes`);
    await store.close();
  });

  it('verifies every page read from disk and reports a corrupt one', async () => {
    const dir = tmpStoreDir();
    let store = await PageStore.open(dir, small);
    const tx = store.begin();
    await tx.write(9, 0, Buffer.from('precious'));
    await tx.commit();
    await store.close();
    // Flip one payload bit of page 9 behind the store's back.
    const fd = openSync(path.join(dir, 'pages.db'), 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, 9 * 4096 + 100);
    byte[0]! ^= 0x10;
    writeSync(fd, byte, 0, 1, 9 * 4096 + 100);
    closeSync(fd);
    const seen: Array<[number, string]> = [];
    store = await PageStore.open(dir, { onCorruptPage: (pageId, reason) => seen.push([pageId, reason]) });
    const r = store.begin();
    await assert.rejects(r.read(9), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_CORRUPT') && /page 9 fails its checksum check/.test(err.message));
    assert.deepEqual(seen, [[9, 'checksum']]);
    assert.equal((await r.read(8)).byteLength, store.payloadSize, 'other pages still read');
    await r.commit();
    await store.close();
  });

  it('checkpoints recycle WAL segments through the archiver, and keep them when it fails', async () => {
    const dir = tmpStoreDir();
    const archived: string[] = [];
    let failArchive = false;
    const store = await PageStore.open(dir, {
      ...small,
      segmentSize: 64 * 1024,
      archiver: async (seg) => {
        if (failArchive) throw new Error('archive unavailable');
        archived.push(path.basename(seg.file));
        assert.equal(seg.endLsn - seg.startLsn, 64 * 1024);
      },
    });
    const fill = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        const tx = store.begin();
        await tx.write(1 + (i % 30), 0, Buffer.alloc(2000, i));
        await tx.commit();
      }
    };
    await fill(100);
    const segs = () => readdirSync(path.join(dir, 'wal')).length;
    assert.ok(segs() >= 3, `expected several segments, have ${segs()}`);
    failArchive = true;
    await store.checkpoint();
    assert.ok(segs() >= 3, 'a failing archiver keeps the segments');
    failArchive = false;
    const cp = await store.checkpoint();
    assert.ok(cp.segmentsRecycled >= 2);
    assert.equal(segs(), 1);
    assert.equal(archived.length, cp.segmentsRecycled);
    await store.close();
  });

  it('archives retired segments several at a time, and unlinks in order only up to the first that failed', async () => {
    const dir = tmpStoreDir();
    let inFlight = 0;
    let most = 0;
    let failAt: number | null = null;
    const archived: number[] = [];
    const store = await PageStore.open(dir, {
      ...small,
      segmentSize: 64 * 1024,
      checkpointIntervalMs: 0,
      checkpointWalBytes: 64 * 1024 * 1024,
      archiver: async (seg) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        if (seg.startLsn === failAt) throw new Error('archive unavailable for this one');
        archived.push(seg.startLsn);
      },
    });
    for (let i = 0; i < 400; i++) {
      const tx = store.begin();
      await tx.write(1 + (i % 30), 0, Buffer.alloc(2000, i));
      await tx.commit();
    }
    const live = () => readdirSync(path.join(dir, 'wal')).map((n) => parseInt(n.slice(0, 16), 16)).sort((a, b) => a - b);
    const before = live();
    assert.ok(before.length >= 10, `expected 10 or more segments, have ${before.length}`);
    failAt = before[3]!;
    const cp = await store.checkpoint();
    assert.ok(most > 1, `archived ${most} at a time`);
    assert.equal(cp.segmentsRecycled, 3, 'the three before the failed one recycled');
    assert.deepEqual(live().slice(0, 2), [before[3], before[4]], 'the failed segment and those after it kept');
    failAt = null;
    const again = await store.checkpoint();
    assert.ok(again.segmentsRecycled >= before.length - 4, `the next checkpoint recycled ${again.segmentsRecycled}`);
    assert.deepEqual(before.slice(0, before.length - 1).filter((s) => !archived.includes(s)), [], 'every recycled segment archived');
    await store.close();
  });
});

import assert from 'node:assert/strict';
import { openSync, readdirSync, readFileSync, statSync, closeSync, writeFileSync, writeSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { segmentContentLength, withoutFullSize } from '../../../plugins/pagestore/walSegments.js';
import { readControl } from '../../../plugins/pagestore/control.js';
import { copyStoreDir, dataBytes, killedWriter, tmpStoreDir } from '../../helpers/store.js';

const PAGE = 4096;

function lastSegment(dir: string): string {
  const segs = readdirSync(path.join(dir, 'wal')).sort();
  return path.join(dir, 'wal', segs.at(-1)!);
}

function allPagesVerify(dir: string): void {
  const bytes = dataBytes(dir);
  for (let id = 0; id < bytes.byteLength / PAGE; id++) {
    assert.equal(verifyPage(bytes.subarray(id * PAGE, (id + 1) * PAGE), id), null, `page ${id}`);
  }
}

async function readPage(dir: string, pageId: number): Promise<Buffer> {
  const store = await PageStore.open(dir);
  try {
    const tx = store.begin();
    const p = await tx.read(pageId);
    await tx.commit();
    return p;
  } finally {
    await store.close();
  }
}

describe('recovery', () => {
  it('redoes committed work, rolls back losers, and is idempotent', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 200, open: 3, pages: 64 });
    const stats = await recover(dir);
    assert.equal(stats.transactionsRolledBack, 3);
    assert.ok(stats.recordsRedone >= 400, `redone ${stats.recordsRedone}`);
    assert.equal(stats.recordsUndone, 6);
    allPagesVerify(dir);
    const after = dataBytes(dir);
    const again = await recover(dir);
    assert.equal(again.transactionsRolledBack, 0);
    assert.equal(again.recordsRedone, 0);
    assert.ok(after.equals(dataBytes(dir)), 'a second recovery changes nothing');
    // Committed stamps are there; the losers' writes are not.
    // Page 63 holds a committed stamp (commit 62) and a loser's two writes, which must be gone.
    const p = await readPage(dir, 63);
    assert.ok(p.subarray(100, 160).every((b) => b === 0), 'loser write at 100 rolled back');
    assert.ok(p.subarray(3000, 3011).every((b) => b === 0), 'loser write at 3000 rolled back');
    assert.equal(p.subarray((62 * 37) % 1000, (62 * 37) % 1000 + 7).toString(), 'c62p63;');
  });

  it('gives the same pages with parallel redo as with single-threaded redo', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 3000, open: 2, pages: 128 });
    const copy = path.join(path.dirname(dir), 'copy');
    copyStoreDir(dir, copy);
    const pool = new WorkerPool({ threads: 2 });
    try {
      const par = await recover(dir, { pool });
      const ser = await recover(copy, { serialRedo: true });
      assert.equal(par.redoWorkers, 2);
      assert.equal(ser.redoWorkers, 1);
      assert.equal(par.recordsRedone, ser.recordsRedone);
      assert.ok(dataBytes(dir).equals(dataBytes(copy)));
    } finally {
      await pool.close();
    }
  });

  it('repairs a torn page from its full page image in the log', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 50, open: 0, pages: 16, checkpointAfter: 10 });
    const copy = path.join(path.dirname(dir), 'copy');
    copyStoreDir(dir, copy);
    await recover(copy);
    // Tear page 5 as a crash mid-write would: half of it garbage.
    const fd = openSync(path.join(dir, 'pages.db'), 'r+');
    writeSync(fd, Buffer.alloc(PAGE / 2, 0xee), 0, PAGE / 2, 5 * PAGE + PAGE / 2);
    closeSync(fd);
    const stats = await recover(dir);
    assert.ok(stats.recordsRedone > 0);
    allPagesVerify(dir);
    assert.ok(dataBytes(dir).subarray(5 * PAGE, 6 * PAGE).subarray(32).equals(dataBytes(copy).subarray(5 * PAGE + 32, 6 * PAGE)));
  });

  it('refuses a damaged page that the log cannot rebuild', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 20, open: 0, pages: 64 });
    // Page 40 is not touched by this workload after the last checkpoint.
    const fd = openSync(path.join(dir, 'pages.db'), 'r+');
    writeSync(fd, Buffer.from([1, 2, 3]), 0, 3, 40 * PAGE + 500);
    closeSync(fd);
    await recover(dir); // redo does not read page 40: recovery succeeds, the page stays damaged
    await assert.rejects(readPage(dir, 40), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_CORRUPT'));
  });

  it('ends the log at a torn tail and cuts it', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 30, open: 0, pages: 16 });
    const seg = lastSegment(dir);
    const end = segmentContentLength(readFileSync(seg));
    // A record torn: its last 40 bytes never made it (zeros, as in a segment made at full size).
    const fd = openSync(seg, 'r+');
    writeSync(fd, Buffer.alloc(40), 0, 40, end - 40);
    closeSync(fd);
    const stats = await recover(dir);
    assert.ok(stats.tornTail, 'torn tail reported');
    assert.match(stats.tornTail!.reason, /cut short|checksum, length or LSN mismatch/);
    assert.equal(statSync(seg).size, (await readControl(dir)).segmentSize, 'the segment keeps its full size');
    allPagesVerify(dir);
    // The torn record's bytes were zeroed: recovery's own records follow the last valid one, and nothing torn is left.
    assert.equal((await recover(dir)).tornTail, null);
  });

  it('ends the log at a torn tail of a segment that grows as written (older writers, copies), and cuts it', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 30, open: 0, pages: 16 });
    const seg = lastSegment(dir);
    const whole = readFileSync(seg);
    // As an older writer left it: no FULL_SIZE flag, the file ending with its records.
    writeFileSync(seg, withoutFullSize(whole.subarray(0, segmentContentLength(whole))));
    // A record cut short: the last 40 bytes never made it.
    truncateSync(seg, statSync(seg).size - 40);
    const stats = await recover(dir);
    assert.ok(stats.tornTail, 'torn tail reported');
    assert.match(stats.tornTail!.reason, /cut short/);
    allPagesVerify(dir);
    await recover(dir);
  });

  it('refuses a segment made at full size that was cut inside its records, and changes nothing', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 30, open: 0, pages: 16 });
    const seg = lastSegment(dir);
    truncateSync(seg, segmentContentLength(readFileSync(seg)) - 40);
    const cut = readFileSync(seg);
    const pagesBefore = dataBytes(dir);
    await assert.rejects(recover(dir), (err: unknown) => isRaError(err, 'RA_ERR_WAL_CORRUPT') && /it was created with: cut short/.test(err.message));
    assert.ok(readFileSync(seg).equals(cut), 'the WAL is left as it was');
    assert.ok(dataBytes(dir).equals(pagesBefore), 'no page is written');
  });

  it('stops at a damaged record followed by valid ones, naming its LSN, and changes nothing', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 40, open: 1, pages: 16 });
    const seg = lastSegment(dir);
    const walBefore = readFileSync(seg);
    // Damage a byte in the middle of the segment's records: the records after it are still valid.
    const at = Math.floor(segmentContentLength(walBefore) / 2);
    const fd = openSync(seg, 'r+');
    writeSync(fd, Buffer.from([walBefore[at]! ^ 0xff]), 0, 1, at);
    closeSync(fd);
    const damaged = readFileSync(seg);
    const pagesBefore = dataBytes(dir);
    await assert.rejects(recover(dir), (err: unknown) => isRaError(err, 'RA_ERR_WAL_CORRUPT') && /WAL record at LSN \d+ is damaged .* valid records follow/.test(err.message));
    assert.ok(readFileSync(seg).equals(damaged), 'the WAL is not truncated');
    assert.ok(dataBytes(dir).equals(pagesBefore), 'no page is written');
    assert.ok(readdirSync(dir).includes('LOCK') === false, 'the lock is released');
  });

  it('refuses a WAL whose first needed segment is missing', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 5, open: 0, pages: 16 });
    const { unlinkSync } = await import('node:fs');
    unlinkSync(lastSegment(dir));
    await assert.rejects(recover(dir), (err: unknown) => isRaError(err, 'RA_ERR_WAL_CORRUPT') && /missing/.test(err.message));
  });
});

import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { readControl } from '../../../plugins/pagestore/control.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { streamRedo, type StreamRedoInput } from '../../../plugins/pagestore/redoStream.js';
import { RECORD_MIN_SIZE } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE } from '../../../plugins/pagestore/walSegments.js';
import { copyStoreDir, dataBytes, killedWriter, tmpStoreDir } from '../../helpers/store.js';

/**
 * A killed writer's store with a log of many small segments (64 KiB), big enough for the
 * workers; made once, each test recovers a copy.
 */
let template: string | undefined;
let copies = 0;
function manySegments(): string {
  if (!template) {
    template = tmpStoreDir();
    killedWriter({ dir: template, commits: 6000, open: 3, pages: 256, segmentSize: 64 << 10 });
    const segments = readdirSync(path.join(template, 'wal')).length;
    assert.ok(segments >= 12, `the log spans ${segments} segments`);
  }
  return copyOf(template, `run-${++copies}`);
}

function copyOf(dir: string, name: string): string {
  const copy = path.join(path.dirname(dir), name);
  copyStoreDir(dir, copy);
  return copy;
}

async function streamInput(dir: string, extra: Partial<StreamRedoInput>): Promise<StreamRedoInput> {
  const c = await readControl(dir);
  return {
    walDir: path.join(dir, 'wal'),
    storeId: c.storeId,
    segmentSize: c.segmentSize,
    fromLsn: c.redoLsn,
    redoLsn: c.redoLsn,
    dataFile: path.join(dir, 'pages.db'),
    pageSize: c.pageSize,
    pageCount: c.pageCount,
    ...extra,
  };
}

describe('streaming redo', () => {
  let pool: WorkerPool;
  before(() => {
    pool = new WorkerPool({ threads: 2 });
  });
  after(async () => {
    await pool.close();
  });

  it('recovers the same pages through the rings, on this thread, and in two passes', async () => {
    const dir = manySegments();
    const inline = copyOf(dir, 'inline');
    const twoPass = copyOf(dir, 'two-pass');
    const rings = await recover(dir, { pool });
    const alone = await recover(inline);
    const base = await recover(twoPass, { pool, redo: 'two-pass' });
    assert.equal(rings.redoMode, 'stream');
    assert.equal(rings.redoWorkers, 2);
    assert.equal(alone.redoWorkers, 1);
    assert.equal(base.redoMode, 'two-pass');
    for (const s of [rings, alone]) {
      assert.equal(s.recordsRedone, base.recordsRedone);
      assert.equal(s.recordsUndone, base.recordsUndone);
      assert.equal(s.transactionsRolledBack, 3);
      assert.equal(s.endLsn, base.endLsn);
      assert.equal(s.walRecordsScanned, base.walRecordsScanned);
    }
    assert.ok(dataBytes(dir).equals(dataBytes(twoPass)), 'rings: same data file as two-pass');
    assert.ok(dataBytes(inline).equals(dataBytes(twoPass)), 'this thread: same data file as two-pass');
  });

  it('treats bytes past the segment size in the newest segment as a torn tail, as two passes do', async () => {
    const dir = manySegments();
    const wal = path.join(dir, 'wal');
    const newest = path.join(wal, readdirSync(wal).sort().at(-1)!);
    const fd = openSync(newest, 'a');
    writeSync(fd, Buffer.alloc(70_000, 0x5a)); // longer than a 64 KiB segment, whatever it held
    closeSync(fd);
    const inline = copyOf(dir, 'junk-inline');
    const twoPass = copyOf(dir, 'junk-two-pass');
    const base = await recover(twoPass, { redo: 'two-pass' });
    for (const [copy, s] of [[dir, await recover(dir, { pool })], [inline, await recover(inline)]] as const) {
      assert.equal(s.redoMode, 'stream');
      assert.equal(s.endLsn, base.endLsn);
      assert.deepEqual(s.tornTail, base.tornTail);
      assert.equal(s.recordsRedone, base.recordsRedone);
      assert.ok(dataBytes(copy).equals(dataBytes(twoPass)), 'same data file as two-pass');
    }
  });

  it('writes pages back early when they outgrow the page budget, and ends with the same pages', async () => {
    const dir = manySegments();
    const inline = copyOf(dir, 'budget-inline');
    const twoPass = copyOf(dir, 'budget-two-pass');
    await recover(twoPass, { redo: 'two-pass' });
    const c = await readControl(dir);
    // A budget of a few pages per worker: most pages are written back before redo ends.
    const pageBudgetBytes = 8 * c.pageSize;
    for (const [copy, extra] of [[dir, { pool, pageBudgetBytes }], [inline, { pageBudgetBytes }]] as const) {
      const out = await streamRedo(await streamInput(copy, extra));
      assert.ok(out.redo.applied > 1000, `applied ${out.redo.applied}`);
    }
    // Redo alone leaves the losers' changes; finish both as recovery does, then compare.
    await recover(dir, { pool });
    await recover(inline);
    assert.ok(dataBytes(dir).equals(dataBytes(twoPass)), 'rings, small budget: same data file as two-pass');
    assert.ok(dataBytes(inline).equals(dataBytes(twoPass)), 'this thread, small budget: same data file as two-pass');
  });

  it('reuses window slots and waits on full rings without losing or reordering a record', async () => {
    const dir = manySegments();
    const wide = copyOf(dir, 'wide');
    // 4 slots over a log of dozens of segments: the reader waits for workers to free slots; a
    // 16-entry ring fills on every segment.
    const narrow = await streamRedo(await streamInput(dir, { pool, windowSegments: 4, ringEntries: 16 }));
    const reference = await streamRedo(await streamInput(wide, {}));
    assert.equal(narrow.redoWorkers, 2);
    assert.equal(reference.redoWorkers, 1);
    assert.ok(narrow.redo.applied > 1000, `applied ${narrow.redo.applied}`);
    assert.equal(narrow.redo.applied, reference.redo.applied);
    assert.equal(narrow.redo.skipped, reference.redo.skipped);
    assert.deepEqual(narrow.losers.sort((a, b) => a.txId - b.txId), reference.losers.sort((a, b) => a.txId - b.txId));
    assert.ok(dataBytes(dir).equals(dataBytes(wide)));
    // Undo reads losers' records back through the window, whatever it holds now.
    for (const l of narrow.losers) assert.ok((await narrow.records.record(l.lastLsn)).at >= 0);
  });

  it('reads back every record outside the window as it is on disk, short and long', async () => {
    const dir = manySegments();
    const out = await streamRedo(await streamInput(dir, { windowSegments: 4 }));
    const segs = readdirSync(path.join(dir, 'wal')).sort();
    const c = await readControl(dir);
    let records = 0;
    let longest = 0;
    // The first segments left the 4-slot window long ago: each record is read from its file.
    for (const name of segs.slice(0, -5)) {
      const file = readFileSync(path.join(dir, 'wal', name));
      const start = parseInt(name, 16);
      for (let at = SEGMENT_HEADER_SIZE; at + RECORD_MIN_SIZE <= file.length; ) {
        const total = file.readUInt32LE(at);
        if (total < RECORD_MIN_SIZE || Number(file.readBigUInt64LE(at + 8)) !== start + at) break;
        if (start + at >= c.redoLsn) {
          const { bytes, at: p } = await out.records.record(start + at);
          assert.ok(Buffer.from(bytes.subarray(p, p + total)).equals(file.subarray(at, at + total)), `record at LSN ${start + at}`);
          records++;
          longest = Math.max(longest, total);
        }
        at += total;
      }
    }
    out.records.close();
    assert.ok(records > 1000, `${records} records read back`);
    assert.ok(longest > 4096, `a record longer than the first read (${longest} bytes)`);
  });

  it('writes no page when damage followed by valid records turns up after redo has begun', async () => {
    const dir = manySegments();
    const segs = readdirSync(path.join(dir, 'wal')).sort();
    // Damage a byte in the middle of a late segment: the workers have applied earlier ones by then.
    const seg = path.join(dir, 'wal', segs.at(-3)!);
    const bytes = readFileSync(seg);
    const at = Math.floor(bytes.byteLength / 2);
    const fd = openSync(seg, 'r+');
    writeSync(fd, Buffer.from([bytes[at]! ^ 0xff]), 0, 1, at);
    closeSync(fd);
    const before = dataBytes(dir);
    await assert.rejects(
      streamRedo(await streamInput(dir, { pool, windowSegments: 4 })),
      (err: unknown) => isRaError(err, 'RA_ERR_WAL_CORRUPT') && /valid records follow/.test((err as Error).message),
    );
    await assert.rejects(recover(dir, { pool }), (err: unknown) => isRaError(err, 'RA_ERR_WAL_CORRUPT'));
    assert.ok(dataBytes(dir).equals(before), 'no page is written');
  });

  it('stops the reader when the workers fail, writes nothing and throws their error', async () => {
    const dir = manySegments();
    const before = dataBytes(dir);
    // The workers open the data file themselves; one that cannot fails at once, the reader must not wait for it.
    const input = await streamInput(dir, { pool, windowSegments: 4, ringEntries: 16 });
    await assert.rejects(streamRedo({ ...input, dataFile: path.join(dir, 'no-such-file') }), (err: unknown) => /ENOENT/.test((err as Error).message));
    assert.ok(dataBytes(dir).equals(before), 'no page is written');
    // The pool is still usable: the next recovery goes through.
    const stats = await recover(dir, { pool });
    assert.equal(stats.redoWorkers, 2);
    assert.equal(stats.transactionsRolledBack, 3);
  });
});

/**
 * The end of a checkpoint as recovery runs it: the checkpoint record's flush overlapping the
 * data file's sync (`pagesDurable`), and the retired segments unlinked all at once.
 */
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { completeCheckpoint } from '../../../plugins/pagestore/checkpoint.js';
import { readControl } from '../../../plugins/pagestore/control.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { WalWriter } from '../../../plugins/pagestore/walWriter.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 64 * 1024;

function segmentStarts(dir: string): number[] {
  return readdirSync(path.join(dir, 'wal'))
    .filter((n) => n.endsWith('.wal'))
    .map((n) => parseInt(n.slice(0, 16), 16))
    .sort((a, b) => a - b);
}

/** A recovered store whose log spans several segments, and a writer at its end. */
async function storeWithWriter(): Promise<{ dir: string; wal: WalWriter }> {
  const dir = tmpStoreDir();
  killedWriter({ dir, commits: 400, open: 2, pages: 64, segmentSize: SEGMENT });
  await recover(dir);
  const c = await readControl(dir);
  const last = segmentStarts(dir).at(-1)!;
  const end = last + statSync(path.join(dir, 'wal', `${last.toString(16).padStart(16, '0')}.wal`)).size;
  return { dir, wal: await WalWriter.open(path.join(dir, 'wal'), c.storeId, c.segmentSize, end) };
}

describe('checkpoint', () => {
  it('recovery unlinks every segment wholly below its checkpoint, and only those', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 400, open: 2, pages: 64, segmentSize: SEGMENT });
    const before = segmentStarts(dir);
    assert.ok(before.length >= 4, `the log spans ${before.length} segments`);
    await recover(dir);
    const c = await readControl(dir);
    const after = segmentStarts(dir);
    const retired = before.filter((s) => s + SEGMENT <= c.redoLsn);
    assert.ok(retired.length >= 3, `${retired.length} segments below the checkpoint`);
    assert.deepEqual(after.filter((s) => retired.includes(s)), [], 'a retired segment is left');
    assert.deepEqual(after.filter((s) => s + SEGMENT <= c.redoLsn), [], 'a segment below the checkpoint is left');
    assert.ok(after.includes(Math.floor(c.redoLsn / SEGMENT) * SEGMENT), 'the segment holding the redo LSN is kept');
    const again = await recover(dir);
    assert.equal(again.recordsRedone + again.recordsUndone, 0);
  });

  it('switches the control file only once the pages still syncing are durable', async () => {
    const { dir, wal } = await storeWithWriter();
    try {
      const c0 = await readControl(dir);
      const geometry = { pageSize: c0.pageSize, pageCount: c0.pageCount, segmentSize: c0.segmentSize, storeId: c0.storeId };
      let seenWhileSyncing = -1;
      const pagesDurable = new Promise<void>((resolve) =>
        setTimeout(() => {
          void readControl(dir).then((c) => {
            seenWhileSyncing = c.checkpointLsn;
            resolve();
          });
        }, 50),
      );
      const out = await completeCheckpoint(dir, wal, geometry, { redoLsn: wal.endLsn, nextTxId: c0.nextTxId, att: [], dpt: [] }, { required: false }, undefined, pagesDurable);
      assert.equal(seenWhileSyncing, c0.checkpointLsn, 'the control file was switched before the pages were durable');
      assert.equal((await readControl(dir)).checkpointLsn, out.lsn);
    } finally {
      await wal.close();
    }
  });

  it('keeps the previous checkpoint when the pages fail to sync, and the store recovers', async () => {
    const { dir, wal } = await storeWithWriter();
    const c0 = await readControl(dir);
    const segments = segmentStarts(dir);
    try {
      const geometry = { pageSize: c0.pageSize, pageCount: c0.pageCount, segmentSize: c0.segmentSize, storeId: c0.storeId };
      const pagesDurable = Promise.reject(new Error('fdatasync: EIO'));
      await assert.rejects(completeCheckpoint(dir, wal, geometry, { redoLsn: wal.endLsn, nextTxId: c0.nextTxId, att: [], dpt: [] }, { required: false }, undefined, pagesDurable), /EIO/);
    } finally {
      await wal.close();
    }
    assert.equal((await readControl(dir)).checkpointLsn, c0.checkpointLsn);
    assert.deepEqual(segmentStarts(dir), segments, 'no segment recycled');
    // The checkpoint record that was flushed but never pointed at is skipped.
    const again = await recover(dir);
    assert.equal(again.recordsRedone + again.recordsUndone, 0);
  });
});

// Adversarial (session 10, adv10), against b56300b: the snapshot's WAL copy ends the log before a
// newest segment shorter than its header ("being created"). But the copy reads the handle it
// pinned when the snapshot began. If the owner crashed while creating that segment, its restart's
// recovery unlinks the empty file (WalWriter.open: segments past the end of the log go) and the
// restarted owner creates the segment afresh — a new file — and commits into it. The pinned handle
// still shows the old, empty inode: the copy ends before the new commits, yet its `readAt` (the
// manifest's finishedAt) is after they were acknowledged. Restore by time trusts a snapshot
// finished at or after T to hold every commit acknowledged by T (restore.ts lsnAtTime), so a
// restore to such a T would silently lack them. Before b56300b the copy failed loudly instead.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { isRaError } from '../../../core/errors.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { segmentContentLength, segmentName, withoutFullSize } from '../../../plugins/pagestore/walSegments.js';
import { Compressor } from '../../../plugins/snapshot-manager/compressor.js';
import { FrameWriter } from '../../../plugins/snapshot-manager/frameWriter.js';
import { LiveWal } from '../../../plugins/snapshot-manager/walCopy.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

const SEGMENT = 64 * 1024;

async function commits(s: PageStore, n: number, fill: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = s.begin();
    await tx.write(1 + (i % 30), 0, Buffer.alloc(2000, fill + i));
    await tx.commit();
  }
}

describe('snapshot WAL copy: a pinned segment that was being created, then re-created by the restarted owner', () => {
  const pool = new WorkerPool({ threads: 1 });
  after(() => pool.close());

  it("the copy holds every commit acknowledged before its readAt, or fails", async () => {
    const root = tmpStoreDir('ra-adv10-walcopy-');
    const store = path.join(root, 'store');
    const snaps = path.join(root, 'snaps');
    const opts = { pageCount: 32, pageSize: 4096, segmentSize: SEGMENT, checkpointIntervalMs: 0, checkpointWalBytes: Number.MAX_SAFE_INTEGER, controlSocket: false };
    const first = await PageStore.open(store, { create: true, ...opts });
    await commits(first, 40, 1);
    await first.close();
    // The owner died creating its next segment: the file exists, its header does not. Only an
    // older writer (segments growing as written) leaves that: the writer now makes a segment aside
    // and renames it in whole, and recovery refuses a headerless file after a FULL_SIZE segment.
    // So the segment before it is made as an older writer left it.
    const walDir = path.join(store, 'wal');
    const newest = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!;
    const whole = readFileSync(path.join(walDir, newest));
    writeFileSync(path.join(walDir, newest), withoutFullSize(whole.subarray(0, segmentContentLength(whole))));
    const next = parseInt(newest.slice(0, -4), 16) + SEGMENT;
    writeFileSync(path.join(walDir, segmentName(next)), Buffer.alloc(0));

    // The snapshot begins (pins the live WAL, the empty segment with it) ...
    const { control, ckpt, wal: live } = await LiveWal.pin(pagestore, store);
    try {
      // ... the restarted owner's recovery drops the empty file, and it commits past that LSN.
      const owner = await PageStore.open(store, opts);
      let n = 0;
      while (owner.status().flushedLsn < next + 4096) await commits(owner, 1, 100 + n++);
      const acked = owner.status().flushedLsn;
      const ackedAt = Date.now();
      assert.ok(readdirSync(walDir).includes(segmentName(next)), 'the owner commits into a segment at that start again');

      const tmp = path.join(root, 'copy');
      mkdirSync(path.join(tmp, 'wal'), { recursive: true });
      const compressor = new Compressor(pool, new FrameWriter(), 2);
      const walFromLsn = Math.min(control.redoLsn, ...ckpt.activeTransactions.map((a) => a[1]));
      const out = await live.copy(tmp, snaps, walFromLsn, control.storeId, compressor).catch((err: unknown) => err);
      await compressor.drain().catch(() => undefined);
      await owner.close();
      if (out instanceof Error) {
        assert.ok(isRaError(out, 'RA_ERR_WAL_CORRUPT') || isRaError(out, 'RA_ERR_WAL_GAP'), `a loud failure is fine: ${out.message}`);
        return;
      }
      const copy = out as { endLsn: number; readAt: number };
      assert.ok(copy.readAt >= ackedAt, 'readAt is after the commits were acknowledged');
      assert.ok(copy.endLsn >= acked, `the copy ends at LSN ${copy.endLsn} but claims (readAt) every commit acknowledged by then; the log was durable to ${acked}`);
    } finally {
      await live.close();
    }
  });
});

// A snapshot taken while the store is creating its next WAL segment: the file exists before its
// header is written. The copy of the WAL ends before it, as the summary and recovery do; it used
// to fail ("shorter than its header"), and a chaos trial's repair by a new full snapshot with it.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { segmentName } from '../../../plugins/pagestore/walSegments.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { verifySnapshots } from '../../../plugins/snapshot-manager/verify.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

const SEGMENT = 64 * 1024;

describe('snapshot WAL copy and a segment being created', () => {
  const pool = new WorkerPool({ threads: 1 });
  after(() => pool.close());

  for (const bytes of [0, 40]) {
    it(`ends the copy before a newest segment of ${bytes} bytes (shorter than its header), and refuses one in the middle`, async () => {
      const root = tmpStoreDir('ra-walcopy-new-');
      const store = path.join(root, 'store');
      const snaps = path.join(root, 'snaps');
      const s = await PageStore.open(store, { create: true, pageCount: 32, pageSize: 4096, segmentSize: SEGMENT, checkpointIntervalMs: 0 });
      for (let i = 0; i < 40; i++) {
        const tx = s.begin();
        await tx.write(1 + (i % 30), 0, Buffer.alloc(2000, i + 1));
        await tx.commit();
      }
      const end = s.status().flushedLsn;
      await s.close(); // its last checkpoint leaves redo in the newest segment
      const walDir = path.join(store, 'wal');
      const last = Math.floor(end / SEGMENT) * SEGMENT;
      const creating = path.join(walDir, segmentName(last + SEGMENT));
      writeFileSync(creating, Buffer.alloc(bytes));

      const m = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
      assert.ok(m.endLsn >= end && m.endLsn < last + SEGMENT, `the copy ends at ${m.endLsn}, in the segment before the one being created (log end ${end})`);
      assert.deepEqual((await verifySnapshots(pagestore, snaps)).problems, []);

      // The same short file with a segment after it is damage, not a creation under way.
      writeFileSync(path.join(walDir, segmentName(last + 2 * SEGMENT)), Buffer.alloc(0));
      await assert.rejects(createSnapshot({ engine: pagestore, store, dir: snaps, pool }), /shorter than its header/);
    });
  }
});

// rebuildPage (snapshot + WAL) at the moment the owner creates its next WAL segment (found by the
// chaos harness, page-torn: the new segment was still shorter than its header, the repair called
// it corrupt, and the page was left unrepaired). A segment being created is the end of the log;
// one with a bad header followed by later segments is still corruption.
import assert from 'node:assert/strict';
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { PAGE_HEADER_SIZE, verifyPage } from '../../../plugins/pagestore/format.js';
import { segmentPath } from '../../../plugins/pagestore/walSegments.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { rebuildPage } from '../../../plugins/snapshot-manager/pageSource.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 65536;

describe('rebuildPage while the owner creates a WAL segment', () => {
  it('takes a newest segment shorter than its header (or all zeros) as the end of the log', async () => {
    const root = path.dirname(tmpStoreDir('ra-rebuild-newseg-'));
    const dir = path.join(root, 'store');
    const snaps = path.join(root, 'snaps');
    const pool = new WorkerPool({ threads: 1 });
    const store = await PageStore.open(dir, { create: true, pageCount: 32, pageSize: 4096, segmentSize: SEGMENT, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    try {
      const put = async (v: string) => {
        const tx = store.begin();
        await tx.write(7, 0, Buffer.from(v));
        await tx.commit();
      };
      await put('before the snapshot');
      await createSnapshot({ engine: pagestore, store: dir, dir: snaps, pool });
      await put('after the snapshot');
      const next = (Math.floor(store.endLsn / SEGMENT) + 1) * SEGMENT;
      const file = segmentPath(path.join(dir, 'wal'), next);
      for (const bytes of [Buffer.alloc(0), Buffer.alloc(20, 0), Buffer.alloc(64, 0)]) {
        writeFileSync(file, bytes);
        const r = await rebuildPage(pagestore, dir, snaps, 7);
        assert.equal(verifyPage(r.image, 7), null);
        assert.match(r.image.subarray(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + 32).toString(), /^after the snapshot/, `with a ${bytes.byteLength}-byte newest segment`);
      }
      // Not the newest: a later segment exists, so this one's missing header is damage.
      writeFileSync(file, Buffer.alloc(20, 0));
      const later = segmentPath(path.join(dir, 'wal'), next + SEGMENT);
      const fd = openSync(later, 'w');
      writeSync(fd, Buffer.alloc(64, 1));
      closeSync(fd);
      await assert.rejects(rebuildPage(pagestore, dir, snaps, 7), /shorter than its header, and the archive has no copy/);
    } finally {
      await store.close().catch(() => undefined);
      await pool.close();
    }
  });
});

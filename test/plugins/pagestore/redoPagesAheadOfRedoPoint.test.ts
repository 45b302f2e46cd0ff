// Adversarial (session 12, adv12), on c2a0e5f (redo starts a page from its full image without
// reading it): the store where that matters most. A writer killed inside a checkpoint after its
// pages reached the data file and before the control file named it (fault point
// checkpoint-before-control) leaves every page it wrote newer than most of the redo range: read
// first, redo skipped those records; now each page whose first record has an image is rebuilt
// from it and every record after. Through the workers' rings with a page budget of a few pages
// (early write-back, the cache cleared, pages started again mid-log from the file or an image),
// the data file must come out as the two-pass redo (which reads every page) leaves it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { readControl } from '../../../plugins/pagestore/control.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { streamRedo } from '../../../plugins/pagestore/redoStream.js';
import { fixture } from '../../helpers/paths.js';
import { copyStoreDir, dataBytes, tmpStoreDir } from '../../helpers/store.js';

describe('redo of pages the data file holds ahead of the redo point', () => {
  let pool: WorkerPool;
  before(() => {
    pool = new WorkerPool({ threads: 2 });
  });
  after(async () => {
    await pool.close();
  });

  it('ends with the same data file through the rings under a tiny page budget as two passes', async () => {
    const dir = tmpStoreDir('ra-ahead-');
    // The store's creation records a checkpoint (1), the writer one every 400 commits; it dies in
    // its seventh, pages written and the control file still at the sixth's redo point (8).
    const spec = { dir, commits: 3200, pages: 120, checkpointEvery: 400, seed: 12, segmentSize: 64 << 10 };
    const r = spawnSync(process.execPath, [fixture('pagestoreCheckpointsKill.js'), JSON.stringify(spec)], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, RA_FAULT: 'checkpoint-before-control:8' } });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    assert.ok(!r.stdout.includes('ready'), 'killed inside the checkpoint');
    const twoPass = `${dir}-two-pass`;
    copyStoreDir(dir, twoPass);
    const c = await readControl(dir);
    const base = await recover(twoPass, { redo: 'two-pass', pool });
    assert.ok(base.recordsSkipped > 300, `two passes skip what the pages already hold (${base.recordsSkipped})`);
    const out = await streamRedo({
      walDir: path.join(dir, 'wal'),
      storeId: c.storeId,
      segmentSize: c.segmentSize,
      fromLsn: c.redoLsn,
      redoLsn: c.redoLsn,
      dataFile: path.join(dir, 'pages.db'),
      pageSize: c.pageSize,
      pageCount: c.pageCount,
      pool,
      pageBudgetBytes: 6 * c.pageSize,
      windowSegments: 4,
    });
    assert.equal(out.redoWorkers, 2);
    assert.deepEqual(out.redo.corrupt, []);
    // Pages started from their images, not read: records two passes skipped were applied.
    assert.ok(out.redo.applied > base.recordsRedone, `stream applied ${out.redo.applied}, two passes ${base.recordsRedone}`);
    // No losers (the writer died between transactions): redo alone leaves what recovery leaves.
    assert.equal(base.transactionsRolledBack, 0);
    assert.ok(dataBytes(dir).equals(dataBytes(twoPass)), 'same data file as the two-pass redo');
  });
});

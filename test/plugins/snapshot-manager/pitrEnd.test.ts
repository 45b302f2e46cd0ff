// restore --time T beyond the end of the archived WAL is refused, as PostgreSQL refuses a recovery
// that ends before its target, rather than restore silently to an earlier point (#16 item 3).
import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { commits, restore, restoreJson, sleep, storeOptions } from './pitrHelpers.js';

it('--time past the end of the archived WAL: refused, saying what to do; --lsn to its end works', async () => {
  const root = path.dirname(tmpStoreDir('ra-pitr-end-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  const s = await PageStore.open(store, { ...storeOptions, checkpointWalBytes: 1 << 30, archiver: walArchiver(pagestore, snaps) });
  try {
    await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await commits(s, 20, 'a');
    const m = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
    await commits(s, 20, 'b'); // in the live segment only: then the disk with the store dies
    await sleep(20);
    const T = Date.now();
    const r = restore(snaps, path.join(root, 'r-time'), '--time', String(T));
    assert.equal(r.status, 2, `restore --time past the archived WAL succeeded: ${r.stdout}`);
    assert.match(r.stderr, new RegExp(`${new Date(T).toISOString()} is beyond the archived WAL: it ends at LSN ${m.endLsn} .*archive the rest of the WAL .* or restore to what is archived with --lsn ${m.endLsn}`));
    // What the message offers works.
    const l = restoreJson(snaps, path.join(root, 'r-lsn'), '--lsn', String(m.endLsn));
    assert.equal(l.targetLsn, m.endLsn);
    // A T before the last snapshot finished is covered by it: restored.
    const before = restoreJson(snaps, path.join(root, 'r-before'), '--time', String(m.finishedAt));
    assert.ok(before.stoppedAt!.time! <= m.finishedAt);
  } finally {
    await s.close();
    await pool.close();
  }
});

// restore --time T on a store quiet between its snapshot and T: the snapshot is the store at T
// (#16 item 3, adversarial review: it was refused, "no commit ... is at or before T").
import assert from 'node:assert/strict';
import path from 'node:path';
import { it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { commits, differing, pagesNow, restore, restoreJson, sleep, storeOptions } from './pitrHelpers.js';

it('--time T on a store quiet since a checkpoint and a snapshot before T', async () => {
  const root = path.dirname(tmpStoreDir('ra-pitr-quiet-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  const s = await PageStore.open(store, { ...storeOptions, checkpointWalBytes: 1 << 30, archiver: walArchiver(pagestore, snaps) });
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
  await commits(s, 100, 'a');
  const ref = await pagesNow(s); // the store at T
  await s.checkpoint(); // the periodic checkpoint, then the nightly snapshot, then a quiet night
  const m = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
  await sleep(10);
  const T = Date.now();
  await sleep(10);
  await commits(s, 100, 'c'); // the morning's work, then a bad deploy: restore to T
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
  await s.close();
  await pool.close();
  const to = path.join(root, 'r');
  const r = restoreJson(snaps, to, '--time', String(T));
  assert.deepEqual(differing(to, ref), []);
  // Stopped at the snapshot's end; its WAL (from the checkpoint) holds no commit: null, and said so.
  assert.equal(r.targetLsn, m.endLsn);
  assert.equal(r.stoppedAt, null);
  const text = restore(snaps, path.join(root, 'r-text'), '--time', String(T));
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stderr, new RegExp(`stopped at snapshot ${m.id}'s consistency point \\(LSN ${m.endLsn}\\); the last commit before it is not known`));
});

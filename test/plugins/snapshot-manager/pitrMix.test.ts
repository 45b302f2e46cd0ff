import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { cli } from '../../helpers/cli.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';

const PAGES = 64;
const PAGE = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function pagesNow(s: PageStore): Promise<Buffer[]> {
  const tx = s.begin();
  const out: Buffer[] = [Buffer.alloc(0)];
  for (let id = 1; id < PAGES; id++) out.push(Buffer.from(await tx.read(id)));
  await tx.commit();
  return out;
}
function differing(dir: string, ref: Buffer[]): number[] {
  const data = readFileSync(path.join(dir, 'pages.db'));
  const bad: number[] = [];
  for (let id = 1; id < PAGES; id++) if (!data.subarray(id * PAGE + 32, (id + 1) * PAGE).equals(ref[id]!)) bad.push(id);
  return bad;
}
async function commits(s: PageStore, n: number, tag: string) {
  for (let i = 0; i < n; i++) {
    const tx = s.begin();
    await tx.write(1 + ((i * 7) % (PAGES - 1)), (i * 13) % 2000, Buffer.from(`${tag}-${i};`.repeat(8)));
    await tx.commit();
  }
}
it('adversary: T inside a long transaction that commits later, an abort, checkpoints, several incrementals', async () => {
  const root = path.dirname(tmpStoreDir('ra-adv-mix-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  const s = await PageStore.open(store, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 65536, checkpointWalBytes: 80 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
  await commits(s, 150, 'a');
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
  await commits(s, 100, 'b');
  const ref = await pagesNow(s); // the committed state at T (L and A below never commit by T)
  const L = s.begin();
  await L.write(5, 100, Buffer.from('LONG-TX-UNCOMMITTED-AT-T'.repeat(10)));
  await L.write(40, 0, Buffer.from('LONG-TX-2'.repeat(30)));
  const A = s.begin();
  await A.write(6, 0, Buffer.from('ABORTED'.repeat(30)));
  await A.abort();
  await s.checkpoint(); // with L active
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true }); // L's change in its pages
  const X = s.begin();
  await X.write(10, 0, Buffer.from('X-AFTER-SNAPSHOT'.repeat(10)));
  await X.commit();
  const rx = s.begin();
  ref[10] = Buffer.from(await rx.read(10));
  await rx.commit();
  await sleep(10);
  const T = Date.now();
  await sleep(10);
  await commits(s, 120, 'c');
  await L.write(7, 0, Buffer.from('LONG-TX-3'.repeat(30)));
  await L.commit();
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
  await commits(s, 40, 'd');
  await s.checkpoint();
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
  await s.close();
  await pool.close();
  const to = path.join(root, 'r');
  const r = cli(['restore', '--snapshot-dir', snaps, '--to', to, '--no-progress', '--json', '--time', String(T)]);
  assert.equal(r.status, 0, r.stderr);
  console.log(JSON.stringify((JSON.parse(r.stdout) as { snapshots: string[] }).snapshots), JSON.stringify((JSON.parse(r.stdout) as { stoppedAt: unknown }).stoppedAt), 'rolled back', (JSON.parse(r.stdout) as { transactionsRolledBack: number }).transactionsRolledBack);
  assert.deepEqual(differing(to, ref), []);
});

/**
 * Repairing one corrupt page (DataRepairer, `repair-page`) against restoring the whole store
 * from the same snapshot and WAL — what one does without block-level repair — in the same run.
 *
 * A store of `--mib` MiB (8 KiB pages, default 256 MiB) gets a full snapshot, then `--wal-mib`
 * MiB of WAL (default 64) from transactions over random pages with checkpoints every 16 MiB, so
 * the WAL a repair replays is partly archived (compressed) and partly live. Then, for
 * `--pages` pages changed since the snapshot (default 20), each corrupted on disk in turn:
 *   - offline: nobody has the store open; repaired under the store lock;
 *   - online: the store is open in this process (its control socket serving) and the page is
 *     not in its cache; repaired through the socket, the owner verifying and installing it.
 * Baseline: `restoreSnapshot` of the same snapshot + WAL into a new directory (decompress,
 * replay, verify every page).
 * Goal (issue #7): one page repaired from snapshot + WAL in < 50 ms.
 *
 * Run: npm run bench:repair   (options: --mib M, --wal-mib W, --pages N)
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkerPool } from '../core/workerPool.js';
import { repairPage, type PageRepairOutcome } from '../plugins/data-repairer/repair.js';
import { PageStore } from '../plugins/pagestore/pageStore.js';
import { dataFileOf } from '../plugins/pagestore/storeFiles.js';
import { createSnapshot } from '../plugins/snapshot-manager/createSnapshot.js';
import { restoreSnapshot } from '../plugins/snapshot-manager/restore.js';
import { walArchiver } from '../plugins/snapshot-manager/walArchive.js';
import { prng } from '../test/helpers/prng.js';
import { numArg } from './lib/args.js';
import { report } from './lib/report.js';
import { makePageStoreEngine } from '../plugins/pagestore/face.js';
import { snapshotPageSource, type RebuiltPage } from '../plugins/snapshot-manager/pageSource.js';

const pagestore = makePageStoreEngine();

const PAGE_SIZE = 8192;

const STORE_MIB = numArg('mib', 256);
const WAL_MIB = numArg('wal-mib', 64);
const PAGES_TRIED = numArg('pages', 20);
const PAGES = (STORE_MIB * 2 ** 20) / PAGE_SIZE;

function corrupt(store: string, pageId: number): void {
  const fd = openSync(dataFileOf(store), 'r+');
  writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, pageId * PAGE_SIZE + 4000);
  closeSync(fd);
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))]!;

const root = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-repair-'));
const pool = new WorkerPool({ threads: 2 });
try {
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const open = () => PageStore.open(store, { create: true, pageCount: PAGES, pageSize: PAGE_SIZE, checkpointIntervalMs: 0, checkpointWalBytes: 16 << 20, cacheBytes: 8 << 20, archiver: walArchiver(pagestore, snaps) });
  let s = await open();
  const rnd = prng(3);
  const payload = Buffer.alloc(512);
  // Every page gets content, in big transactions; then the full snapshot.
  for (let p = 1; p < PAGES; p += 256) {
    const tx = s.begin();
    for (let k = p; k < Math.min(PAGES, p + 256); k++) await tx.write(k, 0, payload.fill(k & 0xff));
    await tx.commit();
  }
  await s.checkpoint();
  await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
  // WAL after the snapshot: small transactions over random pages.
  const walStart = s.endLsn;
  const touched = new Set<number>();
  for (let i = 0; s.endLsn - walStart < WAL_MIB * 2 ** 20; i++) {
    const tx = s.begin();
    for (let k = 0; k < 4; k++) {
      const p = 1 + (rnd() % (PAGES - 1));
      touched.add(p);
      await tx.write(p, (rnd() % 14) * 512, payload.fill(i & 0xff));
    }
    await tx.commit();
  }
  const walBytes = s.endLsn - walStart;
  await s.close();

  // Pages changed since the snapshot: each repair replays WAL records, not just the snapshot image.
  const candidates = [...touched];
  const victims = Array.from({ length: PAGES_TRIED }, () => candidates[rnd() % candidates.length]!);
  const offline: PageRepairOutcome[] = [];
  for (const p of victims) {
    corrupt(store, p);
    offline.push(await repairPage(pagestore, { store, sources: [snapshotPageSource(() => snaps)] }, p));
  }
  s = await open();
  const online: PageRepairOutcome[] = [];
  for (const p of victims) {
    corrupt(store, p);
    const o = await repairPage(pagestore, { store, sources: [snapshotPageSource(() => snaps)] }, p);
    if (o.source !== 'snapshot') throw new Error(`page ${p} came from ${o.source}; the bench expects an uncached page`);
    online.push(o);
    if (process.env.RA_BENCH_DEBUG) console.log(p, o.durationMs, JSON.stringify(o.rebuilt!.segments), o.rebuilt!.recordsApplied);
  }
  await s.close();

  const t0 = performance.now();
  const restored = await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to: path.join(root, 'restored'), pool });
  const restoreMs = performance.now() - t0;

  const ms = (xs: PageRepairOutcome[]) => xs.map((o) => o.durationMs);
  const records = online.map((o) => o.rebuilt!.recordsApplied);
  const segs = online[0]!.rebuilt!.segments as RebuiltPage['segments'];
  const p50 = { offline: pct(ms(offline), 50), online: pct(ms(online), 50) };
  const p95 = { offline: pct(ms(offline), 95), online: pct(ms(online), 95) };
  report({
    bench: 'repair',
    baseline: 'full restore of the same snapshot + WAL',
    rows: [
      { name: 'full restore of the same snapshot + WAL', value: restoreMs, unit: 'ms', extra: { pagesVerified: restored.pagesVerified, recordsRedone: restored.recordsRedone } },
      { name: 'repair one page, offline (store lock), p50', value: p50.offline, unit: 'ms', extra: { p95: p95.offline } },
      { name: 'repair one page, online (control socket, uncached), p50', value: p50.online, unit: 'ms', extra: { p95: p95.online, recordsAppliedMedian: pct(records, 50), liveSegments: segs.live, archivedSegments: segs.archived } },
    ],
    params: { storeBytes: PAGES * PAGE_SIZE, pageSize: PAGE_SIZE, walBytesAfterSnapshot: walBytes, pagesTried: PAGES_TRIED },
    goal: { description: `one page from snapshot + WAL in < 50 ms (p95 offline ${p95.offline} ms, online ${p95.online} ms; p50 online ${(restoreMs / p50.online).toFixed(0)}× faster than the restore)`, met: p95.offline < 50 && p95.online < 50 },
  });
} finally {
  await pool.close();
  rmSync(root, { recursive: true, force: true });
}

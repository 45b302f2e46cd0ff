/**
 * Restore against `lz4 -d`, on its own and with where the time goes (#16 item 4).
 *
 * The snapshot bench's store (1 GiB of 8 KiB pages, `lz4 -1` ratio ≈ 2.5), one full snapshot on
 * 2 workers and an incremental after 1 % of pages changed; then, interleaved in rounds, `lz4 -d`
 * of `lz4 -1`'s output and a restore of the full + incremental into a new directory (best round
 * of each; the least CPU time of each is kept too, being what a loaded machine changes least). The restore's phases (RestoreTimings) are printed and kept for its best round; the
 * load average before and after is kept too, since other processes share the CPUs.
 *
 * `lz4 -d` leaves its output in the page cache; the restore fdatasyncs the data file and the
 * log. A third row, `lz4 -d` followed by an fdatasync of its output, is the like-for-like one.
 *
 * Run: npm run bench:restore   (options: --rounds N, --mib M)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkerPool } from '../core/workerPool.js';
import { makePageStoreEngine } from '../plugins/pagestore/face.js';
import { PageStore } from '../plugins/pagestore/pageStore.js';
import { createStore, dataFileOf } from '../plugins/pagestore/storeFiles.js';
import { createSnapshot } from '../plugins/snapshot-manager/createSnapshot.js';
import { restoreSnapshot, type RestoreTimings } from '../plugins/snapshot-manager/restore.js';
import { prng } from '../test/helpers/prng.js';
import { numArg } from './lib/args.js';
import { report } from './lib/report.js';
import { fillStore, flushFile } from './fixtures/snapStore.js';
import { childCpuS, selfCpuS } from './lib/cpu.js';

const engine = makePageStoreEngine();
const PAGE_SIZE = 8192;
const ROUNDS = numArg('rounds', 3);
const BYTES = numArg('mib', 1024) * 2 ** 20;
const PAGES = BYTES / PAGE_SIZE;

function timeCmd(cmd: string, args: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (is the lz4 CLI installed? apt-get install lz4): ${r.stderr}`);
  return (performance.now() - t0) / 1000;
}


const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const loadBefore = load();
const root = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-restore-'));
try {
  const store = path.join(root, 'store');
  await createStore(store, { pageCount: PAGES, pageSize: PAGE_SIZE });
  fillStore(store, PAGES, PAGE_SIZE);
  const data = dataFileOf(store);
  const lz4Out = path.join(root, 'pages.db.lz4');
  timeCmd('lz4', ['-1', '-q', '-f', data, lz4Out]);
  flushFile(lz4Out);
  const pool = new WorkerPool({ threads: 2 });
  const snapDir = path.join(root, 'snaps');
  await createSnapshot({ engine, store, dir: snapDir, pool });
  const s = await PageStore.open(store, { checkpointIntervalMs: 0 });
  const changed = Math.floor(PAGES / 100);
  const rnd = prng(7);
  for (let i = 0; i < changed; i += 16) {
    const tx = s.begin();
    for (let k = 0; k < 16 && i + k < changed; k++) await tx.write(1 + ((i + k) * 97 + (rnd() % 97)) % (PAGES - 1), 100, Buffer.from(`changed ${i + k}`));
    await tx.commit();
  }
  await s.close();
  await createSnapshot({ engine, store, dir: snapDir, pool, incremental: true });
  spawnSync('sync'); // the set-up's dirty pages are written out before anything is timed

  let lz4d = Infinity;
  let lz4dSync = Infinity;
  let restoreS = Infinity;
  let phases: Partial<RestoreTimings> = {};
  let verified = 0;
  const cpu = { lz4d: Infinity, restore: Infinity };
  for (let round = 0; round < ROUNDS; round++) {
    const out = path.join(root, `pages-${round}.out`);
    const c0 = childCpuS();
    lz4d = Math.min(lz4d, timeCmd('lz4', ['-d', '-q', '-f', lz4Out, out]));
    cpu.lz4d = Math.min(cpu.lz4d, childCpuS() - c0);
    const t0 = performance.now();
    flushFile(out);
    lz4dSync = Math.min(lz4dSync, lz4d + (performance.now() - t0) / 1000);
    const timings: Partial<RestoreTimings> = {};
    const r0 = performance.now();
    const rc0 = selfCpuS();
    const to = path.join(root, `restored-${round}`);
    const r = await restoreSnapshot({ engine, snapshotDir: snapDir, to, pool, timings });
    const secs = (performance.now() - r0) / 1000;
    cpu.restore = Math.min(cpu.restore, selfCpuS() - rc0);
    if (secs < restoreS) [restoreS, phases, verified] = [secs, timings, r.pagesVerified];
    // Both outputs go before the next round, so each round's writes find the same free space.
    rmSync(out);
    rmSync(to, { recursive: true });
    spawnSync('sync');
    console.log(`round ${round}: lz4 -d ${lz4d.toFixed(3)} s, restore ${secs.toFixed(3)} s (${(selfCpuS() - rc0).toFixed(2)} CPU s) ${Object.entries(timings).map(([k, v]) => `${k}=${(v / 1000).toFixed(3)}`).join(' ')}`);
  }
  await pool.close();
  const mbs = (secs: number) => BYTES / secs / 1e6;
  report({
    bench: 'restore',
    baseline: 'lz4 -d (CLI)',
    rows: [
      { name: 'lz4 -d (CLI)', value: mbs(lz4d), unit: 'MB/s', extra: { s: lz4d.toFixed(3), cpuS: cpu.lz4d.toFixed(2) } },
      { name: 'lz4 -d (CLI) + fdatasync', value: mbs(lz4dSync), unit: 'MB/s', extra: { s: lz4dSync.toFixed(3) } },
      {
        name: 'restore full + incremental',
        value: mbs(restoreS),
        unit: 'MB/s',
        extra: { s: restoreS.toFixed(3), cpuS: cpu.restore.toFixed(2), pagesVerified: verified, ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [k.replace(/Ms$/, 'S'), (v / 1000).toFixed(3)])) },
      },
    ],
    params: { storeBytes: BYTES, pageSize: PAGE_SIZE, rounds: ROUNDS, loadAvgBefore: loadBefore, loadAvgAfter: load(), note: 'restore also runs recovery, verifies every page and fdatasyncs; lz4 -d does none of these' },
    goal: { description: `restore ≥ 1.0× lz4 -d (${(lz4d / restoreS).toFixed(2)}×)`, met: restoreS <= lz4d },
  });
} finally {
  rmSync(root, { recursive: true, force: true });
}

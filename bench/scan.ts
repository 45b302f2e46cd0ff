/**
 * Scan throughput and scrub cost, against `xxhsum -H3` in the same run.
 *
 * 1. A 1 GiB store (8 KiB pages) made with createStore in a temp dir and read once, so it sits
 *    in the page cache. Then, in rounds (interleaved, so a noisy neighbour hurts every row alike;
 *    best round per row):
 *    - `xxhsum -H3 pages.db`: the baseline, one process over the same file;
 *    - a full-speed scan (scanStore) on the calling thread with 1 and 2 native threads
 *      (`callingThread`, the `scan` command's path: verifyFile);
 *    - a full-speed scan on a worker pool of 1 and of 2 threads (the agent's path);
 *    - a full-speed scan on the main thread (no pool, asynchronous reads), for reference.
 *    Every scan must find no corrupt page.
 *    Goal: ≥ 1.3× `xxhsum -H3` with 2 native threads.
 * 2. Background scrub at 50 MiB/s for 10 s (checks inline: the scrub has no pool mode, see
 *    scrubber.ts): the process's CPU time (utime + stime from /proc/self/stat, which counts every
 *    thread, libuv's too) as a % of one core, and the rate achieved over the window. The same
 *    window with no scrub is measured first: the floor.
 *    Goal: ≤ 5 % of one core, rate within ±5 %.
 *
 * Run: npm run bench:scan   (options: --rounds N, --scrub-seconds S)
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { WorkerPool } from '../core/workerPool.js';
import { pageStoreEngine } from '../plugins/pagestore/index.js';
import { scanStore } from '../plugins/corruption-detector/scanner.js';
import { Scrubber } from '../plugins/corruption-detector/scrubber.js';
import { createCachedStore } from './fixtures/cachedStore.js';
import { numArg } from './lib/args.js';
import { report, type BenchRow } from './lib/report.js';

const PAGE_SIZE = 8192;
const STORE_BYTES = 1 << 30;
const PAGES = STORE_BYTES / PAGE_SIZE;
const SCRUB_RATE = 50 * 2 ** 20;

const ROUNDS = numArg('rounds', 5);
const SCRUB_SECONDS = numArg('scrub-seconds', 10);

/** CPU seconds used by this process so far, every thread included. */
function processCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After "pid (comm) ", field 3 (state) is index 0: utime is field 14, stime field 15.
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / clockTicks;
}
const clockTicks = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

function gbRow(name: string, seconds: number, extra: Record<string, number | string> = {}): BenchRow {
  return {
    name,
    value: STORE_BYTES / 1e9 / seconds,
    unit: 'GB/s',
    extra: { ms: Number((seconds * 1e3).toFixed(1)), pagesPerSec: Math.round(PAGES / seconds), ...extra },
  };
}

async function timeIt(fn: () => Promise<unknown> | unknown): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function scrubCpu(dir: string, mode: 'inline' | 'idle'): Promise<{ cpuPct: number; rate: number }> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-scrub-state-'));
  const scrubber =
    mode === 'idle'
      ? null
      : new Scrubber({
          storeId: 'bench', engine: pageStoreEngine(), dir, rate: SCRUB_RATE, intervalMs: 86_400_000, dataDir, log: pino({ level: 'silent' }),
          onScanned: (_range, corrupt) => {
            if (corrupt.length > 0) throw new Error(`scrub found ${corrupt.length} corrupt pages in a clean store`);
          },
        });
  try {
    scrubber?.start();
    // Let it settle (file opened, first batches) before the window opens.
    await sleep(1000);
    const b0 = scrubber?.stats.bytesScanned ?? 0;
    const c0 = processCpuSeconds();
    const t0 = performance.now();
    await sleep(SCRUB_SECONDS * 1000);
    const secs = (performance.now() - t0) / 1000;
    const cpu = processCpuSeconds() - c0;
    const bytes = (scrubber?.stats.bytesScanned ?? 0) - b0;
    return { cpuPct: (cpu / secs) * 100, rate: bytes / secs };
  } finally {
    await scrubber?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const base = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-scan-'));
  const dir = path.join(base, 'store');
  const pools: WorkerPool[] = [];
  try {
    process.stdout.write(`creating a ${STORE_BYTES / 2 ** 30} GiB store (${PAGES} pages of ${PAGE_SIZE} bytes) in ${dir} ...\n`);
    const { dataFile: file } = await createCachedStore(dir, STORE_BYTES, PAGE_SIZE);

    const probe = spawnSync('xxhsum', ['-H3', file], { encoding: 'utf8' });
    const haveXxhsum = !probe.error && probe.status === 0;
    if (!haveXxhsum) throw new Error(`xxhsum -H3 is needed for the baseline (apt-get install xxhash): ${probe.error?.message ?? probe.stderr}`);

    const pool1 = new WorkerPool({ threads: 1 });
    const pool2 = new WorkerPool({ threads: 2 });
    pools.push(pool1, pool2);
    const scan = async (pool?: WorkerPool, threads?: number) => {
      const r = await scanStore(pageStoreEngine(), dir, threads ? { callingThread: true, threads } : pool ? { pool } : {});
      if (r.corrupt.length > 0 || r.pagesScanned !== PAGES) throw new Error(`scan checked ${r.pagesScanned} pages and found ${r.corrupt.length} corrupt in a clean store`);
    };
    // Warm-up: workers started, addon loaded, slabs touched.
    await scan(pool1);
    await scan(pool2);
    await scan();
    await scan(undefined, 2);

    const best = { xxhsum: Infinity, n1: Infinity, n2: Infinity, w1: Infinity, w2: Infinity, inline: Infinity };
    for (let round = 0; round < ROUNDS; round++) {
      best.xxhsum = Math.min(best.xxhsum, await timeIt(() => {
        const r = spawnSync('xxhsum', ['-H3', file], { stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`xxhsum exited with ${r.status}`);
      }));
      best.n1 = Math.min(best.n1, await timeIt(() => scan(undefined, 1)));
      best.n2 = Math.min(best.n2, await timeIt(() => scan(undefined, 2)));
      best.w1 = Math.min(best.w1, await timeIt(() => scan(pool1)));
      best.w2 = Math.min(best.w2, await timeIt(() => scan(pool2)));
      best.inline = Math.min(best.inline, await timeIt(() => scan()));
    }
    const rows: BenchRow[] = [
      gbRow('xxhsum -H3 (whole file, process)', best.xxhsum),
      gbRow('scan, calling thread, 2 native threads', best.n2),
      gbRow('scan, calling thread, 1 native thread', best.n1),
      gbRow('scan, 1 worker', best.w1),
      gbRow('scan, 2 workers', best.w2),
      gbRow('scan, main thread (no pool)', best.inline),
    ];
    const xx = rows[0]!.value;
    const two = rows[1]!.value;
    report({
      bench: 'scan',
      baseline: 'xxhsum -H3 (whole file, process)',
      rows,
      goal: { description: 'scan with 2 native threads ≥ 1.3× xxhsum -H3', met: two >= 1.3 * xx },
      params: { storeBytes: STORE_BYTES, pageSize: PAGE_SIZE, pages: PAGES, rounds: ROUNDS, cache: 'store read once before timing (page cache)', cpus: os.availableParallelism() },
    });

    process.stdout.write(`\nscrub at ${SCRUB_RATE / 2 ** 20} MiB/s, ${SCRUB_SECONDS} s per row ...\n`);
    // The pools are closed first: idle workers would count in neither row, but keep it plain.
    await Promise.all(pools.splice(0).map((p) => p.close()));
    const idle = await scrubCpu(dir, 'idle');
    const inline = await scrubCpu(dir, 'inline');
    const scrubRow = (name: string, m: { cpuPct: number; rate: number }): BenchRow => ({
      name,
      value: m.cpuPct,
      unit: '% of core',
      extra: { MiBps: Number((m.rate / 2 ** 20).toFixed(2)), rateErrorPct: Number((((m.rate - SCRUB_RATE) / SCRUB_RATE) * 100).toFixed(2)) },
    });
    const rateOk = (m: { rate: number }) => Math.abs(m.rate - SCRUB_RATE) <= 0.05 * SCRUB_RATE;
    report({
      bench: 'scrub',
      baseline: 'no scrub: the floor',
      rows: [{ name: 'no scrub: the floor', value: idle.cpuPct, unit: '% of core' }, scrubRow('scrub 50 MiB/s, checks inline', inline)],
      goal: { description: '≤ 5 % of one core and rate within ±5 % at 50 MiB/s', met: inline.cpuPct <= 5 && rateOk(inline) },
      params: { rateBytesPerSec: SCRUB_RATE, windowSeconds: SCRUB_SECONDS, cpu: '/proc/self/stat utime+stime, all threads', clockTicks },
    });
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    rmSync(base, { recursive: true, force: true });
  }
}

await main();

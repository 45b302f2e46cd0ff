/**
 * Durable commits/s of one page store with 1, 8 and 64 concurrent writers (the baseline is 1),
 * and what group commit buys: WAL flushes (write + fdatasync rounds) per commit.
 *
 * Each writer loops begin → write `--bytes` (100) random bytes at a random offset of one page of
 * its own (writer w cycles through 8 pages of its own range, so no two writers ever wait on a
 * lock) → commit, which resolves once the commit record is durable. Each level gets a fresh store
 * and runs `--warmup-ms` (500) unmeasured, so every page has logged its full page image, then
 * `--seconds` (3) measured. No checkpoint runs meanwhile. `--rounds` (3) rounds each run every
 * configuration once, interleaved (the disk's fsync latency drifts); a row is the median round.
 *
 * For the hardware limit, the same directory also gets a raw loop: write 100 bytes at the end
 * of a file, fdatasync, repeat, for the same duration, synchronously (no event loop between)
 * and through a FileHandle (as the WAL writer does).
 *
 * Run: npm run bench:commit [-- --writers 1,8,64 --seconds 3 --rounds 3 --warmup-ms 500 --bytes 100
 *      --work-dir DIR]   (or env COMMIT_BENCH_WRITERS, COMMIT_BENCH_SECONDS, ...)
 */
import { closeSync, fdatasyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PageStore } from '../plugins/pagestore/pageStore.js';
import { report, type BenchRow } from './lib/report.js';

const PAGE_SIZE = 8192;
const PAGE_COUNT = 8192; // 64 MiB
const PAGES_PER_WRITER = 8;

function flag(name: string, def: string): string {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1] ?? '';
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
  }
  return process.env[`COMMIT_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
}

function numFlag(name: string, def: number): number {
  const v = Number(flag(name, String(def)));
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number (got ${JSON.stringify(flag(name, ''))})`);
  return v;
}

const levels = flag('writers', '1,8,64')
  .split(',')
  .map((s) => Number(s.trim()));
if (levels.length === 0 || levels.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`--writers must be a comma-separated list of positive integers (got ${JSON.stringify(flag('writers', ''))})`);
if (Math.max(...levels) * PAGES_PER_WRITER > PAGE_COUNT - 1) throw new Error(`--writers: at most ${Math.floor((PAGE_COUNT - 1) / PAGES_PER_WRITER)} writers fit the store's pages`);
const seconds = numFlag('seconds', 3);
const rounds = Math.round(numFlag('rounds', 3));
const warmupMs = numFlag('warmup-ms', 500);
const bytes = numFlag('bytes', 100);
const workDir = path.resolve(flag('work-dir', path.join(os.tmpdir(), `ra-bench-commit-${process.pid}`)));

function percentile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const r3 = (v: number) => Number(v.toFixed(3));

/** One measured window of one configuration. */
interface Sample {
  name: string;
  unit: string;
  /** Events (commits or syncs) per second. */
  rate: number;
  events: number;
  seconds: number;
  flushes?: number;
  walBytes?: number;
  latenciesMs?: number[];
}

async function measureStore(writers: number): Promise<Sample> {
  const dir = path.join(workDir, `store-${writers}`);
  rmSync(dir, { recursive: true, force: true });
  const store = await PageStore.open(dir, { create: true, pageCount: PAGE_COUNT, pageSize: PAGE_SIZE, checkpointWalBytes: Number.MAX_SAFE_INTEGER, checkpointIntervalMs: 0 });
  try {
    const data = Buffer.alloc(bytes);
    for (let i = 0; i < bytes; i++) data[i] = (i * 131 + 7) & 0xff;
    let measuring = false;
    let stop = false;
    let commits = 0;
    const latencies: number[] = [];
    const writer = async (w: number) => {
      const first = 1 + w * PAGES_PER_WRITER;
      for (let k = 0; !stop; k++) {
        const t0 = performance.now();
        const tx = store.begin();
        await tx.write(first + (k % PAGES_PER_WRITER), (k * 97) % (store.payloadSize - bytes), data);
        await tx.commit();
        if (measuring && !stop) {
          commits++;
          latencies.push(performance.now() - t0);
        }
      }
    };
    const running = Array.from({ length: writers }, (_, w) => writer(w));
    await new Promise((r) => setTimeout(r, warmupMs));
    const wal0 = { ...store.walStats };
    const t0 = performance.now();
    measuring = true;
    await new Promise((r) => setTimeout(r, seconds * 1e3));
    stop = true;
    const elapsed = (performance.now() - t0) / 1e3;
    const wal1 = { ...store.walStats };
    await Promise.all(running);
    return {
      name: `${writers} writer${writers === 1 ? '' : 's'}`,
      unit: 'commits/s',
      rate: commits / elapsed,
      events: commits,
      seconds: elapsed,
      flushes: wal1.flushes - wal0.flushes,
      walBytes: wal1.bytesWritten - wal0.bytesWritten,
      latenciesMs: latencies,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** write(100 B at the end) + fdatasync in a tight synchronous loop. */
function rawSync(): Sample {
  const file = path.join(workDir, 'raw-sync.bin');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(bytes, 0x5a);
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1e3;
  try {
    while (performance.now() < end) {
      writeSync(fd, buf, 0, bytes, n * bytes);
      fdatasyncSync(fd);
      n++;
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  const elapsed = (performance.now() - t0) / 1e3;
  return { name: 'raw write+fdatasync, sync loop', unit: 'syncs/s', rate: n / elapsed, events: n, seconds: elapsed };
}

/** The same through a FileHandle (libuv thread pool), as WalWriter does it. */
async function rawAsync(): Promise<Sample> {
  const file = path.join(workDir, 'raw-async.bin');
  const h = await open(file, 'w');
  const buf = Buffer.alloc(bytes, 0x5a);
  let n = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1e3;
  try {
    while (performance.now() < end) {
      await h.write(buf, 0, bytes, n * bytes);
      await h.datasync();
      n++;
    }
  } finally {
    await h.close();
    rmSync(file, { force: true });
  }
  const elapsed = (performance.now() - t0) / 1e3;
  return { name: 'raw write+fdatasync, FileHandle', unit: 'syncs/s', rate: n / elapsed, events: n, seconds: elapsed };
}

/** One table row from the rounds of one configuration: the median round, the others in extra. */
function toRow(samples: Sample[]): BenchRow {
  const byRate = [...samples].sort((a, b) => a.rate - b.rate);
  const med = byRate[Math.floor((byRate.length - 1) / 2)]!;
  const events = samples.reduce((a, s) => a + s.events, 0);
  const extra: Record<string, number | string> = {
    best: Math.round(byRate[byRate.length - 1]!.rate),
    worst: Math.round(byRate[0]!.rate),
  };
  if (med.flushes !== undefined) {
    const flushes = samples.reduce((a, s) => a + s.flushes!, 0);
    const seconds = samples.reduce((a, s) => a + s.seconds, 0);
    const lat = Float64Array.from(samples.flatMap((s) => s.latenciesMs!)).sort();
    Object.assign(extra, {
      flushesPerCommit: r3(flushes / events),
      commitsPerFlush: r3(events / flushes),
      flushesPerS: Math.round(flushes / seconds),
      p50Ms: r3(percentile(lat, 0.5)),
      p99Ms: r3(percentile(lat, 0.99)),
      walBytesPerCommit: Math.round(samples.reduce((a, s) => a + s.walBytes!, 0) / events),
    });
  } else {
    extra.meanMs = r3(1e3 / med.rate);
  }
  extra.events = events;
  return { name: med.name, value: med.rate, unit: med.unit, extra };
}

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  try {
    const samples = new Map<string, Sample[]>();
    const add = (s: Sample) => {
      samples.set(s.name, [...(samples.get(s.name) ?? []), s]);
      console.log(`  round ${samples.get(s.name)!.length}: ${s.name}: ${Math.round(s.rate)} ${s.unit}${s.flushes ? `, ${r3(s.events / s.flushes)} commits per flush` : ''}`);
    };
    // Rounds interleave every configuration, so a slow spell of the disk hits all of them.
    for (let round = 0; round < rounds; round++) {
      for (const n of levels) add(await measureStore(n));
      add(rawSync());
      add(await rawAsync());
    }
    const rows = [...samples.values()].map(toRow);
    const base = rows[0]!;
    const top = rows.reduce((a, r) => (r.unit === 'commits/s' && r.value > a.value ? r : a), base);
    const raw = rows.find((r) => r.name.startsWith('raw write+fdatasync, sync'))!;
    report({
      bench: 'commit',
      baseline: base.name,
      rows,
      params: {
        store: `${PAGE_COUNT} pages of ${PAGE_SIZE} B (64 MiB), default 16 MiB WAL segments, fresh store per level and round, no checkpoints`,
        transaction: `begin → write ${bytes} B at a rotating offset of one of the writer's own ${PAGES_PER_WRITER} pages → commit (durable)`,
        warmupMs,
        seconds,
        rounds,
        selection: 'value = the median round; best and worst round in extra; flushes, latencies and bytes over all rounds',
        groupCommit: `${top.name}: ${top.extra!.commitsPerFlush} commits per WAL flush; ${r3(top.value / base.value)}× the 1-writer commits/s, ${r3(top.value / raw.value)}× the raw fdatasync rate`,
        rawLoops: 'raw rows: syncs/s of write(100 B at the end of a file) + fdatasync in the same directory — the limit for a store that syncs once per commit',
        filesystem: 'the directory under os.tmpdir()',
        dir: workDir,
      },
    });
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

await main();

/**
 * Crash recovery of a page store with a large WAL since its last checkpoint, four ways, measured
 * in the same run from the same bytes:
 *
 *   two-pass, single-threaded  the whole log read and analysed, then redo on this thread
 *   two-pass, pool             the same, redo partitioned by page over 2 pool workers
 *   stream, this thread        one forward read through a bounded window of segments, analysis
 *                              and redo in turn on this thread (no rings)
 *   stream, rings              the same read, redo records handed to 2 pool workers through
 *                              SPSC rings as they are found, so analysis and redo overlap
 *                              (plugins/pagestore/redoStream.ts; the default with a pool)
 *
 * The stream's two rows separate what the window (bounded, reused memory) wins from what the
 * rings (overlap across threads) win.
 *
 * Workload (bench/fixtures/walGen.ts, a child process that dies by SIGKILL without closing):
 * a store of `--store-mib` (64 MiB of 8 KiB pages), `--writers` concurrent writers committing
 * transactions of 1–8 updates of 16–256 random bytes on random pages (every page's first change
 * after the checkpoint logs a full 8 KiB image), until the WAL since the checkpoint reaches each
 * size of `--sizes` (MiB; default 256 and 1024). Then `--losers` transactions write
 * `--loser-records` updates each and are left open at the kill: recovery must undo them.
 *
 * Each measured run recovers a fresh `cp -a` copy of the generated store (then `sync`, so the
 * copy's writeback does not land inside the measurement); nothing is dropped from the page
 * cache (warm cache is the stated condition). Runs rotate through the modes, `--repeat` times
 * each, the first mode changing every round; medians are reported (the best run in `extra`).
 * Every run must redo and undo the record counts the generator wrote, leave a byte-identical
 * data file, and recover again with nothing to redo (failures of that last check are printed and
 * kept in params).
 *
 * Reports (bench/results/): redo-<size>MiB (the two-pass redo pass alone: passes.redoMs, single
 * vs pool), recovery-<size>MiB (all of recovery: durationMs, every mode against the two-pass
 * pool, the default before the stream), undo (the undo pass, against the seed's "< 1 s per 1000
 * operations").
 *
 * Run: npm run bench:redo [-- --sizes 256,1024 --repeat 3 --store-mib 64 --losers 8
 *      --loser-records 4000 --writers 32 --work-dir DIR --keep
 *      --recovery-only --modes two-pass-pool,stream-rings --profile]
 * Every flag can also be given as an env var: REDO_BENCH_SIZES, REDO_BENCH_REPEAT, ...
 * With --keep the generated stores stay in --work-dir and are reused by the next run with the
 * same parameters. --recovery-only writes only the recovery-<size> reports (not redo-<size> and
 * undo); --modes runs only the modes named; --profile prints, for every run, the CPU time of
 * each thread (main, pool workers, libuv) in each pass, from /proc/self/task/<tid>/schedstat.
 * --help lists the flags.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { xxh3 } from 'recovery-agent/native';
import { WorkerPool } from '../core/workerPool.js';
import { recover, type RecoveryStats } from '../plugins/pagestore/recovery.js';
import { report, type BenchRow } from './lib/report.js';
import type { WalGenConfig, WalGenResult } from './fixtures/walGen.js';

const MiB = 1 << 20;
const PAGE_SIZE = 8192;
const SEGMENT_SIZE = 16 * MiB;
const WORKERS = 2;
/** PostgreSQL 15 crash replay, warm cache, single core (../shared/TARGETS.md). */
const PG_RECORDS_PER_S = [600e3, 770e3] as const;
const GOAL_RECORDS_PER_S = 2.2e6;
/** The seed's claim: rollback takes < 1 s per 1000 operations. */
const SEED_UNDO_PER_S = 1000;
const WARMUP_WAL_MIB = 32;

/** `--name value`, `--name=value` or env REDO_BENCH_NAME, else the default. */
function flag(name: string, def: string): string {
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === `--${name}`) return args[i + 1] ?? '';
    if (args[i]!.startsWith(`--${name}=`)) return args[i]!.slice(name.length + 3);
  }
  return process.env[`REDO_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] ?? def;
}

function intFlag(name: string, def: number): number {
  const v = Number(flag(name, String(def)));
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} must be a non-negative integer (got ${JSON.stringify(flag(name, ''))})`);
  return v;
}

const HELP = `bench/redo.js: crash recovery of a page store with a large WAL, four ways (see the file's header).

  --sizes LIST          WAL sizes since the checkpoint, MiB (default 256,1024)
  --repeat N            runs per mode and size (default 3)
  --store-mib N         store size (default 64)
  --writers N           concurrent writers of the generator (default 32)
  --losers N            transactions left open at the kill (default 8)
  --loser-records N     updates per loser (default 4000)
  --work-dir DIR        where templates and runs go
  --keep                keep the generated templates in --work-dir and reuse them
  --recovery-only       write only the whole-recovery reports (recovery-<size>), not redo-<size> and undo
  --modes LIST          run only these modes: ${'two-pass-serial,two-pass-pool,stream-inline,stream-rings'} (default all)
  --profile             print each run's CPU per thread and per pass (Linux /proc)
  --help                this text

Every flag can also be an env var: REDO_BENCH_SIZES, REDO_BENCH_RECOVERY_ONLY=1, ...`;
if (process.argv.includes('--help') || process.argv.includes('-h')) {
  console.log(HELP);
  process.exit(0);
}

/** A boolean flag: `--name` or env REDO_BENCH_NAME=1. */
function boolFlag(name: string): boolean {
  return process.argv.includes(`--${name}`) || process.env[`REDO_BENCH_${name.toUpperCase().replace(/-/g, '_')}`] === '1';
}

const sizes = flag('sizes', '256,1024')
  .split(',')
  .map((s) => Number(s.trim()));
if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 1)) throw new Error(`--sizes must be a comma-separated list of MiB (got ${JSON.stringify(flag('sizes', ''))})`);
const repeat = Math.max(1, intFlag('repeat', 3));
const storeMiB = Math.max(1, intFlag('store-mib', 64));
const writers = Math.max(1, intFlag('writers', 32));
const losers = intFlag('losers', 8);
const loserRecords = intFlag('loser-records', 4000);
const keep = boolFlag('keep');
const recoveryOnly = boolFlag('recovery-only');
const profile = boolFlag('profile');
const workDir = path.resolve(flag('work-dir', path.join(os.tmpdir(), `ra-bench-redo-${keep ? 'kept' : process.pid}`)));

const genScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'walGen.js');

interface Template {
  label: string;
  dir: string;
  cfg: WalGenConfig;
  gen: WalGenResult;
}

/** Generates (or, with --keep, reuses) a store killed with `walMiB` of WAL since its checkpoint. */
function template(walMiB: number, withLosers: boolean): Template {
  const label = `${walMiB}MiB`;
  const dir = path.join(workDir, `template-${label}`);
  const cfg: WalGenConfig = {
    dir,
    pageCount: (storeMiB * MiB) / PAGE_SIZE,
    pageSize: PAGE_SIZE,
    segmentSize: SEGMENT_SIZE,
    walBytes: walMiB * MiB,
    writers,
    minUpdates: 1,
    maxUpdates: 8,
    minLen: 16,
    maxLen: 256,
    losers: withLosers ? losers : 0,
    loserRecords: withLosers ? loserRecords : 0,
    seed: 0x5eed + walMiB,
  };
  const meta = `${dir}.json`;
  if (keep && existsSync(meta) && existsSync(dir)) {
    const saved = JSON.parse(readFileSync(meta, 'utf8')) as { cfg: WalGenConfig; gen: WalGenResult };
    if (JSON.stringify(saved.cfg) === JSON.stringify(cfg)) {
      console.log(`  reusing ${dir}`);
      return { label, dir, cfg, gen: saved.gen };
    }
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(meta, { force: true });
  process.stdout.write(`  generating ${label} of WAL in ${dir} ... `);
  const child = spawnSync(process.execPath, [genScript, JSON.stringify(cfg)], { encoding: 'utf8', maxBuffer: 16 * MiB });
  if (child.signal !== 'SIGKILL') {
    throw new Error(`WAL generator for ${label} ended with ${child.signal ?? `exit code ${child.status}`}, not SIGKILL: ${child.stderr.trim()}`);
  }
  const gen = JSON.parse(child.stdout.trim().split('\n').pop()!) as WalGenResult;
  console.log(`${(gen.walBytes / MiB).toFixed(0)} MiB, ${gen.committedUpdates + gen.loserUpdates} updates, ${gen.committedTxs} commits, ${(gen.genMs / 1e3).toFixed(1)} s`);
  writeFileSync(meta, JSON.stringify({ cfg, gen }, null, 2) + '\n');
  return { label, dir, cfg, gen };
}

interface Mode {
  /** For --modes. */
  id: string;
  name: string;
  redo: 'stream' | 'two-pass';
  pool: boolean;
}

const ALL_MODES: readonly Mode[] = [
  { id: 'two-pass-serial', name: 'two-pass, single-threaded', redo: 'two-pass', pool: false },
  { id: 'two-pass-pool', name: `two-pass, pool ${WORKERS} workers`, redo: 'two-pass', pool: true },
  { id: 'stream-inline', name: 'stream, this thread', redo: 'stream', pool: false },
  { id: 'stream-rings', name: `stream, rings to ${WORKERS} workers`, redo: 'stream', pool: true },
];
const [TWO_PASS_SERIAL, TWO_PASS_POOL, STREAM_INLINE, STREAM_RINGS] = ALL_MODES as [Mode, Mode, Mode, Mode];
const modeIds = flag('modes', ALL_MODES.map((m) => m.id).join(','))
  .split(',')
  .map((s) => s.trim());
const unknownModes = modeIds.filter((id) => !ALL_MODES.some((m) => m.id === id));
if (unknownModes.length > 0 || modeIds.length === 0) throw new Error(`--modes: unknown ${unknownModes.join(', ')}; known: ${ALL_MODES.map((m) => m.id).join(', ')}`);
const MODES = ALL_MODES.filter((m) => modeIds.includes(m.id));
const has = (m: Mode) => MODES.includes(m);

/** CPU time (ns) of each thread of this process, by tid, with its name: /proc/self/task/<tid>/schedstat. */
function threadCpu(): Map<number, { comm: string; ns: number }> {
  const out = new Map<number, { comm: string; ns: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      out.set(Number(tid), { comm: readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim(), ns });
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return out;
}

/** Per pass, the CPU milliseconds of each thread that used at least 1 ms ('main' is this thread). */
type PassProfile = Array<{ pass: string; threads: Array<{ thread: string; ms: number }> }>;

function profileOf(marks: Array<{ pass: string; cpu: Map<number, { comm: string; ns: number }> }>): PassProfile {
  const out: PassProfile = [];
  for (let i = 1; i < marks.length; i++) {
    const threads: Array<{ thread: string; ms: number }> = [];
    for (const [tid, now] of marks[i]!.cpu) {
      const ms = (now.ns - (marks[i - 1]!.cpu.get(tid)?.ns ?? 0)) / 1e6;
      if (ms >= 1) threads.push({ thread: tid === process.pid ? 'main' : `${now.comm}:${tid}`, ms });
    }
    threads.sort((a, b) => b.ms - a.ms);
    out.push({ pass: marks[i]!.pass, threads });
  }
  return out;
}

interface Run {
  mode: Mode;
  stats: RecoveryStats;
  /** recover() as the caller sees it: lock, recovery, closing files. */
  wallMs: number;
  /** CPU time of this process (all threads, user + system) during recover(). */
  cpuMs: number;
  dataHash: bigint;
  /** Set when the recovered store fails to recover again (it must, with nothing to redo). */
  reopenError?: string;
  /** With --profile. */
  profile?: PassProfile;
}

/** Recovers a fresh copy of the template; checks what it did against what the generator wrote. */
async function measure(t: Template, pool: WorkerPool, mode: Mode): Promise<Run> {
  const dir = path.join(workDir, 'run');
  rmSync(dir, { recursive: true, force: true });
  execFileSync('cp', ['-a', t.dir, dir]);
  execFileSync('sync'); // write the copy back now, not during the measured recovery
  const marks: Array<{ pass: string; cpu: Map<number, { comm: string; ns: number }> }> = [];
  const onPass = profile ? (pass: string) => marks.push({ pass, cpu: threadCpu() }) : undefined;
  onPass?.('start');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const stats = await recover(dir, { pool, serialRedo: !mode.pool, redo: mode.redo, ...(onPass ? { onPass } : {}) });
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  onPass?.('close');
  const cpuMs = (cpu.user + cpu.system) / 1e3;
  // The recovered store must recover again, with nothing left to redo or undo.
  let reopenError: string | undefined;
  try {
    const again = await recover(dir);
    if (again.recordsRedone + again.recordsUndone !== 0) reopenError = `second recovery redid ${again.recordsRedone} and undid ${again.recordsUndone} records`;
  } catch (err) {
    reopenError = (err as Error).message;
  }
  if (reopenError) console.log(`    WARNING: the recovered store does not reopen cleanly: ${reopenError}`);
  const dataHash = xxh3(readFileSync(path.join(dir, 'pages.db')));
  rmSync(dir, { recursive: true, force: true });
  const redone = t.gen.committedUpdates + t.gen.loserUpdates;
  if (stats.recordsRedone !== redone || stats.recordsSkipped !== 0) {
    throw new Error(`${t.label} ${mode.name}: redid ${stats.recordsRedone} records (skipped ${stats.recordsSkipped}); the generator wrote ${redone}`);
  }
  if (stats.recordsUndone !== t.gen.loserUpdates || stats.transactionsRolledBack !== t.gen.loserTxs) {
    throw new Error(`${t.label} ${mode.name}: undid ${stats.recordsUndone} records of ${stats.transactionsRolledBack} losers; expected ${t.gen.loserUpdates} of ${t.gen.loserTxs}`);
  }
  if (stats.redoWorkers !== (mode.pool ? WORKERS : 1) || stats.redoMode !== mode.redo) throw new Error(`${t.label} ${mode.name}: redo ran ${stats.redoMode} on ${stats.redoWorkers} thread(s)`);
  return { mode, stats, wallMs, cpuMs, dataHash, ...(reopenError ? { reopenError } : {}), ...(profile ? { profile: profileOf(marks) } : {}) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const perS = (n: number, ms: number) => (n * 1e3) / ms;
const mbPerS = (bytes: number, ms: number) => bytes / 1e3 / ms;
const r2 = (v: number) => Number(v.toFixed(2));

function passRow(name: string, runs: Run[], ms: (r: Run) => number): BenchRow {
  const best = runs.reduce((a, r) => (ms(r) < ms(a) ? r : a));
  const s = best.stats;
  return {
    name,
    value: perS(s.recordsRedone, ms(best)),
    unit: 'records/s',
    extra: {
      MBps: r2(mbPerS(s.walBytesRead, ms(best))),
      ms: r2(ms(best)),
      medianMs: r2(median(runs.map(ms))),
      medianRecordsPerS: Math.round(perS(s.recordsRedone, median(runs.map(ms)))),
      records: s.recordsRedone,
      walMiB: r2(s.walBytesRead / MiB),
    },
  };
}

/** Whole recovery of one mode: the median run's duration as the value, the best run's passes in extra. */
function recoveryRow(name: string, runs: Run[]): BenchRow {
  const ms = runs.map((r) => r.stats.durationMs);
  const mid = median(ms);
  const best = runs.reduce((a, r) => (r.stats.durationMs < a.stats.durationMs ? r : a));
  const s = best.stats;
  return {
    name,
    value: perS(s.recordsRedone, mid),
    unit: 'records/s',
    extra: {
      medianMs: r2(mid),
      bestMs: r2(s.durationMs),
      runsMs: ms.map((v) => v.toFixed(0)).join(' '),
      medianCpuMs: r2(median(runs.map((r) => r.cpuMs))),
      records: s.recordsRedone,
      walMiB: r2(s.walBytesRead / MiB),
      ...Object.fromEntries(Object.entries(s.passes).map(([k, v]) => [`best${k[0]!.toUpperCase()}${k.slice(1)}`, v])),
      sPerGiB: r2(mid / 1e3 / (s.walBytesRead / 2 ** 30)),
    },
  };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  mkdirSync(workDir, { recursive: true });
  const pool = new WorkerPool({ threads: WORKERS });
  const undoRows: BenchRow[] = [];
  const summary: string[] = [];
  try {
    console.log(`redo bench: store ${storeMiB} MiB, WAL sizes ${sizes.join(', ')} MiB, ${repeat} runs per mode, work dir ${workDir}`);
    // Warm-up (not reported): loads the worker modules and lets the JIT settle on every path.
    const warm = template(WARMUP_WAL_MIB, false);
    for (const mode of MODES) await measure(warm, pool, mode);

    for (const walMiB of sizes) {
      const t = template(walMiB, true);
      const runs: Run[] = [];
      for (let i = 0; i < repeat; i++) {
        // Rotate which mode goes first, so none always follows another.
        for (let k = 0; k < MODES.length; k++) {
          const mode = MODES[(i + k) % MODES.length]!;
          const run = await measure(t, pool, mode);
          runs.push(run);
          const p = run.stats.passes;
          console.log(
            `    ${mode.name.padEnd(28)} total ${run.stats.durationMs.toFixed(0)} ms ` +
              `(analysis ${p.analysisMs.toFixed(0)}, redo ${p.redoMs.toFixed(0)}, undo ${p.undoMs.toFixed(0)}, checkpoint ${p.checkpointMs.toFixed(0)}), ` +
              `CPU ${run.cpuMs.toFixed(0)} ms, load ${os.loadavg()[0]!.toFixed(1)}`,
          );
          for (const p of run.profile ?? []) console.log(`      ${p.pass.padEnd(10)} ${p.threads.map((t) => `${t.thread} ${t.ms.toFixed(0)}`).join(', ')}`);
        }
      }
      const hashes = new Set(runs.map((r) => r.dataHash));
      if (hashes.size !== 1) throw new Error(`${t.label}: recovered data files differ between runs (${[...hashes].map((h) => h.toString(16)).join(', ')})`);
      const of = (m: Mode) => runs.filter((r) => r.mode === m);
      const s0 = runs[0]!.stats;
      const mix = {
        storeMiB,
        pageSize: PAGE_SIZE,
        segmentSize: SEGMENT_SIZE,
        walBytesSinceCheckpoint: t.gen.walBytes,
        walBytesRead: s0.walBytesRead,
        walRecordsScanned: s0.walRecordsScanned,
        recordsRedone: s0.recordsRedone,
        fullPageImages: t.gen.pagesTouched,
        committedTransactions: t.gen.committedTxs,
        updatesPerTransaction: '1–8 (uniform), on distinct random pages',
        rangeBytes: '16–256 (uniform), random offset',
        writers,
        losers: t.gen.loserTxs,
        loserRecords: t.gen.loserUpdates,
        avgRedoRecordBytes: Math.round(s0.walBytesRead / s0.recordsRedone),
        repeat,
        condition: 'warm page cache: each run recovers a fresh cp -a copy, synced, nothing dropped',
        cpus: os.availableParallelism(),
        loadAverageAtEnd: os.loadavg()[0]!.toFixed(2),
        reopenFailures: runs.filter((r) => r.reopenError).map((r) => r.reopenError!),
      };

      if (!recoveryOnly && has(TWO_PASS_SERIAL) && has(TWO_PASS_POOL)) {
      const redoBase = passRow('redo pass, single-threaded', of(TWO_PASS_SERIAL), (r) => r.stats.passes.redoMs);
      const redoPool = passRow(`redo pass, pool ${WORKERS} workers`, of(TWO_PASS_POOL), (r) => r.stats.passes.redoMs);
      const met = redoPool.value >= GOAL_RECORDS_PER_S;
      report({
        bench: `redo-${t.label}`,
        baseline: redoBase.name,
        rows: [redoBase, redoPool],
        goal: { description: `redo pass with the pool ≥ ${GOAL_RECORDS_PER_S / 1e6} M records/s (3× PostgreSQL 15 replay; ours: ${(redoPool.value / 1e6).toFixed(2)} M/s)`, met },
        params: {
          ...mix,
          selection: 'best of the runs (median in extra)',
          measured: 'passes.redoMs of the two-pass path: applying the redo records to the data file (WAL already in memory); MB/s = WAL bytes read / redo time. The stream has no separate redo pass (it overlaps analysis): see recovery-<size>',
          postgresAnchor: 'PostgreSQL 15 crash replay, warm cache, single core: 600–770 k records/s, 119–410 MB/s by record mix (../shared/TARGETS.md; not re-measured here)',
          goalRecordsPerS: GOAL_RECORDS_PER_S,
          goalMet: met,
          vsPostgresAnchor: `single-threaded ${(redoBase.value / PG_RECORDS_PER_S[1]).toFixed(2)}–${(redoBase.value / PG_RECORDS_PER_S[0]).toFixed(2)}×, pool ${(redoPool.value / PG_RECORDS_PER_S[1]).toFixed(2)}–${(redoPool.value / PG_RECORDS_PER_S[0]).toFixed(2)}× the anchor (the printed ratio is against our own single-threaded redo, same run)`,
        },
      });
      }

      // Whole recovery, every mode against the two-pass pool (the default before the stream).
      const totRows = MODES.map((m) => recoveryRow(`recovery, ${m.name}`, of(m)));
      report({
        bench: `recovery-${t.label}`,
        baseline: `recovery, ${(has(TWO_PASS_POOL) ? TWO_PASS_POOL : MODES[0]!).name}`,
        rows: totRows,
        params: {
          ...mix,
          selection: 'median of the runs (best in extra)',
          measured:
            'durationMs: analysis (WAL read + scan + checksums) + redo + undo + final checkpoint; records/s = records redone / duration; cpuMs: CPU of the whole process (all threads) during recover(). ' +
            'For the stream, analysisMs lasts until the log is read (redo runs meanwhile) and redoMs is the redo left after it',
          postgresAnchor: 'PostgreSQL 15 restart after kill -9 with 0.75–1.25 GB WAL since checkpoint: 2.4–11.2 s (../shared/TARGETS.md); goal ≤ ⅓ of that for the same WAL volume',
        },
      });
      const med = (m: Mode) => median(of(m).map((r) => r.stats.durationMs));
      if (has(TWO_PASS_POOL) && has(STREAM_INLINE) && has(STREAM_RINGS)) summary.push(
        `${t.label}: recovery medians two-pass pool ${med(TWO_PASS_POOL).toFixed(0)} ms, stream this thread ${med(STREAM_INLINE).toFixed(0)} ms, stream rings ${med(STREAM_RINGS).toFixed(0)} ms ` +
          `(rings ×${(med(TWO_PASS_POOL) / med(STREAM_RINGS)).toFixed(2)} vs two-pass pool, ×${(med(STREAM_INLINE) / med(STREAM_RINGS)).toFixed(2)} vs the stream without rings)`,
      );

      const undoMs = runs.map((r) => r.stats.passes.undoMs);
      const bestUndo = Math.min(...undoMs);
      undoRows.push({
        name: `undo, ${t.label} WAL`,
        value: perS(t.gen.loserUpdates, bestUndo),
        unit: 'records/s',
        extra: { ms: r2(bestUndo), medianMs: r2(median(undoMs)), records: t.gen.loserUpdates, losers: t.gen.loserTxs, runs: runs.length, vsSeedClaim: r2(perS(t.gen.loserUpdates, bestUndo) / SEED_UNDO_PER_S) },
      });
    }

    if (!recoveryOnly && undoRows.length > 0 && losers > 0 && loserRecords > 0) {
      const worst = Math.min(...undoRows.map((r) => r.value));
      report({
        bench: 'undo',
        baseline: undoRows[0]!.name,
        rows: undoRows,
        goal: { description: `undo ≥ ${SEED_UNDO_PER_S} records/s (seed: "< 1 s per 1000 operations"); slowest measured ${(worst / SEED_UNDO_PER_S).toFixed(1)}× that`, met: worst >= SEED_UNDO_PER_S },
        params: {
          seedClaim: 'Rollback time: < 1 second per 1000 operations (../shared/seed/auto-recovery-summary.md)',
          factorVsSeedClaim: r2(worst / SEED_UNDO_PER_S),
          measured: 'passes.undoMs of every run (single-threaded and pool alike; undo is always on the main thread), best run; each undone update logs a CLR, then one flush',
          losers,
          recordsPerLoser: loserRecords,
          loserPages: 'loser i updates pages 2 + i + losers·k, random k: about one record per page',
        },
      });
    }
    console.log(`\n${summary.join('\n')}\ntotal ${((performance.now() - t0) / 1e3).toFixed(0)} s`);
  } finally {
    await pool.close();
    rmSync(path.join(workDir, 'run'), { recursive: true, force: true });
    if (!keep) rmSync(workDir, { recursive: true, force: true });
  }
}

await main();

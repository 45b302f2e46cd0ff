/**
 * Our side of bench/recoveryVsPostgres.ts alone, repeatable: the same TPC-B store
 * (bench/fixtures/tpcbStore.ts) killed with `kill -9` after the same number of transactions,
 * generated once and kept, then restarted `--runs` times from a fresh copy of it. For working on
 * recovery's speed (issue #16 item 1) without pgbench's minutes of CPU: every run recovers the
 * very same WAL, so passes compare before/after a change.
 *
 * Each copy is fsync'd before the restart (the killed writer's WAL was durable; a dirty copy would
 * make recovery's reopen of the log write it out). Per run: the 1-minute load average at its start (the machine is shared: a figure means little
 * without it), the restart (spawn of a process until PageStore.open returns, as the side-by-side
 * bench times it), the recovery's passes and its CPU time (every thread of the process). The
 * best run (shortest recovery) is the one reported.
 *
 * Run: npm run bench:recovery-ours [-- --store DIR --transactions N --runs 3 --writers 32 --scale 10]
 * `--transactions` defaults to the 258 966 commits of PostgreSQL's WAL in the last side-by-side
 * run at 256 MiB (bench/results/recovery-vs-postgres.json). With `--store DIR` the generated
 * store is kept in DIR/pristine and reused by later runs given the same DIR (regenerated when
 * the transaction count differs); without, everything goes to a temp dir removed at the end.
 * Writes bench/results/recovery-ours.json; PostgreSQL's figures need the side-by-side bench.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { numArg, strArg } from './lib/args.js';
import { firstLine } from './lib/fixtureChild.js';
import { report } from './lib/report.js';
import type { TpcbGenConfig, TpcbGenResult } from './fixtures/tpcbStore.js';
import type { RecoveryStats } from '../plugins/pagestore/recovery.js';

if (process.argv.includes('--help')) {
  console.log('bench/recoveryOurs.js: our restart after kill -9 on the TPC-B store of bench:recovery-vs-postgres, repeated (see the file header).\n\n' +
    '  --store DIR         keep (and reuse) the generated store in DIR/pristine\n  --transactions N    TPC-B transactions before the kill (default 258966)\n' +
    '  --runs N            restarts from a fresh copy (default 3)\n  --writers N         concurrent writers (default 32)\n  --scale N           pgbench scale (default 10)\n  --help              this text');
  process.exit(0);
}
const MiB = 1 << 20;
const TRANSACTIONS = numArg('transactions', 258_966);
const RUNS = numArg('runs', 3);
const WRITERS = numArg('writers', 32);
const SCALE = numArg('scale', 10);
const storeArg = strArg('store');
const root = storeArg ?? mkdtempSync(path.join(os.tmpdir(), 'ra-bench-ours-'));
const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tpcbStore.js');
const r2 = (v: number) => Number(v.toFixed(2));


/** The killed store in ROOT/pristine: generated (and the writer killed with SIGKILL) unless kept from before. */
async function pristine(): Promise<TpcbGenResult> {
  const dir = path.join(root, 'pristine');
  const meta = path.join(root, 'gen.json');
  if (existsSync(meta) && existsSync(path.join(dir, 'control'))) {
    const kept = JSON.parse(readFileSync(meta, 'utf8')) as { transactions: number; gen: TpcbGenResult };
    if (kept.transactions === TRANSACTIONS) {
      console.log(`Reusing ${dir}: ${kept.gen.committedTxs} transactions, ${(kept.gen.walBytes / MiB).toFixed(0)} MiB of WAL`);
      return kept.gen;
    }
  }
  rmSync(dir, { recursive: true, force: true });
  rmSync(meta, { force: true });
  const cfg: TpcbGenConfig = { dir, scale: SCALE, transactions: TRANSACTIONS, writers: WRITERS, pageSize: 8192, segmentSize: 16 * MiB, seed: 0x7cb };
  process.stdout.write(`Generating: ${TRANSACTIONS} TPC-B transactions, ${WRITERS} writers ... `);
  const { value: gen, child } = await firstLine<TpcbGenResult>(fixture, ['gen', JSON.stringify(cfg)]);
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(sig)));
  child.kill('SIGKILL');
  if ((await exited) !== 'SIGKILL') throw new Error('the writer was not killed by SIGKILL');
  console.log(`${(gen.walBytes / MiB).toFixed(0)} MiB of WAL in ${(gen.genMs / 1e3).toFixed(0)} s; kill -9 of the writer`);
  writeFileSync(meta, JSON.stringify({ transactions: TRANSACTIONS, gen }) + '\n');
  return gen;
}

/** fsync of every file under `dir` (and the directories). */
function syncTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) syncTree(p);
    else if (e.isFile()) {
      const fd = openSync(p, 'r');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

interface Run {
  load1: number;
  restartMs: number;
  openMs: number;
  cpuMs: number;
  stats: RecoveryStats;
}

try {
  const gen = await pristine();
  const runs: Run[] = [];
  const work = path.join(root, 'run');
  for (let i = 0; i < RUNS; i++) {
    rmSync(work, { recursive: true, force: true });
    const cp = spawnSync('cp', ['-a', path.join(root, 'pristine'), work]);
    if (cp.status !== 0) throw new Error(`cp -a failed: ${cp.stderr.toString()}`);
    // The killed writer's WAL was durable (its commits were fdatasync'd); the copy's is dirty in
    // the page cache, and recovery's reopen of the log (WalWriter.open's datasync of the last
    // segment) would pay for writing it out. Sync the copy first, as the original was.
    syncTree(work);
    const load1 = r2(os.loadavg()[0]!);
    const { value, ms, child } = await firstLine<{ openMs: number; cpuMs: number; stats: RecoveryStats }>(fixture, ['open', work]);
    // The child closes the store after reporting (its checkpoint writes): let it finish first.
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    const s = value.stats;
    if (s.recordsRedone !== gen.updateRecords) throw new Error(`recovery redid ${s.recordsRedone} records; the writer committed ${gen.updateRecords}`);
    const p = s.passes;
    console.log(
      `  run ${i + 1}: load ${load1}  restart ${ms.toFixed(0)} ms  recovery ${s.durationMs.toFixed(0)} ms (analysis ${p.analysisMs.toFixed(0)}, redo ${p.redoMs.toFixed(0)}, ` +
        `undo ${p.undoMs.toFixed(0)}, checkpoint ${s.checkpointDeferred ? 'deferred' : p.checkpointMs.toFixed(0)})  CPU ${value.cpuMs.toFixed(0)} ms  ${s.walRecordsScanned} records`,
    );
    runs.push({ load1, restartMs: ms, openMs: value.openMs, cpuMs: value.cpuMs, stats: s });
  }
  rmSync(work, { recursive: true, force: true });
  const best = runs.reduce((a, b) => (b.stats.durationMs < a.stats.durationMs ? b : a));
  const s = best.stats;
  const recordsPerS = (s.walRecordsScanned * 1e3) / s.durationMs;
  report({
    bench: 'recovery-ours',
    baseline: 'whole recovery, records/s',
    rows: [
      { name: 'whole recovery, records/s', value: recordsPerS, unit: 'records/s', extra: { ms: r2(s.durationMs), records: s.walRecordsScanned, load1: best.load1 } },
      { name: 'whole recovery, MB/s', value: s.walBytesRead / 1e3 / s.durationMs, unit: 'MB/s', baseline: 'whole recovery, MB/s', extra: { MB: r2(s.walBytesRead / 1e6) } },
      { name: 'restart to ready, ms', value: best.restartMs, unit: 'ms', baseline: 'restart to ready, ms', extra: { openMs: r2(best.openMs) } },
    ],
    params: {
      transactions: TRANSACTIONS,
      gen,
      best: { load1: best.load1, passes: s.passes, checkpointDeferred: s.checkpointDeferred, durationMs: s.durationMs, cpuMs: r2(best.cpuMs), restartMs: r2(best.restartMs), redoWorkers: s.redoWorkers, recordsRedone: s.recordsRedone, walBytesRead: s.walBytesRead },
      runs: runs.map((r) => ({ load1: r.load1, durationMs: r.stats.durationMs, passes: r.stats.passes, cpuMs: r2(r.cpuMs), restartMs: r2(r.restartMs) })),
      condition: 'warm page cache (the store is copied before each run); best of the runs by recovery time',
      cpus: os.availableParallelism(),
    },
  });
} finally {
  if (!storeArg) rmSync(root, { recursive: true, force: true });
}

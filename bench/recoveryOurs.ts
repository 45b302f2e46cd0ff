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
 * run at 256 MiB (bench/results/recovery-vs-postgres-256MiB.json). With `--store DIR` the generated
 * store is kept in DIR/pristine and reused by later runs given the same DIR (regenerated when
 * the transaction count differs); without, everything goes to a temp dir removed at the end.
 * Writes bench/results/recovery-ours.json; PostgreSQL's figures need the side-by-side bench.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { numArg, strArg } from './lib/args.js';
import { firstLine } from './lib/fixtureChild.js';
import { median, restartOurs, tpcbFixture, type OurRestart } from './lib/ourRestart.js';
import { report } from './lib/report.js';
import type { TpcbGenConfig, TpcbGenResult } from './fixtures/tpcbStore.js';

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
  const { value: gen, child } = await firstLine<TpcbGenResult>(tpcbFixture, ['gen', JSON.stringify(cfg)]);
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(sig)));
  child.kill('SIGKILL');
  if ((await exited) !== 'SIGKILL') throw new Error('the writer was not killed by SIGKILL');
  console.log(`${(gen.walBytes / MiB).toFixed(0)} MiB of WAL in ${(gen.genMs / 1e3).toFixed(0)} s; kill -9 of the writer`);
  writeFileSync(meta, JSON.stringify({ transactions: TRANSACTIONS, gen }) + '\n');
  return gen;
}

try {
  const gen = await pristine();
  const runs: OurRestart[] = [];
  for (let i = 0; i < RUNS; i++) {
    const run = await restartOurs(path.join(root, 'pristine'), path.join(root, 'run'), gen.updateRecords);
    const s = run.stats;
    const p = s.passes;
    console.log(
      `  run ${i + 1}: load ${r2(run.load1)}  restart ${run.restartMs.toFixed(0)} ms  recovery ${s.durationMs.toFixed(0)} ms (analysis ${p.analysisMs.toFixed(0)}, redo ${p.redoMs.toFixed(0)}, ` +
        `undo ${p.undoMs.toFixed(0)}, checkpoint ${s.checkpointDeferred ? 'deferred' : p.checkpointMs.toFixed(0)})  CPU ${run.cpuMs.toFixed(0)} ms  ${s.walRecordsScanned} records`,
    );
    runs.push(run);
  }
  const best = runs.reduce((a, b) => (b.stats.durationMs < a.stats.durationMs ? b : a));
  const s = best.stats;
  const recordsPerS = (s.walRecordsScanned * 1e3) / s.durationMs;
  report({
    bench: 'recovery-ours',
    baseline: 'whole recovery, records/s',
    rows: [
      { name: 'whole recovery, records/s', value: recordsPerS, unit: 'records/s', extra: { ms: r2(s.durationMs), records: s.walRecordsScanned, load1: r2(best.load1) } },
      { name: 'whole recovery, MB/s', value: s.walBytesRead / 1e3 / s.durationMs, unit: 'MB/s', baseline: 'whole recovery, MB/s', extra: { MB: r2(s.walBytesRead / 1e6) } },
      { name: 'restart to ready, ms', value: best.restartMs, unit: 'ms', baseline: 'restart to ready, ms', extra: { openMs: r2(best.openMs) } },
      { name: 'median whole recovery, ms', value: median(runs.map((r) => r.stats.durationMs)), unit: 'ms', baseline: 'median whole recovery, ms', extra: { runs: runs.length } },
      { name: 'median restart to ready, ms', value: median(runs.map((r) => r.restartMs)), unit: 'ms', baseline: 'median restart to ready, ms', extra: { runs: runs.length } },
      { name: 'median CPU of the open, ms', value: median(runs.map((r) => r.cpuMs)), unit: 'ms', baseline: 'median CPU of the open, ms', extra: { runs: runs.length } },
    ],
    params: {
      transactions: TRANSACTIONS,
      gen,
      best: { load1: r2(best.load1), passes: s.passes, checkpointDeferred: s.checkpointDeferred, durationMs: s.durationMs, cpuMs: r2(best.cpuMs), restartMs: r2(best.restartMs), redoWorkers: s.redoWorkers, recordsRedone: s.recordsRedone, walBytesRead: s.walBytesRead },
      runs: runs.map((r) => ({ load1: r2(r.load1), durationMs: r.stats.durationMs, passes: r.stats.passes, cpuMs: r2(r.cpuMs), restartMs: r2(r.restartMs) })),
      condition: 'warm page cache (the store is copied and fsync\'d before each run); best of the runs by recovery time, and the medians',
      cpus: os.availableParallelism(),
    },
  });
} finally {
  if (!storeArg) rmSync(root, { recursive: true, force: true });
}

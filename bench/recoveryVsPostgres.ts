/**
 * Restart after `kill -9`: PostgreSQL 15 and our page store side by side, in one run, on the
 * same logical work (issue #16 item 2).
 *
 * PostgreSQL (run as the `postgres` user when we are root: it refuses root; data dir in a temp
 * dir it owns): initdb, settings fsync=on, full_page_writes=on, checkpoint_timeout=1d, max_wal_size = 4× the WAL target (≥ 4 GB; a checkpoint is due at
 * max_wal_size / (1 + checkpoint_completion_target)), shared_buffers=512MB, autovacuum=off,
 * synchronous_commit=off (the WAL writer flushes commits within 200 ms instead of each client
 * waiting for its own fsync: the same records, written ~10× faster on this disk, where one
 * fsync'd commit per client makes 1 GiB of WAL take over an hour; replay is unchanged), then
 * `pgbench -i -s SCALE`, `CHECKPOINT`, then pgbench's default TPC-B-like transaction (3 UPDATEs,
 * 1 INSERT, 1 SELECT) with `--clients` clients: a calibration batch, then the rest of the fixed
 * number of transactions that brings the WAL since the checkpoint to about `--wal-mib`. The
 * transaction count both sides use is the COMMIT records in PostgreSQL's WAL (what its replay
 * goes through; with asynchronous commit the last few ms of commits may not be). Then every
 * server process gets SIGKILL (postmaster and children at once, as a crash would), and
 *   - `pg_waldump --stats=record` from the checkpoint's redo LSN (pg_controldata) to the end of
 *     valid WAL counts the records, bytes and COMMIT records replay will go through;
 *   - `pg_ctl start` on a fresh, fsync'd copy of the killed data directory is timed until the
 *     server accepts connections (postmaster.pid reports "ready", polled every 2 ms, as
 *     `pg_ctl -w` does every 100 ms; checked with pg_isready), then it is stopped again;
 *   - the log's "redo done at … elapsed: X s" gives the pure redo time.
 *
 * Ours (bench/fixtures/tpcbStore.ts, which says how rows map onto pages): a new store,
 * checkpointed, then exactly as many transactions as PostgreSQL's WAL holds commits, each 4 row writes on
 * 4 pages + commit, by `--writers` concurrent writers in a child process that the bench kills
 * with SIGKILL. Restart = spawning a fresh process that opens a fresh, fsync'd copy of the killed
 * store with a pool of 2 workers (crash recovery inside the open) until it reports ready; the
 * recovery stats give the whole-recovery and redo-pass times (bench/lib/ourRestart.ts).
 *
 * Each side restarts `--runs` times (default 3), the two sides in turn, so that both meet the
 * same load on a shared machine; the best of each side's runs is reported, and the medians
 * beside it (a single run of each used to differ from the best by half). Both with a warm page
 * cache (the copies were just written; nothing is dropped). Reported for both:
 * replay records/s, MB/s and transactions/s, restart time; ratios ours / PostgreSQL (for a
 * restart time, PostgreSQL / ours, so > 1 means we are faster); and records per CPU-second
 * (PostgreSQL's redo CPU from its log, ours every thread's over the open), the figure a loaded
 * machine disturbs least. JSON: bench/results/recovery-vs-postgres-<N>MiB.json, one per WAL size.
 *
 * Installs nothing: without PostgreSQL 15's binaries it says how to get them and exits 0.
 *
 * Run: npm run bench:recovery-vs-postgres [-- --wal-mib 1024 --scale 10 --clients 8
 *      --writers 32 --pg-bin DIR --keep]
 * Default --wal-mib 1024, the "about 1 GiB of WAL": 2.16 M transactions, 15 min for the
 * whole bench on this 2-CPU machine when it is quiet (pgbench ~8 min at ~3 000 tx/s, our writer
 * ~4 min at ~8 600 tx/s, then the restarts). --wal-mib 256 (259 k transactions, ~2.5 min) is the
 * quick look; there a fixed cost weighs four times as much on our side (the workers' compiled
 * code and first-touched memory, the process start; see the README), on PostgreSQL's its
 * start-up.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { numArg, strArg } from './lib/args.js';
import { firstLine } from './lib/fixtureChild.js';
import { copyTree, median, restartOurs, syncTree, tpcbFixture, type OurRestart } from './lib/ourRestart.js';
import { report, type BenchRow } from './lib/report.js';
import type { TpcbGenConfig, TpcbGenResult } from './fixtures/tpcbStore.js';

const MiB = 1 << 20;
const WAL_MIB = numArg('wal-mib', 1024);
const SCALE = numArg('scale', 10);
const CLIENTS = numArg('clients', 8);
const WRITERS = numArg('writers', 32);
const KEEP = process.argv.includes('--keep');
const RUNS = numArg('runs', 3);
if (process.argv.includes('--help')) {
  console.log('bench/recoveryVsPostgres.js: restart after kill -9, PostgreSQL 15 beside our page store (see the file header).\n\n' +
    '  --wal-mib N     WAL since the checkpoint to generate (default 1024, the issue\'s figure; 256 for a quick look)\n' +
    '  --scale N       pgbench scale (default 10)\n  --clients N     pgbench clients (default 8)\n' +
    '  --writers N     our concurrent writers (default 32)\n  --runs N        restarts of each side from a fresh copy of its killed state (default 3)\n  --pg-bin DIR    where initdb, pg_ctl, postgres, pgbench, pg_waldump are\n' +
    '  --keep          keep the data directories\n  --help          this text');
  process.exit(0);
}
/** Where to look: --pg-bin or PG_BIN alone when given, else Debian's directory for version 15. */
const PG_BIN_CANDIDATES = [strArg('pg-bin') ?? process.env.PG_BIN ?? '/usr/lib/postgresql/15/bin'];
const NEEDED = ['initdb', 'pg_ctl', 'postgres', 'pgbench', 'pg_waldump', 'pg_controldata', 'pg_isready', 'psql'];

/** The directory holding every PostgreSQL 15 binary we need, or null. */
function findPgBin(): string | null {
  for (const dir of PG_BIN_CANDIDATES) if (NEEDED.every((b) => existsSync(path.join(dir, b)))) return dir;
  if (strArg('pg-bin') ?? process.env.PG_BIN) return null;
  // On PATH (e.g. another distribution's layout): take the directory of `pg_ctl`, if version 15.
  const which = spawnSync('sh', ['-c', 'command -v pg_ctl'], { encoding: 'utf8' });
  const dir = which.status === 0 ? path.dirname(which.stdout.trim()) : '';
  return dir && NEEDED.every((b) => existsSync(path.join(dir, b))) ? dir : null;
}

const pgBin = findPgBin();
if (!pgBin) {
  console.log(
    `recovery-vs-postgres: PostgreSQL 15's binaries (${NEEDED.join(', ')}) were not found in ${PG_BIN_CANDIDATES.join(', ')} or on PATH.\n` +
      'This bench installs nothing. On Debian/Ubuntu: apt-get install postgresql (version 15: postgresql-15), ' +
      'then run it again (or point --pg-bin / PG_BIN at the directory holding them). Skipped.',
  );
  process.exit(0);
}

const asRoot = process.getuid?.() === 0;
/** Runs a PostgreSQL binary as the postgres user (PostgreSQL refuses to run as root). */
function pgArgv(bin: string, args: string[]): [string, string[]] {
  const exe = path.join(pgBin!, bin);
  return asRoot ? ['runuser', ['-u', 'postgres', '--', exe, ...args]] : [exe, args];
}
function pg(bin: string, args: string[], opts: { allowFail?: boolean } = {}): SpawnSyncReturns<string> {
  const [cmd, argv] = pgArgv(bin, args);
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 * MiB });
  if (r.status !== 0 && !opts.allowFail) throw new Error(`${bin} ${args.join(' ')} failed (${r.signal ?? r.status}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r;
}

const version = pg('postgres', ['--version']).stdout.trim();
if (!/ 15\./.test(version)) console.log(`warning: ${version} is not PostgreSQL 15; measuring it anyway`);

const root = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-pgvs-'));
const pgData = path.join(root, 'pgdata');
const pgLog = path.join(root, 'postgres.log');
/** Each restart's copy of the killed data directory. */
const pgRun = path.join(root, 'pgrun');
const ourStore = path.join(root, 'store');
const ourRun = path.join(root, 'store-run');
const port = 15432 + (process.pid % 1000);
const conn = ['-h', root, '-p', String(port), '-U', 'postgres'];
if (asRoot) {
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout);
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout);
  chownSync(root, uid, gid);
}
const psql = (sql: string) => pg('psql', [...conn, '-d', 'postgres', '-Atqc', sql]).stdout.trim();
const r2 = (v: number) => Number(v.toFixed(2));

/** Every process whose parent is `pid` (the postmaster's children: backends and auxiliaries). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}
/** Until reaped, a killed postmaster's pid still answers kill(pid, 0), and a new postmaster takes its lock file for in use. */
const gone = (pid: number) => !existsSync(`/proc/${pid}`);

interface PgResult {
  transactions: number;
  walBytesAtKill: number;
  redoLsn: string;
  records: number;
  recordBytes: number;
  fpiBytes: number;
  combinedBytes: number;
  commits: number;
  pgbenchS: number;
  /** The killed postmaster's pid (its postmaster.pid is still in the data directory). */
  pmPid: number;
}

/** One restart of a copy of PostgreSQL's killed data directory. */
interface PgRestart {
  load1: number;
  redoElapsedS: number;
  redoCpuS: number;
  restartMs: number;
}

async function runPostgres(): Promise<PgResult> {
  pg('initdb', ['-D', pgData, '-A', 'trust', '-U', 'postgres', '--no-sync']);
  const maxWalMb = Math.max(4096, 4 * WAL_MIB);
  const settings = [
    'fsync=on', 'full_page_writes=on', 'synchronous_commit=off', 'checkpoint_timeout=1d', `max_wal_size=${maxWalMb}MB`,
    'shared_buffers=512MB', `port=${port}`, `unix_socket_directories='${root}'`, "listen_addresses=''", 'autovacuum=off',
  ];
  // Appended to postgresql.conf (owned by postgres; appending keeps the owner): the last setting wins.
  appendFileSync(path.join(pgData, 'postgresql.conf'), `\n# recovery-vs-postgres bench\n${settings.join('\n')}\n`);
  pg('pg_ctl', ['-D', pgData, '-l', pgLog, '-w', 'start']);
  console.log(`PostgreSQL: ${version}; settings ${settings.slice(0, 7).join(' ')} autovacuum=off`);
  process.stdout.write(`  pgbench -i -s ${SCALE} ... `);
  pg('pgbench', [...conn, '-i', '-q', '-s', String(SCALE), 'postgres']);
  psql('CHECKPOINT');
  const redoLsn = psql('SELECT redo_lsn FROM pg_control_checkpoint()');
  console.log(`done; CHECKPOINT, redo LSN ${redoLsn}`);
  const walSince = () => Number(psql(`SELECT pg_current_wal_lsn() - '${redoLsn}'::pg_lsn`));

  let transactions = 0;
  const tb0 = performance.now();
  const bench = (perClient: number) => {
    const r = pg('pgbench', [...conn, '-n', '-M', 'prepared', '-c', String(CLIENTS), '-j', '2', '-t', String(perClient), 'postgres']);
    const m = /number of transactions actually processed: (\d+)/.exec(r.stdout);
    if (!m) throw new Error(`pgbench printed no transaction count: ${r.stdout}`);
    transactions += Number(m[1]);
  };
  // A calibration batch, then batches of a fixed count sized by the WAL per transaction so far
  // (the first batches log more full-page images per transaction than later ones).
  bench(1000);
  let [prevWal, prevTx] = [0, 0];
  for (let wal = walSince(); wal < WAL_MIB * MiB * 0.98; wal = walSince()) {
    // WAL per transaction of the last batch: the rate falls as fewer pages get their first change.
    const perTx = (wal - prevWal) / (transactions - prevTx);
    [prevWal, prevTx] = [wal, transactions];
    const rest = Math.max(100, Math.ceil((WAL_MIB * MiB - wal) / perTx / CLIENTS));
    console.log(`  pgbench: ${transactions} transactions gave ${(wal / MiB).toFixed(1)} MiB of WAL (${perTx.toFixed(0)} B each); ${rest * CLIENTS} more`);
    bench(rest);
  }
  const pgbenchS = (performance.now() - tb0) / 1e3;
  const walBytesAtKill = walSince();
  console.log(`  ${transactions} transactions, ${(walBytesAtKill / MiB).toFixed(0)} MiB of WAL since the checkpoint, ${pgbenchS.toFixed(0)} s`);

  // The crash: SIGKILL to the postmaster and all its children at once.
  const pmPid = Number(readFileSync(path.join(pgData, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const victims = [pmPid, ...childrenOf(pmPid)];
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      // A backend may end on its own between the listing and the signal (the postmaster is gone).
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  for (const tk = performance.now(); !victims.every(gone); await sleep(5)) {
    if (performance.now() - tk > 60_000) throw new Error(`killed PostgreSQL processes not reaped after 60 s: ${victims.filter((p) => !gone(p)).join(' ')}`);
  }
  console.log(`  kill -9 of the postmaster (pid ${pmPid}) and its ${victims.length - 1} children`);

  const control = pg('pg_controldata', ['-D', pgData]).stdout;
  const ctlRedo = /Latest checkpoint's REDO location:\s+(\S+)/.exec(control)?.[1];
  if (ctlRedo !== redoLsn) throw new Error(`pg_controldata's redo LSN ${ctlRedo} is not the CHECKPOINT's ${redoLsn}: another checkpoint ran during the workload`);
  // pg_waldump reads to the end of valid WAL and then exits 1 ("invalid record length"), after its stats.
  const dump = pg('pg_waldump', ['-p', path.join(pgData, 'pg_wal'), '-s', redoLsn, '--stats=record'], { allowFail: true });
  const total = /^Total\s+(\d+)\s+(\d+)\s+\[[\d.]+%\]\s+(\d+)\s+\[[\d.]+%\]\s+(\d+)/m.exec(dump.stdout);
  const commit = /^Transaction\/COMMIT\s+(\d+)/m.exec(dump.stdout);
  if (!total || !commit) throw new Error(`pg_waldump --stats printed no totals: ${dump.stdout.slice(0, 2000)} ${dump.stderr}`);

  console.log(`  ${total[1]} records, ${(Number(total[4]) / MiB).toFixed(0)} MiB, ${commit[1]} commits to replay (pg_waldump --stats)`);
  return {
    transactions, walBytesAtKill, redoLsn, pmPid,
    records: Number(total[1]), recordBytes: Number(total[2]), fpiBytes: Number(total[3]), combinedBytes: Number(total[4]), commits: Number(commit[1]),
    pgbenchS,
  };
}

/**
 * Starts PostgreSQL on a fresh copy of the killed data directory, times it until it accepts
 * connections, reads its "redo done" line, and stops it again (immediate: nothing measured).
 */
async function restartPostgres(pmPid: number): Promise<PgRestart> {
  copyTree(pgData, pgRun);
  syncTree(pgRun);
  rmSync(pgLog, { force: true });
  const load1 = os.loadavg()[0]!;
  const [cmd, argv] = pgArgv('pg_ctl', ['-D', pgRun, '-l', pgLog, '-W', 'start']);
  const t0 = performance.now();
  const starter = spawn(cmd, argv, { stdio: 'ignore' });
  const pidFile = path.join(pgRun, 'postmaster.pid');
  for (;;) {
    try {
      // Line 1 of postmaster.pid: the postmaster's pid (the killed one's file is still there
      // until the new one replaces it); line 8: its status, "ready" once it accepts connections.
      const lines = readFileSync(pidFile, 'utf8').split('\n');
      if (Number(lines[0]) !== pmPid && lines[7]?.trim() === 'ready') break;
    } catch {
      // not written yet
    }
    if (performance.now() - t0 > 300_000) throw new Error(`PostgreSQL did not become ready within 5 minutes (see ${pgLog}; --keep keeps it)`);
    await sleep(2);
  }
  const restartMs = performance.now() - t0;
  await new Promise((resolve) => (starter.exitCode !== null ? resolve(null) : starter.once('exit', resolve)));
  pg('pg_isready', [...conn, '-d', 'postgres']);
  const log = readFileSync(pgLog, 'utf8');
  const done = /redo done at \S+ system usage: CPU: user: ([\d.]+) s, system: ([\d.]+) s, elapsed: ([\d.]+) s/.exec(log);
  if (!done) throw new Error(`no "redo done … elapsed" line in ${pgLog}`);
  pg('pg_ctl', ['-D', pgRun, '-m', 'immediate', '-w', 'stop']);
  return { load1, redoElapsedS: Number(done[3]), redoCpuS: Number(done[1]) + Number(done[2]), restartMs };
}

/** Generates our store (the same transactions), kills the writer; restarts come later (restartOurs). */
async function genOurs(transactions: number): Promise<TpcbGenResult> {
  const cfg: TpcbGenConfig = { dir: ourStore, scale: SCALE, transactions, writers: WRITERS, pageSize: 8192, segmentSize: 16 * MiB, seed: 0x7cb };
  process.stdout.write(`Ours: ${transactions} TPC-B transactions, ${WRITERS} writers ... `);
  const { value: gen, child } = await firstLine<TpcbGenResult>(tpcbFixture, ['gen', JSON.stringify(cfg)]);
  const exited = new Promise((resolve) => child.once('exit', (code, sig) => resolve(sig)));
  child.kill('SIGKILL');
  if ((await exited) !== 'SIGKILL') throw new Error('the writer was not killed by SIGKILL');
  console.log(`${(gen.walBytes / MiB).toFixed(0)} MiB of WAL, ${(gen.genMs / 1e3).toFixed(0)} s (${((gen.committedTxs * 1e3) / gen.txMs).toFixed(0)} tx/s, ${(gen.committedTxs / gen.flushes).toFixed(1)} a flush); kill -9 of the writer`);
  return gen;
}

const loadAtStart = os.loadavg().map(r2);
try {
  const t0 = performance.now();
  const p = await runPostgres();
  const gen = await genOurs(p.commits);
  // The restarts, each side's in turn (PostgreSQL, ours, PostgreSQL, …): both meet the same
  // load on this shared machine, and both start from a fresh, fsync'd copy of the killed state.
  const pgRuns: PgRestart[] = [];
  const ourRuns: OurRestart[] = [];
  for (let i = 0; i < RUNS; i++) {
    const q = await restartPostgres(p.pmPid);
    pgRuns.push(q);
    console.log(`  run ${i + 1} PostgreSQL: load ${r2(q.load1)}  restart to ready ${q.restartMs.toFixed(0)} ms; redo elapsed ${q.redoElapsedS} s (CPU ${q.redoCpuS.toFixed(2)} s)`);
    const o = await restartOurs(ourStore, ourRun, gen.updateRecords);
    ourRuns.push(o);
    const os_ = o.stats;
    console.log(`  run ${i + 1} ours:       load ${r2(o.load1)}  restart to ready ${o.restartMs.toFixed(0)} ms (open ${o.openMs.toFixed(0)} ms, recovery ${os_.durationMs.toFixed(0)} ms, CPU ${o.cpuMs.toFixed(0)} ms); ${os_.recordsRedone} records redone, ${os_.walRecordsScanned} scanned, ${(os_.walBytesRead / MiB).toFixed(0)} MiB`);
  }
  // Best of the runs for each side and each figure (its shortest redo, its shortest restart), and the medians.
  const pgRedoMs = Math.min(...pgRuns.map((q) => q.redoElapsedS * 1e3));
  const pgRestartMs = Math.min(...pgRuns.map((q) => q.restartMs));
  const best = ourRuns.reduce((a, b) => (b.stats.durationMs < a.stats.durationMs ? b : a));
  const s = best.stats;
  const ourRestartMs = Math.min(...ourRuns.map((o) => o.restartMs));
  const pgCpuMs = Math.min(...pgRuns.map((q) => q.redoCpuS * 1e3));
  const ourCpuMs = Math.min(...ourRuns.map((o) => o.cpuMs));
  const med = {
    pgRedoMs: median(pgRuns.map((q) => q.redoElapsedS * 1e3)),
    pgRestartMs: median(pgRuns.map((q) => q.restartMs)),
    ourRecoveryMs: median(ourRuns.map((o) => o.stats.durationMs)),
    ourRestartMs: median(ourRuns.map((o) => o.restartMs)),
  };
  const perS = (n: number, ms: number) => (n * 1e3) / ms;
  const row = (name: string, value: number, unit: string, baseline: string, extra: Record<string, number | string>): BenchRow => ({ name, value, unit, baseline, extra });
  const pgExtra = { ms: r2(pgRedoMs), records: p.records, MB: r2(p.combinedBytes / 1e6), commits: p.commits };
  const ourTxs = gen.committedTxs;
  const rows: BenchRow[] = [
    row('PostgreSQL redo, records/s', perS(p.records, pgRedoMs), 'records/s', 'PostgreSQL redo, records/s', pgExtra),
    row('ours whole recovery, records/s', perS(s.walRecordsScanned, s.durationMs), 'records/s', 'PostgreSQL redo, records/s', { ms: r2(s.durationMs), records: s.walRecordsScanned, redone: s.recordsRedone }),
    row('ours redo pass, records/s', perS(s.walRecordsScanned, s.passes.redoMs), 'records/s', 'PostgreSQL redo, records/s', { ms: r2(s.passes.redoMs), note: 'stream: redo left after analysis' }),
    row('PostgreSQL redo, MB/s', p.combinedBytes / 1e3 / pgRedoMs, 'MB/s', 'PostgreSQL redo, MB/s', pgExtra),
    row('ours whole recovery, MB/s', s.walBytesRead / 1e3 / s.durationMs, 'MB/s', 'PostgreSQL redo, MB/s', { ms: r2(s.durationMs), MB: r2(s.walBytesRead / 1e6) }),
    row('PostgreSQL redo, transactions/s', perS(p.commits, pgRedoMs), 'tx/s', 'PostgreSQL redo, transactions/s', pgExtra),
    row('ours whole recovery, transactions/s', perS(ourTxs, s.durationMs), 'tx/s', 'PostgreSQL redo, transactions/s', { ms: r2(s.durationMs), transactions: ourTxs }),
    // Restart times as restarts per second, so that the ratio reads like the others: > 1 is faster.
    row('PostgreSQL restart to ready, 1/s', 1e3 / pgRestartMs, '1/s', 'PostgreSQL restart to ready, 1/s', { ms: r2(pgRestartMs), redoMs: r2(pgRedoMs) }),
    row('ours restart to ready, 1/s', 1e3 / ourRestartMs, '1/s', 'PostgreSQL restart to ready, 1/s', { ms: r2(ourRestartMs), openMs: r2(best.openMs), recoveryMs: r2(s.durationMs) }),
    // The medians, for the spread the best-of hides.
    row('PostgreSQL median redo, records/s', perS(p.records, med.pgRedoMs), 'records/s', 'PostgreSQL median redo, records/s', { ms: r2(med.pgRedoMs), runs: RUNS }),
    row('ours median whole recovery, records/s', perS(s.walRecordsScanned, med.ourRecoveryMs), 'records/s', 'PostgreSQL median redo, records/s', { ms: r2(med.ourRecoveryMs), runs: RUNS }),
    row('PostgreSQL median restart to ready, 1/s', 1e3 / med.pgRestartMs, '1/s', 'PostgreSQL median restart to ready, 1/s', { ms: r2(med.pgRestartMs), runs: RUNS }),
    row('ours median restart to ready, 1/s', 1e3 / med.ourRestartMs, '1/s', 'PostgreSQL median restart to ready, 1/s', { ms: r2(med.ourRestartMs), runs: RUNS }),
    // CPU time, for a machine shared with other work, where wall time mostly measures the load:
    // PostgreSQL's startup process over its redo (its log's "redo done … CPU"), against every
    // thread of our process over PageStore.open (recovery and all: the workers' start included).
    row('PostgreSQL redo, records per CPU-second', perS(p.records, pgCpuMs), 'records/s', 'PostgreSQL redo, records per CPU-second', { cpuMs: r2(pgCpuMs) }),
    row('ours open, records per CPU-second', perS(s.walRecordsScanned, ourCpuMs), 'records/s', 'PostgreSQL redo, records per CPU-second', { cpuMs: r2(ourCpuMs) }),
  ];
  const restartRatio = pgRestartMs / ourRestartMs;
  const recordRatio = rows[1]!.value / rows[0]!.value;
  report({
    bench: `recovery-vs-postgres-${WAL_MIB}MiB`,
    baseline: 'PostgreSQL redo, records/s',
    rows,
    goal: {
      description: `whole recovery ≥ 3× PostgreSQL's replay records/s (${recordRatio.toFixed(2)}×) and restart ≤ ⅓ of PostgreSQL's (${(ourRestartMs / pgRestartMs).toFixed(2)} of it) for the same ${p.commits} transactions (${WAL_MIB} MiB of PostgreSQL WAL), best of ${RUNS} runs a side`,
      met: recordRatio >= 3 && restartRatio >= 3,
    },
    params: {
      walMiBTarget: WAL_MIB,
      transactions: p.commits,
      pgbenchTransactions: p.transactions,
      shape: "pgbench's default TPC-B-like: 3 UPDATEs (account, teller, branch) + 1 INSERT (history) + commit; ours: the same 4 row writes on 4 pages + commit (bench/fixtures/tpcbStore.ts)",
      postgres: {
        version, scale: SCALE, clients: CLIENTS, pgbenchSeconds: r2(p.pgbenchS), redoLsn: p.redoLsn,
        settings: `fsync=on full_page_writes=on synchronous_commit=off checkpoint_timeout=1d max_wal_size=${Math.max(4096, 4 * WAL_MIB)}MB shared_buffers=512MB autovacuum=off`,
        walBytesSinceCheckpoint: p.walBytesAtKill, records: p.records, recordBytes: p.recordBytes, fpiBytes: p.fpiBytes, combinedBytes: p.combinedBytes,
        commitRecords: p.commits, redoElapsedS: r2(pgRedoMs / 1e3), restartMs: r2(pgRestartMs),
        runs: pgRuns.map((q) => ({ load1: r2(q.load1), redoElapsedS: q.redoElapsedS, redoCpuS: r2(q.redoCpuS), restartMs: r2(q.restartMs) })),
        measured: "records/bytes/commits: pg_waldump --stats=record from the checkpoint's redo LSN to the end of WAL; redo: the log's 'redo done … elapsed'; restart: pg_ctl start until postmaster.pid says ready",
      },
      ours: {
        writers: WRITERS, genSeconds: r2(gen.genMs / 1e3), genTxPerS: Math.round((ourTxs * 1e3) / gen.txMs), genFlushes: gen.flushes, pageCount: gen.pageCount, walBytesSinceCheckpoint: gen.walBytes, committedTransactions: ourTxs,
        walRecordsScanned: s.walRecordsScanned, recordsRedone: s.recordsRedone, walBytesRead: s.walBytesRead, redoMode: s.redoMode, redoWorkers: s.redoWorkers,
        passes: s.passes, durationMs: r2(s.durationMs), openMs: r2(best.openMs), cpuMs: r2(best.cpuMs), restartMs: r2(ourRestartMs),
        runs: ourRuns.map((o) => ({ load1: r2(o.load1), durationMs: o.stats.durationMs, passes: o.stats.passes, cpuMs: r2(o.cpuMs), openMs: r2(o.openMs), restartMs: r2(o.restartMs) })),
        measured: 'records: WAL records scanned by recovery (updates + commits + checkpoint); restart: spawn of a new process until PageStore.open (recovery inside, pool of 2 workers) returns',
      },
      ratios: {
        recordsPerS: r2(recordRatio),
        MBPerS: r2(rows[4]!.value / rows[3]!.value),
        transactionsPerS: r2(rows[6]!.value / rows[5]!.value),
        restartSpeedup: r2(restartRatio),
        medianRecordsPerS: r2(med.pgRedoMs / med.ourRecoveryMs * (s.walRecordsScanned / p.records)),
        medianRestartSpeedup: r2(med.pgRestartMs / med.ourRestartMs),
        recordsPerCpuSecond: r2((s.walRecordsScanned / ourCpuMs) / (p.records / pgCpuMs)),
        note: 'ours / PostgreSQL for rates; restartSpeedup = PostgreSQL restart ms / ours; best of the runs of each side (median: the medians)',
      },
      condition: `warm page cache (each restart from a fresh fsync'd copy of the killed data directory / store); ${RUNS} restarts a side, alternating`,
      runs: RUNS,
      loadAverage: { atStart: loadAtStart, atEnd: os.loadavg().map(r2) },
      cpus: os.availableParallelism(),
      totalSeconds: r2((performance.now() - t0) / 1e3),
    },
  });
} finally {
  // A restart's server, if a run failed while it was up (the killed data directory has no live server).
  if (existsSync(path.join(pgRun, 'postmaster.pid'))) pg('pg_ctl', ['-D', pgRun, '-m', 'immediate', '-w', 'stop'], { allowFail: true });
  if (KEEP) console.log(`kept ${root}`);
  else rmSync(root, { recursive: true, force: true });
}

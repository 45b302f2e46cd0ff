/**
 * Replication on loopback (#14 "Benchmarks"): what a replica costs the primary's commits, how far
 * it lags, how fast it applies and how fast it catches up. The primary is a page store in this
 * process with `replication.json` (its owner's sender, plugins/pagestore/replicationSender.ts);
 * the replica is bench/fixtures/replicaNode.ts, another process running the replication
 * plugin's ReplicaSession over the engine face (append, fdatasync, ack, apply on a pool of 2).
 * Both stores start as copies of one freshly created store: `--pages` (1024) pages of 8 KiB,
 * 16 MiB segments, no checkpoints during a run. Baselines in the same run:
 *
 *   local, N writers    durable commits with no replication.json (the local-only baseline)
 *   sync, N writers     `mode: sync, syncReplicas: 1`: a commit resolves once the replica has it
 *                       durable; goals: p99 added ≤ 3 ms, 8 writers ≥ 0.5× local commits/s
 *   async lag           `mode: async`, commits issued at a steady `--rate` (1000/s): per commit,
 *                       from its resolve on the primary to the replica's append of a run reaching
 *                       the primary's flushed LSN at that resolve being durable (the ack goes out
 *                       right after), and to that run being applied to the replica's pages.
 *                       Both processes stamp the same wall clock. Goal: durable p99 ≤ 50 ms.
 *   apply vs redo       a fresh replica receives the whole async log with apply held back, then
 *                       applies it in one call, timed; against crash recovery (recover(), pool of
 *                       2) of a copy of the same replica directory before that apply: the same
 *                       base and the same WAL. records/s = records redone / wall time.
 *   catch-up            the async replica is SIGKILLed, `--stop-seconds` (60; --quick: 10) of
 *                       writes at `--rate` go on, it restarts (writes still going): the time until
 *                       it has everything the primary had flushed at the restart applied (and,
 *                       in extra, durable); under steady writes "lag 0" is that backlog gone,
 *                       the live lag being the async row's. Goal: ≤ 10 s.
 *
 * Each writer loops begin → write `--bytes` (100) at a rotating offset of one of its own 8 pages →
 * commit (as bench/commit.ts). The load average is printed and kept in params: other processes
 * sharing the 2 CPUs skew every row, the baselines with them.
 *
 * Run: npm run bench:replication [-- --quick --seconds 3 --writers 1,8 --rate 1000 --stop-seconds 60
 *      --pages 1024 --bytes 100 --work-dir DIR]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { WorkerPool } from '../core/workerPool.js';
import { PageStore } from '../plugins/pagestore/pageStore.js';
import { recover } from '../plugins/pagestore/recovery.js';
import type { ReplicaSessionStatus } from '../plugins/replication/replicaSession.js';
import { numArg, strArg } from './lib/args.js';
import { report, type BenchRow } from './lib/report.js';

const PAGE_SIZE = 8192;
const PAGES_PER_WRITER = 8;
const SECRET = 'bench-replication-secret-0123456789';
const quick = process.argv.includes('--quick');
const seconds = numArg('seconds', quick ? 2 : 3);
const levels = (strArg('writers') ?? '1,8').split(',').map(Number);
const rate = numArg('rate', 1000);
const stopSeconds = numArg('stop-seconds', quick ? 10 : 60);
const pageCount = numArg('pages', 1024);
const bytes = numArg('bytes', 100);
const warmupMs = 500;
const workDir = path.resolve(strArg('work-dir') ?? path.join(os.tmpdir(), `ra-bench-repl-${process.pid}`));
const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'replicaNode.js');
if (levels.some((n) => !Number.isInteger(n) || n < 1 || n * PAGES_PER_WRITER >= pageCount)) throw new Error(`--writers: positive integers, at most ${Math.floor((pageCount - 1) / PAGES_PER_WRITER)}`);

const now = (): number => performance.timeOrigin + performance.now();
const r3 = (v: number): number => Number(v.toFixed(3));
const pct = (sorted: number[], q: number): number => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const copyDir = (from: string, to: string): void => cpSync(from, to, { recursive: true, filter: (src) => !lstatSync(src).isSocket() });

/** A replica process and a request/reply channel to it. */
class Replica {
  readonly child: ChildProcess;
  private readonly waiting: Array<(m: Record<string, unknown>) => void> = [];
  readonly ready: Promise<unknown>;
  constructor(dir: string, port: number, id: string, hold = false) {
    this.child = fork(fixture, [JSON.stringify({ dir, port, secret: SECRET, id, hold })], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.waiting.push(resolve);
      this.child.once('exit', (code, sig) => reject(new Error(`replica ${id} exited (${code ?? sig})`)));
    });
    this.child.on('message', (m: Record<string, unknown>) => {
      if (m.error) throw new Error(`replica ${id}: ${String(m.error)}`);
      this.waiting.shift()?.(m);
    });
  }
  ask<T>(cmd: string): Promise<T> {
    return new Promise((resolve) => {
      this.waiting.push(resolve as (m: Record<string, unknown>) => void);
      this.child.send({ cmd });
    });
  }
  status(): Promise<ReplicaSessionStatus> {
    return this.ask<{ status: ReplicaSessionStatus }>('status').then((m) => m.status);
  }
  async stop(): Promise<void> {
    await this.ask('stop');
    if (this.child.exitCode === null) await new Promise((r) => this.child.once('exit', r));
  }
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    if (this.child.exitCode === null && this.child.signalCode === null) await new Promise((r) => this.child.once('exit', r));
  }
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 120_000, everyMs = 20): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

let base = '';
let serial = 0;

/** A primary and (unless `local`) its replica, both copies of the base store. */
async function pair(mode: 'local' | 'sync' | 'async', hold = false): Promise<{ store: PageStore; replica: Replica | null; primaryDir: string; replicaDir: string }> {
  const n = ++serial;
  const primaryDir = path.join(workDir, `primary-${n}`);
  const replicaDir = path.join(workDir, `replica-${n}`);
  copyDir(base, primaryDir);
  if (mode !== 'local') {
    copyDir(base, replicaDir);
    writeFileSync(path.join(primaryDir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, mode, syncReplicas: 1 }), { mode: 0o600 });
  }
  const store = await PageStore.open(primaryDir, { checkpointWalBytes: Number.MAX_SAFE_INTEGER, checkpointIntervalMs: 0, controlSocket: false });
  if (mode === 'local') return { store, replica: null, primaryDir, replicaDir };
  const replica = new Replica(replicaDir, store.replicationAddress!.port, `r${n}`, hold);
  await replica.ready;
  await until('the replica streaming', async () => (await replica.status()).state === 'streaming');
  return { store, replica, primaryDir, replicaDir };
}

const data = Buffer.alloc(bytes, 0x5c);

/** One transaction of writer `w`'s k-th iteration. */
async function commitOne(store: PageStore, w: number, k: number): Promise<void> {
  const tx = store.begin();
  await tx.write(1 + w * PAGES_PER_WRITER + (k % PAGES_PER_WRITER), (k * 97) % (store.payloadSize - bytes), data);
  await tx.commit();
}

/** `writers` closed-loop writers for warm-up + `seconds`: commits/s and latencies. */
async function closedLoop(store: PageStore, writers: number): Promise<{ rate: number; lat: number[] }> {
  let measuring = false;
  let stop = false;
  let commits = 0;
  const lat: number[] = [];
  const run = async (w: number) => {
    for (let k = 0; !stop; k++) {
      const t0 = performance.now();
      await commitOne(store, w, k);
      if (measuring && !stop) {
        commits++;
        lat.push(performance.now() - t0);
      }
    }
  };
  const running = Array.from({ length: writers }, (_, w) => run(w));
  await sleep(warmupMs);
  const t0 = performance.now();
  measuring = true;
  await sleep(seconds * 1e3);
  stop = true;
  const elapsed = (performance.now() - t0) / 1e3;
  await Promise.all(running);
  return { rate: commits / elapsed, lat: lat.sort((a, b) => a - b) };
}

/**
 * Commits at a steady `rate` (one issued every 1/rate s, on schedule whatever the previous ones
 * do) for `ms`; per commit, its resolve time and the primary's flushed LSN then.
 */
async function paced(store: PageStore, ms: number, stop: () => boolean = () => false): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  const inflight = new Set<Promise<void>>();
  const t0 = performance.now();
  for (let i = 0; ; i++) {
    const due = t0 + (i * 1e3) / rate;
    if (due - t0 >= ms || stop()) break;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const p: Promise<void> = commitOne(store, i % 64, i).then(() => {
      out.push([store.status().flushedLsn, now()]);
      inflight.delete(p);
    });
    inflight.add(p);
  }
  await Promise.all(inflight);
  return out;
}

/** Per commit: ms from its resolve to the first mark at or past its LSN. */
function lags(commits: Array<[number, number]>, marks: ReadonlyArray<readonly [number, number, ...number[]]>): number[] {
  const out: number[] = [];
  let j = 0;
  for (const [lsn, t] of [...commits].sort((a, b) => a[0] - b[0])) {
    while (j < marks.length && marks[j]![0] < lsn) j++;
    if (j < marks.length) out.push(Math.max(0, marks[j]![1] - t));
  }
  return out.sort((a, b) => a - b);
}

function loadAvg(): string {
  return os.loadavg().map((v) => v.toFixed(2)).join(' ');
}

async function main(): Promise<void> {
  mkdirSync(workDir, { recursive: true });
  base = path.join(workDir, 'base');
  await (await PageStore.open(base, { create: true, pageCount, pageSize: PAGE_SIZE, controlSocket: false })).close();
  const load: Record<string, string> = { start: loadAvg() };
  console.log(`load average at start: ${load.start} (${os.cpus().length} CPUs, shared)`);
  const rows: BenchRow[] = [];
  const latRow = (name: string, r: { rate: number; lat: number[] }, baseline?: string, extra: Record<string, number | string> = {}): BenchRow => ({
    name,
    value: r.rate,
    unit: 'commits/s',
    ...(baseline ? { baseline } : {}),
    extra: { p50Ms: r3(pct(r.lat, 0.5)), p99Ms: r3(pct(r.lat, 0.99)), commits: r.lat.length, ...extra },
  });
  const goals: string[] = [];
  let met = true;

  // ---- sync commit vs local
  for (const w of levels) {
    const name = `${w} writer${w === 1 ? '' : 's'}`;
    const local = await pair('local');
    const l = await closedLoop(local.store, w);
    await local.store.close();
    const sync = await pair('sync');
    const s = await closedLoop(sync.store, w);
    const st = sync.store.status().replication!;
    const rs = await sync.replica!.ask<{ syncs: number; runs: number }>('syncs');
    await sync.replica!.stop();
    await sync.store.close();
    const added = pct(s.lat, 0.99) - pct(l.lat, 0.99);
    rows.push(latRow(`local, ${name}`, l));
    rows.push(latRow(`sync, ${name}`, s, `local, ${name}`, { p99AddedMs: r3(added), syncState: st.syncState, primaryFlushes: sync.store.walStats.flushes, replicaRuns: rs.runs, replicaSyncs: rs.syncs }));
    goals.push(`${name}: p99 added ${r3(added)} ms (≤ 3)`);
    met &&= added <= 3;
    if (w === 8) {
      goals.push(`8 writers: sync ${r3(s.rate / l.rate)}× local (≥ 0.5)`);
      met &&= s.rate / l.rate >= 0.5;
    }
    console.log(`  ${name}: local ${Math.round(l.rate)}/s p99 ${r3(pct(l.lat, 0.99))} ms; sync ${Math.round(s.rate)}/s p99 ${r3(pct(s.lat, 0.99))} ms (primary flushes ${sync.store.walStats.flushes}, replica runs ${rs.runs}, syncs ${rs.syncs})`);
  }
  load.afterSync = loadAvg();

  // ---- async lag at a steady rate
  const a = await pair('async');
  await a.replica!.ask('marks');
  const commits = await paced(a.store, seconds * 1e3 * 2);
  await sleep(500);
  const marks = await a.replica!.ask<{ durable: Array<[number, number, number]>; applied: Array<[number, number]> }>('marks');
  const lagSyncs = await a.replica!.ask<{ syncs: number; runs: number }>('syncs');
  // The replica's appends (one per received frame; write, then the log's group fdatasync): how many, how long.
  const appendMs = marks.durable.map((m) => m[2]).sort((x, y) => x - y);
  const durableLag = lags(commits, marks.durable);
  const appliedLag = lags(commits, marks.applied);
  const achieved = commits.length / (seconds * 2);
  rows.push({ name: `async lag to durable at ${rate}/s`, value: pct(durableLag, 0.99), unit: 'ms p99', baseline: `async lag to durable at ${rate}/s`, extra: { p50Ms: r3(pct(durableLag, 0.5)), maxMs: r3(durableLag.at(-1)!), commits: commits.length, commitsPerS: Math.round(achieved), replicaAppends: appendMs.length, appendP50Ms: r3(pct(appendMs, 0.5)), appendP99Ms: r3(pct(appendMs, 0.99)), primaryFlushes: a.store.walStats.flushes, replicaSyncs: lagSyncs.syncs } });
  rows.push({ name: `async lag to applied at ${rate}/s`, value: pct(appliedLag, 0.99), unit: 'ms p99', baseline: `async lag to durable at ${rate}/s`, extra: { p50Ms: r3(pct(appliedLag, 0.5)), maxMs: r3(appliedLag.at(-1)!), note: 'the replica applies on a 100 ms timer' } });
  goals.push(`async durable lag p99 ${r3(pct(durableLag, 0.99))} ms (≤ 50)`);
  met &&= pct(durableLag, 0.99) <= 50;
  console.log(`  async lag: durable p50 ${r3(pct(durableLag, 0.5))} p99 ${r3(pct(durableLag, 0.99))} ms; applied p50 ${r3(pct(appliedLag, 0.5))} p99 ${r3(pct(appliedLag, 0.99))} ms`);
  load.afterLag = loadAvg();

  // ---- catch-up after the replica was down for stopSeconds of writes
  await a.replica!.kill();
  const downFrom = a.store.status().flushedLsn;
  await paced(a.store, stopSeconds * 1e3);
  const backlog = a.store.status().flushedLsn - downFrom;
  let stopWriting = false;
  const writing = paced(a.store, 3_600_000, () => stopWriting);
  const target = a.store.status().flushedLsn;
  const t0 = performance.now();
  const back = new Replica(a.replicaDir, a.store.replicationAddress!.port, 'r-back');
  await back.ready;
  let durableMs = NaN;
  let appliedMs = NaN;
  await until('the replica caught up', async () => {
    const st = await back.status();
    const elapsed = performance.now() - t0;
    if (Number.isNaN(durableMs) && st.durableLsn >= target) durableMs = elapsed;
    if (Number.isNaN(appliedMs) && st.appliedLsn >= target) appliedMs = elapsed;
    return !Number.isNaN(durableMs) && !Number.isNaN(appliedMs);
  });
  const behind = a.store.status().flushedLsn - (await back.status()).durableLsn;
  stopWriting = true;
  rows.push({ name: `catch-up after ${stopSeconds} s down`, value: appliedMs / 1e3, unit: 's', baseline: `catch-up after ${stopSeconds} s down`, extra: { durableS: r3(durableMs / 1e3), backlogBytes: backlog, bytesBehindAfter: behind, note: 'restart of the replica process → everything the primary had flushed at the restart applied (value) / durable (durableS), while writes go on at the same rate; includes the process start and its redo-only open' } });
  goals.push(`catch-up ${r3(appliedMs / 1e3)} s (≤ 10)`);
  met &&= appliedMs <= 10_000;
  console.log(`  catch-up after ${stopSeconds} s down (${backlog} B): durable in ${r3(durableMs / 1e3)} s, applied in ${r3(appliedMs / 1e3)} s, then ${behind} B behind`);
  await writing;
  await back.stop();
  load.afterCatchUp = loadAvg();

  // ---- apply rate vs crash recovery's redo, same WAL (the async primary's whole log)
  const fresh = path.join(workDir, 'apply');
  copyDir(base, fresh);
  const held = new Replica(fresh, a.store.replicationAddress!.port, 'r-apply', true);
  await held.ready;
  const end = a.store.status().flushedLsn;
  await until('the held replica durable to the end', async () => (await held.status()).durableLsn >= end);
  const redoDir = path.join(workDir, 'redo');
  copyDir(fresh, redoDir);
  const ap = (await held.ask<{ apply: { ms: number; recordsRedone: number; redoWorkers: number; appliedLsn: number } }>('apply')).apply;
  await held.stop();
  await a.store.close();
  const pool = new WorkerPool({ threads: 2 });
  const rec = await recover(redoDir, { pool });
  await pool.close();
  rows.push({ name: 'crash recovery redo (pool of 2)', value: rec.recordsRedone / (rec.durationMs / 1e3), unit: 'records/s', baseline: 'crash recovery redo (pool of 2)', extra: { records: rec.recordsRedone, durationMs: r3(rec.durationMs), redoMs: r3(rec.passes.redoMs), analysisMs: r3(rec.passes.analysisMs), walBytes: rec.walBytesRead, mode: rec.redoMode } });
  rows.push({ name: 'replica apply (pool of 2)', value: ap.recordsRedone / (ap.ms / 1e3), unit: 'records/s', baseline: 'crash recovery redo (pool of 2)', extra: { records: ap.recordsRedone, ms: r3(ap.ms), redoWorkers: ap.redoWorkers } });
  console.log(`  apply ${ap.recordsRedone} records in ${r3(ap.ms)} ms; recovery redid ${rec.recordsRedone} in ${r3(rec.durationMs)} ms`);
  load.end = loadAvg();

  report({
    bench: 'replication',
    baseline: `local, ${levels[0]} writer${levels[0] === 1 ? '' : 's'}`,
    rows,
    goal: { description: goals.join('; '), met },
    params: {
      quick,
      store: `${pageCount} pages of ${PAGE_SIZE} B, 16 MiB segments, copies of one fresh store, no checkpoints`,
      transaction: `begin → write ${bytes} B at a rotating offset of one of the writer's own ${PAGES_PER_WRITER} pages → commit`,
      seconds,
      warmupMs,
      rate,
      stopSeconds,
      replica: 'bench/fixtures/replicaNode.ts: the replication plugin\'s ReplicaSession in a separate process, worker pool of 2, on loopback',
      lag: 'from the commit resolving on the primary to the replica process having a run reaching the primary\'s flushed LSN at that moment durable (ack sent right after) / applied; same wall clock',
      ratios: 'sync rows against local rows of the same writer count; apply against recovery; applied lag against durable lag; the durable lag, catch-up and recovery rows are their own baselines (×1)',
      loadAverage: load,
      dir: workDir,
    },
  });
}

try {
  await main();
} finally {
  rmSync(workDir, { recursive: true, force: true });
}

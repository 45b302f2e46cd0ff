/**
 * The command line as whole processes, the way a user or a script meets it: start-up cost and a
 * full scan, each against its baseline in the same run.
 *
 * Rows, each a fresh process, in interleaved rounds (so a noisy neighbour hurts every row alike):
 *   - `node -e 0`: bare Node, the start-up baseline;
 *   - `recovery-agent --version` and `recovery-agent --help`: `--runs` runs each (default 20),
 *     median and p90 of the wall time from spawn to exit;
 *   - `recovery-agent scan --store S --json` over a 2 GiB store (8 KiB pages) that sits in the
 *     page cache (created with bench/fixtures/cachedStore.ts and read once; dropping caches is
 *     not possible here), against `xxhsum -H3 S/pages.db`, the checksum baseline, `--scan-runs`
 *     runs each (default 7); and the same scan with `--workers 1` (the command's own thread
 *     only, no pool), which shows what the pool's worker adds once its start is paid for.
 *     Every scan must report every page and no corrupt one.
 * The load average before and after goes into the JSON: other work on the machine slows
 * processes unevenly (a worker thread that waits for a core helps less), so compare runs with
 * the load they were measured under.
 * Goals (TARGETS.md, CLI start): `--version` and `--help` ≤ 2× bare Node's median time; `scan`
 * ≥ 1.3× `xxhsum -H3`'s speed, process start included.
 *
 * Run: npm run bench:cli   (options: --runs N, --scan-runs N, --store-gib G, --store DIR to reuse
 * an existing store instead of creating one; it is read once, never changed)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCachedStore, warm } from './fixtures/cachedStore.js';
import { numArg, strArg } from './lib/args.js';
import { report, repoRoot, type BenchRow } from './lib/report.js';

const PAGE_SIZE = 8192;
const RUNS = numArg('runs', 20);
const SCAN_RUNS = numArg('scan-runs', 7);
const STORE_BYTES = numArg('store-gib', 2) * 2 ** 30;

const BIN = path.join(repoRoot(), 'bin', 'recovery-agent.js');
const VERSION = (JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;

interface Cmd {
  name: string;
  file: string;
  args: string[];
  /** Throws when the run did not do what it should (so a broken build is never timed as a fast one). */
  check(stdout: string): void;
}

/** Wall time of one process from spawn to exit, in ms. */
function run(cmd: Cmd): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd.file, cmd.args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw new Error(`${cmd.name}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd.name} exited with ${r.signal ?? r.status}: ${r.stderr.slice(0, 2000)}`);
  cmd.check(r.stdout);
  return ms;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (pos - lo);
}

const round1 = (v: number) => Math.round(v * 10) / 10;

async function main(): Promise<void> {
  if (!existsSync(BIN) || !existsSync(path.join(repoRoot(), 'dist', 'cli', 'main.js'))) throw new Error('dist/ is missing: run npm run build:ts first');
  const given = strArg('store');
  const base = given ? null : mkdtempSync(path.join(os.tmpdir(), 'ra-bench-cli-'));
  try {
    let storeDir: string;
    let dataFile: string;
    if (given) {
      storeDir = path.resolve(given);
      dataFile = path.join(storeDir, 'pages.db');
      if (!existsSync(dataFile)) throw new Error(`--store ${given}: ${dataFile} does not exist`);
      warm(dataFile);
    } else {
      storeDir = path.join(base!, 'store');
      process.stdout.write(`creating a ${STORE_BYTES / 2 ** 30} GiB store (${STORE_BYTES / PAGE_SIZE} pages of ${PAGE_SIZE} bytes) in ${storeDir} ...\n`);
      ({ dataFile } = await createCachedStore(storeDir, STORE_BYTES, PAGE_SIZE));
    }
    const bytes = statSync(dataFile).size;
    const pages = bytes / PAGE_SIZE;

    const node = process.execPath;
    const none = () => undefined;
    const nodeBare: Cmd = { name: 'node -e 0', file: node, args: ['-e', '0'], check: none };
    const version: Cmd = {
      name: 'recovery-agent --version', file: node, args: [BIN, '--version'],
      check: (out) => {
        if (out.trim() !== VERSION) throw new Error(`--version printed ${JSON.stringify(out)}, expected ${VERSION}`);
      },
    };
    const help: Cmd = {
      name: 'recovery-agent --help', file: node, args: [BIN, '--help'],
      check: (out) => {
        if (!out.includes('Usage: recovery-agent')) throw new Error(`--help printed no usage: ${out.slice(0, 200)}`);
      },
    };
    const xxhsum: Cmd = {
      name: 'xxhsum -H3 pages.db', file: 'xxhsum', args: ['-H3', dataFile],
      check: (out) => {
        // "XXH3 (FILE) = HASH" (BSD style, what -H3 prints) or "HASH  FILE".
        if (!/\b[0-9a-f]{16}\b/.test(out)) throw new Error(`xxhsum printed ${JSON.stringify(out.slice(0, 200))}`);
      },
    };
    const scan: Cmd = {
      name: 'recovery-agent scan --store', file: node, args: [BIN, 'scan', '--store', storeDir, '--json'],
      check: (out) => {
        const r = JSON.parse(out) as { pagesScanned: number; corrupt: unknown[] };
        if (r.pagesScanned !== pages || r.corrupt.length !== 0) throw new Error(`scan checked ${r.pagesScanned} of ${pages} pages and found ${r.corrupt.length} corrupt in a clean store`);
      },
    };
    const probe = spawnSync('xxhsum', ['--version'], { encoding: 'utf8' });
    if (probe.error) throw new Error(`xxhsum is needed for the baseline (apt-get install xxhash): ${probe.error.message}`);

    const startCmds = [nodeBare, version, help];
    const scanOne: Cmd = { ...scan, name: 'recovery-agent scan --store --workers 1', args: [...scan.args, '--workers', '1'] };
    const scanCmds = [xxhsum, scan, scanOne];
    const loadBefore = os.loadavg();
    const times = new Map<Cmd, number[]>([...startCmds, ...scanCmds].map((c) => [c, []]));
    // One unrecorded run of each: the binaries, node_modules and dist/ into the page cache.
    for (const c of [...startCmds, ...scanCmds]) run(c);
    const rounds = Math.max(RUNS, SCAN_RUNS);
    for (let i = 0; i < rounds; i++) {
      if (i < RUNS) for (const c of startCmds) times.get(c)!.push(run(c));
      if (i < SCAN_RUNS) for (const c of scanCmds) times.get(c)!.push(run(c));
    }

    const stats = (c: Cmd) => {
      const t = times.get(c)!;
      return { median: quantile(t, 0.5), p90: quantile(t, 0.9), min: Math.min(...t) };
    };
    const msRow = (c: Cmd): BenchRow => {
      const s = stats(c);
      return { name: c.name, value: s.median, unit: 'ms', extra: { p90ms: round1(s.p90), minMs: round1(s.min) } };
    };
    const gbRow = (c: Cmd): BenchRow => {
      const s = stats(c);
      return {
        name: c.name, value: bytes / 1e9 / (s.median / 1e3), unit: 'GB/s', baseline: xxhsum.name,
        extra: { medianMs: round1(s.median), p90ms: round1(s.p90), minMs: round1(s.min) },
      };
    };
    const rows = [...startCmds.map(msRow), ...scanCmds.map(gbRow)];
    const median = (c: Cmd) => stats(c).median;
    const met = median(version) <= 2 * median(nodeBare) && median(help) <= 2 * median(nodeBare) && median(xxhsum) >= 1.3 * median(scan);
    report({
      bench: 'cli',
      baseline: nodeBare.name,
      rows,
      goal: { description: '--version and --help ≤ 2× node -e 0 (median time); scan ≥ 1.3× xxhsum -H3 (speed, whole process)', met },
      params: {
        runs: RUNS, scanRuns: SCAN_RUNS, storeBytes: bytes, pageSize: PAGE_SIZE, pages,
        timing: 'wall time from spawn to exit of each process (spawnSync), interleaved rounds, after one unrecorded run of each; value = median',
        store: given ? 'given with --store, read once' : 'created for this run (bench/fixtures/cachedStore.ts)',
        cache: 'store read once before timing (page cache)', cpus: os.availableParallelism(),
        loadavg: { before: loadBefore.map((l) => Number(l.toFixed(2))), after: os.loadavg().map((l) => Number(l.toFixed(2))) },
      },
    });
    process.stdout.write(`  load average (1 min) ${loadBefore[0]!.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after, on ${os.availableParallelism()} CPUs\n`);
  } finally {
    if (base) rmSync(base, { recursive: true, force: true });
  }
}

await main();

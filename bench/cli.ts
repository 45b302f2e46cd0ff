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
 *     runs each (default 7); and the same scan with `--workers 1` (one native thread instead of
 *     one per CPU). Every scan must report every page and no corrupt one; the time the command
 *     itself reports (`durationMs`: open, geometry, recovery check, pages) goes beside its row,
 *     so the rest (Node's start, module loading, exit) can be read off.
 *   - the floor: `read_floor` (native/examples/read_floor.rs), a native process that only reads
 *     every byte of the same file on one thread per CPU, by mmap and by pread, hashing nothing.
 *     Any scan that runs in Node costs at least `node -e 0` plus the faster of the two; the
 *     JSON says whether that floor is within the goal at all (`params.scanFloorWithinGoal`).
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
const NATIVE_MANIFEST = path.join(repoRoot(), 'native', 'Cargo.toml');
const VERSION = (JSON.parse(readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;

interface Cmd {
  name: string;
  file: string;
  args: string[];
  /** Throws when the run did not do what it should (so a broken build is never timed as a fast one). */
  check(stdout: string): void;
}

/** Builds native/examples/read_floor.rs (no dependencies, so offline) and returns its path. */
function buildReadFloor(): string {
  const r = spawnSync('cargo', ['build', '--release', '--quiet', '--example', 'read_floor', '--manifest-path', NATIVE_MANIFEST], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error || r.status !== 0) throw new Error(`cannot build the read floor (cargo build --example read_floor): ${r.error?.message ?? r.stderr.slice(0, 2000)}`);
  const exe = path.join(repoRoot(), 'native', 'target', 'release', 'examples', 'read_floor');
  if (!existsSync(exe)) throw new Error(`cargo built no ${exe}`);
  return exe;
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
    /** The command's own `durationMs` of each timed run, per command name. */
    const inside = new Map<string, number[]>();
    const scanCmd = (name: string, extra: string[]): Cmd => ({
      name, file: node, args: [BIN, 'scan', '--store', storeDir, '--json', ...extra],
      check: (out) => {
        const r = JSON.parse(out) as { pagesScanned: number; corrupt: unknown[]; durationMs: number };
        if (r.pagesScanned !== pages || r.corrupt.length !== 0) throw new Error(`scan checked ${r.pagesScanned} of ${pages} pages and found ${r.corrupt.length} corrupt in a clean store`);
        inside.set(name, [...(inside.get(name) ?? []), r.durationMs]);
      },
    });
    const scan = scanCmd('recovery-agent scan --store', []);
    const scanOne = scanCmd('recovery-agent scan --store --workers 1', ['--workers', '1']);
    const probe = spawnSync('xxhsum', ['--version'], { encoding: 'utf8' });
    if (probe.error) throw new Error(`xxhsum is needed for the baseline (apt-get install xxhash): ${probe.error.message}`);
    const floorExe = buildReadFloor();
    const threads = os.availableParallelism();
    const floorCmd = (mode: 'mmap' | 'pread'): Cmd => ({
      name: `read floor: native ${mode}, ${threads} threads, no hashing`, file: floorExe, args: [dataFile, String(threads), mode],
      check: (out) => {
        if (!/^[0-9a-f]{16}$/.test(out.trim())) throw new Error(`read_floor printed ${JSON.stringify(out.slice(0, 200))}`);
      },
    });
    const floorMmap = floorCmd('mmap');
    const floorPread = floorCmd('pread');

    const startCmds = [nodeBare, version, help];
    const scanCmds = [xxhsum, scan, scanOne, floorMmap, floorPread];
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
    const median = (c: Cmd) => stats(c).median;
    const scanRow = (c: Cmd): BenchRow => {
      const row = gbRow(c);
      const own = inside.get(c.name) ?? [];
      return own.length === 0 ? row : { ...row, extra: { ...row.extra, commandMedianMs: round1(quantile(own, 0.5)), outsideCommandMs: round1(median(c) - quantile(own, 0.5)) } };
    };
    // The least a scan in Node can cost: Node's start and exit, plus bringing every byte in.
    const readFloorMs = Math.min(median(floorMmap), median(floorPread));
    const floorMs = median(nodeBare) + readFloorMs;
    const goalMs = median(xxhsum) / 1.3;
    const floorRow: BenchRow = {
      name: 'floor: node -e 0 + the faster read floor', value: bytes / 1e9 / (floorMs / 1e3), unit: 'GB/s', baseline: xxhsum.name,
      extra: { ms: round1(floorMs), nodeMs: round1(median(nodeBare)), readFloorMs: round1(readFloorMs), goalMs: round1(goalMs) },
    };
    const rows = [...startCmds.map(msRow), gbRow(xxhsum), scanRow(scan), scanRow(scanOne), gbRow(floorMmap), gbRow(floorPread), floorRow];
    const met = median(version) <= 2 * median(nodeBare) && median(help) <= 2 * median(nodeBare) && median(xxhsum) >= 1.3 * median(scan);
    report({
      bench: 'cli',
      baseline: nodeBare.name,
      rows,
      goal: { description: '--version and --help ≤ 2× node -e 0 (median time); scan ≥ 1.3× xxhsum -H3 (speed, whole process)', met },
      params: {
        runs: RUNS, scanRuns: SCAN_RUNS, storeBytes: bytes, pageSize: PAGE_SIZE, pages,
        // False means no scan run by Node can meet the scan goal on this machine: node -e 0 plus
        // only reading the file (no hashing) already takes longer than xxhsum's time / 1.3.
        scanFloorWithinGoal: floorMs <= goalMs,
        timing: 'wall time from spawn to exit of each process (spawnSync), interleaved rounds, after one unrecorded run of each; value = median',
        store: given ? 'given with --store, read once' : 'created for this run (bench/fixtures/cachedStore.ts)',
        cache: 'store read once before timing (page cache)', cpus: os.availableParallelism(),
        loadavg: { before: loadBefore.map((l) => Number(l.toFixed(2))), after: os.loadavg().map((l) => Number(l.toFixed(2))) },
      },
    });
    process.stdout.write(`  scan goal: ≤ ${goalMs.toFixed(1)} ms (xxhsum ${median(xxhsum).toFixed(1)} ms / 1.3); scan ${median(scan).toFixed(1)} ms; floor ${floorMs.toFixed(1)} ms (node -e 0 ${median(nodeBare).toFixed(1)} + read ${readFloorMs.toFixed(1)})${floorMs > goalMs ? ': out of reach for any scan run by Node here' : ''}\n`);
    process.stdout.write(`  load average (1 min) ${loadBefore[0]!.toFixed(2)} before, ${os.loadavg()[0]!.toFixed(2)} after, on ${os.availableParallelism()} CPUs\n`);
  } finally {
    if (base) rmSync(base, { recursive: true, force: true });
  }
}

await main();

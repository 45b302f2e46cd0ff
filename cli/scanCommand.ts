/**
 * `recovery-agent scan --store DIR | --config FILE`: checks every page of a store at full speed
 * — checksum, header (magic, version, page id), page LSN against the WAL's end — and reports the
 * corrupt ones. Read-only and lock-free: safe while the store's owner runs (a page that fails is
 * read again before it is reported).
 *
 * The pages are read and verified by native threads inside this thread's calls (scanner.ts,
 * `callingThread`): no worker pool, whose start would cost more than it saves on a scan of a few
 * GiB. A process start is part of what the user waits for, so this path loads only the scanner.
 */
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import type { PageEngine } from '../core/contracts/PageEngine.js';
import type { RangeScanResult } from '../plugins/corruption-detector/scanner.js';
import { describeError, isRaError, raError } from '../core/errors.js';
import { failAfterOutput, withFailure } from './commandFailure.js';

interface ScanOpts {
  store?: string;
  config?: string;
  json?: boolean;
  workers?: number;
  pageSize?: number;
  progress?: boolean;
}

/** One store's outcome, as `--json` prints it. */
interface StoreOutcome {
  id: string;
  path: string;
  pagesScanned: number;
  bytesScanned: number;
  corrupt: Array<{ pageId: number; reason: string }>;
  /** What keeps the store from opening though its pages may verify (control file, superblock). */
  storeProblems: string[];
  pageSize?: number;
  pageCount?: number;
  transient?: number;
  durationMs?: number;
  error?: { code: string; message: string };
}

const EXIT_HELP = `
Checks: the XXH3-64 checksum of each page, its header (magic, format version, page id equal to
its position) and that its page LSN is not beyond the end of the WAL.

Output with --json (one store):
  { "pagesScanned": n, "bytesScanned": n, "corrupt": [{ "pageId": n, "reason": "checksum" }], ... }
With --config, { "stores": [{ "id", "path", "pagesScanned", "bytesScanned", "corrupt", "error"? }] }.
Reasons: checksum, magic, version, page-id, lsn-beyond-wal, short-read.

A store whose pages verify but that will not open (a damaged or missing control file, a page 0
that is another store's superblock) is reported under "storeProblems" and exits 4.

Exit codes: 0 every page is sound; 4 corruption found; 2 bad usage or config, or a store that
cannot be scanned (missing, empty, truncated, not a multiple of the page size, wrong page size);
1 an I/O error. With --config every store is scanned, and corruption (4) wins over the others.
With --json a failure also writes {"error":{"code","message","exitCode"}} on stdout (after a scan:
that "error" member in its result).`;

export function registerScanCommand(program: Command): void {
  program
    .command('scan')
    .description('check every page of a store (checksum, header, page LSN) at full speed; exits 4 when corruption is found')
    .option('-s, --store <dir>', 'the store directory')
    .option('-c, --config <file>', 'scan every store of this config instead (each whose engine can be scanned)')
    .option('--json', 'print the result as JSON on stdout')
    .option('-w, --workers <n>', 'threads that check pages, this command\'s own included (default: CPU count, at most 256)', parsePositiveInt)
    .option('--page-size <bytes>', 'the page size the store must have (needed only when its control file and superblock are both damaged)', parsePageSize)
    .option('--no-progress', 'no progress bar (it is shown only when stderr is a terminal)')
    .addHelpText('after', EXIT_HELP)
    .action(async (opts: ScanOpts) => {
      if (Boolean(opts.store) === Boolean(opts.config)) {
        throw raError('RA_ERR_USAGE', 'scan needs exactly one of --store DIR or --config FILE');
      }
      const threads = opts.workers ?? os.availableParallelism();
      const bar = opts.progress !== false && process.stderr.isTTY ? new ProgressBar(process.stderr) : null;
      const outcomes: StoreOutcome[] = [];
      let firstError: unknown;
      try {
        const targets = opts.store ? [await storeTarget(path.resolve(opts.store))] : await configTargets(opts.config!);
        if (targets.length === 0) throw raError('RA_ERR_CONFIG', `${opts.config}: no pagestore stores to scan`);
        for (const t of targets) {
          try {
            outcomes.push(await scanOne(t, threads, opts.pageSize, bar));
          } catch (err) {
            bar?.clear();
            // A single store that cannot be scanned ends the command with its own error and exit code.
            if (opts.store) throw err;
            const errno = (err as { code?: unknown }).code;
            const code = isRaError(err) ? err.code : typeof errno === 'string' ? errno : 'ERROR';
            outcomes.push({ id: t.id, path: t.path, pagesScanned: 0, bytesScanned: 0, corrupt: [], storeProblems: [], error: { code, message: describeError(err) } });
            firstError ??= err;
            process.stderr.write(`recovery-agent: store ${t.id}: ${describeError(err)}\n`);
          }
        }
      } finally {
        bar?.clear();
      }

      // Corruption (exit 4) wins over a store that could not be scanned.
      let failure: unknown;
      const damaged = outcomes.filter((o) => o.corrupt.length > 0 || o.storeProblems.length > 0);
      if (damaged.length > 0) {
        const what = damaged.map((o) => `${o.id}: ${[o.corrupt.length ? `${o.corrupt.length} corrupt page(s)` : '', ...o.storeProblems].filter(Boolean).join(', ')}`);
        failure = raError('RA_ERR_PAGE_CORRUPT', `corruption found (${what.join('; ')})`);
      } else if (firstError !== undefined) {
        // With the code (and so the exit code) of the first store that could not be scanned;
        // each was named on stderr already.
        const ids = outcomes.filter((o) => o.error).map((o) => o.id);
        const message = `${ids.length} of ${outcomes.length} store(s) could not be scanned: ${ids.join(', ')}`;
        failure = isRaError(firstError) ? raError(firstError.code, message) : new Error(message);
      }
      if (failure !== undefined) failAfterOutput(failure);
      if (opts.json) {
        const json = opts.store ? withoutId(outcomes[0]!) : { stores: outcomes };
        process.stdout.write(JSON.stringify(await withFailure(json, failure), null, 2) + '\n');
      } else {
        for (const o of outcomes) if (!o.error) process.stdout.write(describeOutcome(o, Boolean(opts.config)));
      }
    });
}

interface ScanTarget {
  id: string;
  path: string;
  engine: PageEngine;
}

/** The store in `dir`, with the engine that recognises it. */
async function storeTarget(dir: string): Promise<ScanTarget> {
  const { pageEngineFor } = await import('./engines.js');
  return { id: path.basename(dir), path: dir, engine: await pageEngineFor(dir) };
}

/** The config's stores whose engine has a page face; the others are skipped, saying why. */
async function configTargets(file: string): Promise<ScanTarget[]> {
  const [{ loadConfigFile }, { pageEngineNamed }] = await Promise.all([import('./config.js'), import('./engines.js')]);
  const targets: ScanTarget[] = [];
  for (const s of loadConfigFile(file).stores) {
    try {
      targets.push({ id: s.id, path: s.path, engine: await pageEngineNamed(s.engine) });
    } catch (err) {
      process.stderr.write(`recovery-agent: store ${s.id} not scanned: ${describeError(err)}\n`);
    }
  }
  return targets;
}

async function scanOne(t: ScanTarget, threads: number, pageSize: number | undefined, bar: ProgressBar | null): Promise<StoreOutcome> {
  const t0 = performance.now();
  const { PageScanner } = await import('../plugins/corruption-detector/scanner.js');
  const scanner = await PageScanner.open(t.engine, t.path, { ...(pageSize === undefined ? {} : { pageSize }), checkRecovery: true });
  let r: RangeScanResult;
  try {
    const { pageCount, pageSize: size } = scanner.target;
    bar?.begin(t.id, pageCount * size);
    r = await scanner.scan(0, pageCount, { callingThread: true, threads, onProgress: (p) => bar?.update(p.bytes) });
  } finally {
    bar?.clear();
    await scanner.close();
  }
  const { pageSize: size, pageCount } = scanner.target;
  return {
    id: t.id,
    path: t.path,
    pagesScanned: r.pagesScanned,
    bytesScanned: r.bytesScanned,
    corrupt: r.corrupt.map((c) => ({ pageId: c.pageId, reason: c.reason })),
    storeProblems: [...scanner.target.storeProblems],
    pageSize: size,
    pageCount,
    transient: r.transient,
    durationMs: Math.round((performance.now() - t0) * 10) / 10,
  };
}

function withoutId(o: StoreOutcome): Omit<StoreOutcome, 'id'> {
  const { id: _id, ...rest } = o;
  return rest;
}

function describeOutcome(o: StoreOutcome, named: boolean): string {
  const secs = (o.durationMs ?? 0) / 1000;
  const speed = secs > 0 ? `, ${(o.bytesScanned / 1e9 / secs).toFixed(2)} GB/s` : '';
  const head = `${named ? `store ${o.id} (${o.path})` : o.path}: ${o.pagesScanned} pages (${formatBytes(o.bytesScanned)}) in ${secs.toFixed(2)} s${speed}`;
  const changed = o.transient ? ` (${o.transient} page(s) changed while being read: written meanwhile, not corrupt)` : '';
  const store = o.storeProblems.map((p) => `  the store will not open: ${p}\n`).join('');
  if (o.corrupt.length === 0) return `${head}: ${store ? 'pages verify, but' : 'clean'}${changed}\n${store}`;
  const lines = o.corrupt.map((c) => `  page ${String(c.pageId).padEnd(10)} ${c.reason}`);
  return `${head}: ${o.corrupt.length} corrupt page(s)${changed}\n${lines.join('\n')}\n${store}`;
}

function formatBytes(n: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} bytes` : `${v.toFixed(2)} ${units[u]}`;
}

/** A one-line progress bar on a terminal, redrawn at most ten times a second. */
class ProgressBar {
  private label = '';
  private total = 1;
  private t0 = 0;
  private lastDraw = 0;
  private shown = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  begin(label: string, totalBytes: number): void {
    this.label = label;
    this.total = Math.max(1, totalBytes);
    this.t0 = performance.now();
    this.lastDraw = 0;
    this.update(0, true);
  }

  update(bytes: number, force = false): void {
    const now = performance.now();
    if (!force && now - this.lastDraw < 100 && bytes < this.total) return;
    this.lastDraw = now;
    const frac = Math.min(1, bytes / this.total);
    const width = Math.max(10, Math.min(40, (this.out.columns ?? 80) - 60));
    const filled = Math.round(frac * width);
    const secs = (now - this.t0) / 1000;
    const rate = secs > 0 ? bytes / secs : 0;
    const eta = rate > 0 ? (this.total - bytes) / rate : 0;
    const line = `scan ${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${formatBytes(bytes)} / ${formatBytes(this.total)}  ${(rate / 1e9).toFixed(2)} GB/s  eta ${eta.toFixed(0)} s`;
    this.out.write(`\r${line}\x1b[K`);
    this.shown = true;
  }

  clear(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[K');
    this.shown = false;
  }
}

function parsePositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw raError('RA_ERR_USAGE', `--workers must be an integer from 1 to 256 (got "${v}")`);
  return n;
}

function parsePageSize(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 4096 || n > 65536 || (n & (n - 1)) !== 0) {
    throw raError('RA_ERR_USAGE', `--page-size must be a power of two from 4096 to 65536 (got "${v}")`);
  }
  return n;
}

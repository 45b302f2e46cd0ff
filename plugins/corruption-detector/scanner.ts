/**
 * The scanner: reads a store's pages and checks each with the native `verifyPages` kernel
 * (checksum, magic, version, page id = position, page LSN not beyond the end of the WAL).
 *
 * Two ways to check a range:
 * - On the calling thread (`callingThread`, the `scan` command): the native `verifyFile` reads
 *   and verifies the pages with several native threads inside one call, 256 MiB at a time
 *   (progress and abort are looked at between slices). It blocks the event loop, so it is for a
 *   process with nothing else to do, never the agent. No worker pool is started: booting a
 *   worker costs more than it would save on a scan of a few GiB.
 * - On lanes (the agent): a range is cut into runs of at least 1 MiB and at most 8 MiB (below
 *   1 MiB two workers lose to one thread: the task round trip costs ~80 µs). Lanes take runs from
 *   a cursor they share (scanControl.ts) and read each with positional reads into the lane's slab
 *   of one SharedArrayBuffer, verifying it there a piece at a time (scanTask.ts). On a worker pool
 *   each task takes one run, so the pool, which the agent shares, gives other work a worker
 *   between runs; two lanes per worker are in flight, so the next run is already queued when a
 *   worker finishes one. Without a pool, lanes are asynchronous loops on the calling thread.
 *
 * Scans only read and take no lock, so they may race a writer's checkpoint. A page that fails is
 * therefore read again, `recheckAttempts` times `recheckDelayMs` apart (default 3 × 50 ms), each
 * time against a fresh bound for the WAL's end: a page that passes any re-read was being written
 * (counted as `transient`, not reported); only a page that fails every time is corrupt. A page
 * write takes microseconds; a page that stays bad for 150 ms is not in the middle of one.
 *
 * Rules: one scan at a time per PageScanner (they share its slab); the data file's descriptor
 * stays open until every task using it has settled.
 */
import { open, type FileHandle } from 'node:fs/promises';
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { verifyFile, verifyPages } from 'recovery-agent/native';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { defineTask } from '../../core/taskRef.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { reasonOf, type CorruptReason, type PageFinding } from './reasons.js';
import { ScanControl } from './scanControl.js';
import { openScanTarget, walEndLsn, type ScanTarget, type ScanTargetOptions } from './scanTarget.js';
import { PIECE_BYTES, scanRunsInline, type ScanTaskInput, type ScanTaskResult } from './scanTask.js';

const scanTask = defineTask<ScanTaskInput, ScanTaskResult>(new URL('./scanTask.js', import.meta.url));

/** Smallest run handed to a worker (1 MiB; below it two workers lose to one thread). */
export const MIN_TASK_BYTES = 1 << 20;
/** Default largest run: big enough that the task round trip is noise, small enough to balance. */
export const DEFAULT_TASK_BYTES = 8 << 20;
/** Runs in flight per worker thread (one running, one queued behind it). */
const LANES_PER_THREAD = 2;
/** Bytes the calling thread checks per native call: progress and abort are seen between calls. */
export const SLICE_BYTES = 256 << 20;
/** Most native threads one `verifyFile` call takes (native/index.d.ts). */
const MAX_NATIVE_THREADS = 256;

export interface RecheckOptions {
  /** Wait before reading a failing page again, in ms. Default 50. */
  recheckDelayMs?: number;
  /** Re-reads a failing page must fail too before it is reported. Default 3. */
  recheckAttempts?: number;
}

export interface RangeScanOptions {
  /** Worker pool to run on; without one the scan runs on the calling thread. */
  pool?: WorkerPool;
  /**
   * The calling thread checks the range itself with the native `verifyFile` on `threads`
   * threads, blocking its event loop until the last slice is done (an abort is seen between
   * 256 MiB slices): for a process with nothing else to do, such as the `scan` command, never in
   * the agent. `pool`, `taskBytes` and `lanes` are then unused. Default false.
   */
  callingThread?: boolean;
  /** Native threads with `callingThread` (the calling one included), 1 to 256. Default: the CPU count. */
  threads?: number;
  /** Largest run, in bytes (at least 1 MiB or one page). Default 8 MiB. */
  taskBytes?: number;
  /** Lanes in flight. Default: two per worker thread (one running, one queued), two without a pool. */
  lanes?: number;
  /** Stops scheduling new runs; the scan then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called after each run (or slice) with the pages and bytes scanned so far in this call. */
  onProgress?: (progress: { pages: number; bytes: number }) => void;
}

export interface RangeScanResult {
  /** Pages read and checked. */
  pagesScanned: number;
  bytesScanned: number;
  /** Pages that failed and failed again every time they were re-read, by page id. */
  corrupt: PageFinding[];
  /** Pages that failed once but passed when re-read (a write in progress). */
  transient: number;
  /** The WAL end bound the scan checked page LSNs against. */
  maxLsn: number;
}

export interface StoreScanResult extends RangeScanResult {
  readonly store: string;
  readonly dataFile: string;
  readonly pageSize: number;
  readonly pageCount: number;
  readonly durationMs: number;
}

interface Suspect {
  pageId: number;
  reason: CorruptReason;
}

/** What a first pass over a range found, before the failing pages are read again. */
interface Checked {
  pagesScanned: number;
  suspects: Suspect[];
}

/** Scans ranges of one store's data file; holds it open between scans (for the background scrub). */
export class PageScanner {
  private slab: SharedArrayBuffer | null = null;
  private busy = false;
  private closed = false;

  private constructor(
    readonly target: ScanTarget,
    private readonly handle: FileHandle,
    private readonly recheck: Required<RecheckOptions>,
  ) {}

  /** Checks the store's geometry (see scanTarget.ts) and opens its data file for reading. */
  static async open(engine: PageEngine, dir: string, options: ScanTargetOptions & RecheckOptions = {}): Promise<PageScanner> {
    const target = await openScanTarget(engine, dir, options);
    const handle = await open(target.dataFile, 'r');
    return new PageScanner(target, handle, { recheckDelayMs: options.recheckDelayMs ?? 50, recheckAttempts: Math.max(1, options.recheckAttempts ?? 3) });
  }

  /** Scans pages [first, first + count). */
  async scan(first: number, count: number, options: RangeScanOptions = {}): Promise<RangeScanResult> {
    const { pageCount } = this.target;
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0 || first + count > pageCount) {
      throw raError('RA_ERR_PAGE_RANGE', `scan range [${first}, ${first + count}) is outside the store's ${pageCount} pages`);
    }
    if (this.closed) throw raError('RA_ERR_STORE_CLOSED', `scanner of ${this.target.dir} is closed`);
    if (this.busy) throw raError('RA_ERR_AGENT_STATE', `a scan of ${this.target.dir} is already running on this scanner`);
    this.busy = true;
    try {
      return await this.scanLocked(first, count, options);
    } finally {
      this.busy = false;
    }
  }

  /** Closes the data file. Call after the last scan has settled. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }

  private async scanLocked(first: number, count: number, options: RangeScanOptions): Promise<RangeScanResult> {
    const { pageSize } = this.target;
    const maxLsn = await walEndLsn(this.target);
    const checked = options.callingThread === true ? this.checkHere(first, count, maxLsn, options) : await this.checkOnLanes(first, count, maxLsn, options);
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('scan aborted');
    const { corrupt, transient } = await this.confirm(checked.suspects);
    return { pagesScanned: checked.pagesScanned, bytesScanned: checked.pagesScanned * pageSize, corrupt, transient, maxLsn };
  }

  /** The calling thread checks the range with native threads, a slice at a time (see `callingThread`). */
  private checkHere(first: number, count: number, maxLsn: number, options: RangeScanOptions): Checked {
    const { pageSize } = this.target;
    const threads = Math.max(1, Math.min(MAX_NATIVE_THREADS, Math.floor(options.threads ?? os.availableParallelism())));
    const slicePages = Math.max(1, Math.floor(SLICE_BYTES / pageSize));
    // A pair for every page of a slice: every finding fits, whatever the damage.
    const out = new Uint32Array(2 * Math.min(slicePages, count));
    const suspects: Suspect[] = [];
    let pagesScanned = 0;
    for (let at = 0; at < count && !options.signal?.aborted; at += slicePages) {
      const pages = Math.min(slicePages, count - at);
      const bad = verifyFile(this.handle.fd, pageSize, first + at, pages, maxLsn, threads, out);
      let short = 0;
      for (let k = 0; k < bad; k++) {
        const reason = reasonOf(out[2 * k + 1]!);
        if (reason === 'short-read') short++;
        suspects.push({ pageId: first + at + out[2 * k]!, reason });
      }
      pagesScanned += pages - short;
      options.onProgress?.({ pages: pagesScanned, bytes: pagesScanned * pageSize });
    }
    return { pagesScanned, suspects };
  }

  /** Lanes on the pool, or asynchronous loops on this thread without one (see the file comment). */
  private async checkOnLanes(first: number, count: number, maxLsn: number, options: RangeScanOptions): Promise<Checked> {
    const { pageSize } = this.target;
    const { pool, signal } = options;
    const lanes = Math.max(1, options.lanes ?? (pool ? pool.threads * LANES_PER_THREAD : 2));
    const maxTaskPages = Math.max(1, Math.floor(Math.max(options.taskBytes ?? DEFAULT_TASK_BYTES, MIN_TASK_BYTES) / pageSize));
    const minTaskPages = Math.max(1, Math.floor(MIN_TASK_BYTES / pageSize));
    const runPages = Math.min(maxTaskPages, Math.max(minTaskPages, Math.ceil(count / lanes)));
    const runCount = Math.ceil(count / runPages);
    // A lane's slab holds one piece: runs are read and checked a piece at a time (scanTask.ts).
    const laneBytes = Math.max(PIECE_BYTES, pageSize);
    const slab = this.slabFor(lanes * laneBytes);
    const controlBuffer = ScanControl.allocate(runCount);
    const control = new ScanControl(controlBuffer);
    const controlView = new Uint8Array(controlBuffer);
    const input = (lane: number, maxRuns: number): ScanTaskInput => ({
      fd: this.handle.fd, control: controlView, slab: new Uint8Array(slab, lane * laneBytes, laneBytes) as Uint8Array<SharedArrayBuffer>,
      pageSize, firstPageId: first, pageCount: count, runPages, maxLsn, maxRuns: Math.max(1, maxRuns),
    });
    const progress = options.onProgress && (() => options.onProgress!({ pages: control.pagesDone, bytes: control.pagesDone * pageSize }));
    const onAbort = () => control.stop();
    if (signal?.aborted) control.stop();
    signal?.addEventListener('abort', onAbort);

    const results: ScanTaskResult[] = [];
    // Every lane that started settles before the scan returns or throws: tasks still reading
    // through the descriptor or into the slab must finish before either can be reused or closed.
    let settled: PromiseSettledResult<unknown>[];
    try {
      const lane = async (i: number): Promise<void> => {
        if (!pool) return void results.push(await scanRunsInline(input(i, Infinity), this.handle, progress));
        // One run per task: the pool is shared, and other work gets a worker between runs.
        while (control.runsLeft) {
          const r = await this.runOnPool(pool, input(i, 1), control);
          if (r.runs === 0) break;
          results.push(r);
          progress?.();
        }
      };
      settled = await Promise.allSettled(Array.from({ length: Math.min(lanes, runCount) }, (_, i) => lane(i)));
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const suspects: Suspect[] = [];
    let pagesScanned = 0;
    for (const r of results) {
      pagesScanned += r.pagesRead;
      for (let k = 0; k < r.bad.length; k += 2) suspects.push({ pageId: first + r.bad[k]!, reason: reasonOf(r.bad[k + 1]!) });
      for (let k = 0; k < r.short.length; k += 2) {
        for (let p = 0; p < r.short[k + 1]!; p++) suspects.push({ pageId: first + r.short[k]! + p, reason: 'short-read' });
      }
    }
    return { pagesScanned, suspects };
  }

  /** One task on the pool; a task that cannot even be run (pool closed, bad payload) stops the other lanes too. */
  private async runOnPool(pool: WorkerPool, input: ScanTaskInput, control: ScanControl): Promise<ScanTaskResult> {
    try {
      return await pool.run(scanTask, input);
    } catch (err) {
      control.stop();
      throw err;
    }
  }

  /** Re-reads failing pages; see the file comment. */
  private async confirm(suspects: Suspect[]): Promise<{ corrupt: PageFinding[]; transient: number }> {
    const { pageSize } = this.target;
    let transient = 0;
    let todo = suspects;
    const page = Buffer.alloc(pageSize);
    const out = new Uint32Array(2);
    for (let attempt = 0; attempt < this.recheck.recheckAttempts && todo.length > 0; attempt++) {
      await sleep(this.recheck.recheckDelayMs);
      const maxLsn = await walEndLsn(this.target);
      const still: Suspect[] = [];
      for (const s of todo) {
        const { bytesRead } = await this.handle.read(page, 0, pageSize, s.pageId * pageSize);
        // A writer never shrinks the data file: a page missing now is missing.
        if (bytesRead < pageSize) {
          still.push({ pageId: s.pageId, reason: 'short-read' });
          continue;
        }
        if (verifyPages(page, pageSize, s.pageId, maxLsn, out) === 0) transient++;
        else still.push({ pageId: s.pageId, reason: reasonOf(out[1]!) });
      }
      todo = still;
    }
    return { corrupt: todo.sort((a, b) => a.pageId - b.pageId), transient };
  }

  private slabFor(bytes: number): SharedArrayBuffer {
    if (!this.slab || this.slab.byteLength < bytes) this.slab = new SharedArrayBuffer(bytes);
    return this.slab;
  }
}

/** Scans every page of the store in `dir`: the full-speed, on-demand scan. */
export async function scanStore(engine: PageEngine, dir: string, options: RangeScanOptions & ScanTargetOptions & RecheckOptions = {}): Promise<StoreScanResult> {
  const t0 = performance.now();
  const scanner = await PageScanner.open(engine, dir, options);
  try {
    const { pageSize, pageCount, dataFile } = scanner.target;
    const r = await scanner.scan(0, pageCount, options);
    return { store: dir, dataFile, pageSize, pageCount, ...r, durationMs: Math.round((performance.now() - t0) * 10) / 10 };
  } finally {
    await scanner.close();
  }
}

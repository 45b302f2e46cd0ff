/**
 * The background scrub of one store: reads every page at a configured rate, over and over.
 *
 * - Rate: a token bucket in bytes (`scrub.rate`), holding one batch at most, so that the rate
 *   over any window of seconds stays within a batch of the target. A batch is a tenth of a
 *   second's worth of pages (at least one page, at most 8 MiB): ten small wake-ups a second,
 *   never a burst that would compete with the store's own I/O.
 * - Passes: a pass reads pages 0 … pageCount − 1 in order; a new one starts `scrub.interval`
 *   after the previous one started (at once if that pass took longer).
 * - Suspects first: pages named by `suspect()` (a failed read elsewhere in the agent) and the
 *   neighbours of every corrupt page found are checked before the pass goes on, also while
 *   waiting for the next pass; they cost tokens like any page.
 * - Resume: the position, pass times and pending suspects are saved under `agent.dataDir`
 *   (scrubState.ts) at most once a second, at the end of each pass and on stop.
 * - A store that cannot be opened (not created yet, truncated, replaced) is retried every
 *   `retryMs`; the error is kept in the stats and logged once per distinct message.
 *
 * One loop per store, on the main thread, page checks included: reads go to libuv's threads and
 * the hash of a batch (a tenth of a second at the rate, 5 MiB at 50 MiB/s) takes about half a
 * millisecond. Checks on the worker pool were measured too (`npm run bench:scan`, 50 MiB/s:
 * inline 1.2–2.3 % of one core, on the pool 1.6–2.7 %, inline cheaper in each of four runs): the
 * task round trip costs more than it moves off this thread, and the shared pool stays free for
 * recovery work. So the scrub has no pool mode.
 */
import type { Logger } from 'pino';
import type { StoreScrubStats } from '../../core/contracts/CorruptionStats.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { describeError } from '../../core/errors.js';
import type { PageFinding } from './reasons.js';
import { PageScanner } from './scanner.js';
import { freshState, loadScrubState, saveScrubState, scrubStateFile, type ScrubState } from './scrubState.js';
import { TokenBucket } from '../../core/tokenBucket.js';

/** Seconds of scanning per batch at the configured rate. */
const BATCH_SECONDS = 0.1;
const MAX_BATCH_BYTES = 8 << 20;
/** Pages on each side of a corrupt page that become suspects. */
export const NEIGHBOURS = 4;
const SAVE_EVERY_MS = 1000;
const MAX_SUSPECTS = 65536;
const MAX_PAUSE_MS = 3_600_000;

export type { StoreScrubStats };

export interface ScrubberOptions {
  storeId: string;
  /** The store's engine, through its page face. */
  engine: PageEngine;
  /** The store directory. */
  dir: string;
  /** Bytes per second. */
  rate: number;
  /** Milliseconds from one pass's start to the next's. */
  intervalMs: number;
  /** `agent.dataDir`: where the position is saved. */
  dataDir: string;
  log: Logger;
  /** Called after every batch with the range checked and the pages confirmed corrupt in it. */
  onScanned(range: { first: number; count: number }, corrupt: readonly PageFinding[]): void;
  /** Wait before re-reading a failing page (ms). Default 50. */
  recheckDelayMs?: number;
  /** Wait before retrying a store that cannot be opened (ms). Default 30 s. */
  retryMs?: number;
}

export class Scrubber {
  readonly stats: StoreScrubStats;
  private bucket: TokenBucket | null = null;
  private readonly stateFile: string;
  private readonly suspects = new Set<number>();
  private state: ScrubState | null = null;
  private scanner: PageScanner | null = null;
  private loop: Promise<void> | null = null;
  private stopping = false;
  private wake: (() => void) | null = null;
  private wakeOnSuspect = false;
  private lastSave = 0;
  private lastLoggedError: string | null = null;

  constructor(private readonly o: ScrubberOptions) {
    this.stateFile = scrubStateFile(o.dataDir, o.storeId);
    this.stats = {
      state: 'starting', position: 0, pageCount: 0, pageSize: 0, rateBytesPerSec: o.rate, passes: 0, passStartedAt: 0, lastPassCompletedAt: 0,
      lastPassDurationMs: 0, pagesScanned: 0, bytesScanned: 0, corruptFound: 0, transient: 0, suspectsPending: 0, lastError: null,
    };
  }

  /** Starts the loop; returns at once. */
  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.run().catch((err: unknown) => {
      // The loop catches what it expects; anything else is a bug, logged rather than lost.
      this.o.log.error({ store: this.o.storeId, err: describeError(err) }, 'scrub loop failed');
      this.stats.state = 'stopped';
    });
  }

  /** Stops after the batch in progress, saves the position and closes the data file. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.loop;
    this.loop = null;
  }

  /** Pages to check before the pass goes on (a failed read, a neighbour of a corrupt page). */
  suspect(pageIds: Iterable<number>): void {
    for (const p of pageIds) {
      if (!Number.isInteger(p) || p < 0 || (this.stats.pageCount > 0 && p >= this.stats.pageCount)) continue;
      if (this.suspects.size >= MAX_SUSPECTS) break;
      this.suspects.add(p);
    }
    this.stats.suspectsPending = this.suspects.size;
    if (this.suspects.size > 0 && this.wakeOnSuspect) this.wake?.();
  }

  private async run(): Promise<void> {
    try {
      while (!this.stopping) await this.step();
    } finally {
      await this.save(true);
      await this.scanner?.close().catch(() => undefined);
      this.scanner = null;
      this.stats.state = 'stopped';
    }
  }

  /** One unit of work: open the store, wait for the next pass, or scan one batch. */
  private async step(): Promise<void> {
    const now = Date.now();
    if (!this.scanner && !(await this.open())) return;
    const scanner = this.scanner!;
    const state = this.state!;
    const { pageSize, pageCount } = scanner.target;
    const batchPages = this.batchPages(pageSize);
    // The bucket holds one batch: the most the scrub reads in a burst after waiting.
    if (this.bucket?.capacity !== batchPages * pageSize) this.bucket = new TokenBucket(this.o.rate, batchPages * pageSize);

    let first: number;
    let count: number;
    let isPass: boolean;
    if (this.suspects.size > 0) {
      // The lowest suspects, as one contiguous run.
      const sorted = [...this.suspects].sort((a, b) => a - b);
      first = sorted[0]!;
      count = 1;
      while (count < batchPages && sorted[count] === first + count) count++;
      isPass = false;
    } else {
      if (state.nextPage >= pageCount) {
        const due = state.passStartedAt === 0 ? now : state.passStartedAt + this.o.intervalMs;
        if (now < due) {
          this.stats.state = 'waiting';
          // Between passes, let go of the file: the next pass checks the geometry afresh.
          await this.closeScanner();
          await this.pause(due - now, true);
          return;
        }
        state.nextPage = 0;
        state.passStartedAt = now;
        this.stats.passStartedAt = now;
        this.o.log.debug({ store: this.o.storeId, pages: pageCount }, 'scrub pass started');
      }
      first = state.nextPage;
      count = Math.min(batchPages, pageCount - first);
      isPass = true;
    }

    const wait = this.bucket.reserve(count * pageSize);
    if (wait > 0) {
      await this.pause(wait, false);
      if (this.stopping) return;
    }
    this.stats.state = 'scanning';
    let corrupt: readonly PageFinding[];
    try {
      const r = await scanner.scan(first, count, { lanes: 1 });
      corrupt = r.corrupt;
      this.stats.pagesScanned += r.pagesScanned;
      this.stats.bytesScanned += r.bytesScanned;
      this.stats.transient += r.transient;
      this.stats.corruptFound += r.corrupt.length;
    } catch (err) {
      this.noteError(err);
      await this.closeScanner();
      await this.pause(this.o.retryMs ?? 30_000, false);
      return;
    }
    this.lastLoggedError = null;
    this.stats.lastError = null;

    if (isPass) {
      state.nextPage = first + count;
    } else {
      for (let p = first; p < first + count; p++) this.suspects.delete(p);
    }
    const neighbours: number[] = [];
    for (const { pageId } of corrupt) {
      for (let d = -NEIGHBOURS; d <= NEIGHBOURS; d++) {
        const n = pageId + d;
        if (n >= 0 && n < pageCount && (n < first || n >= first + count)) neighbours.push(n);
      }
    }
    this.suspect(neighbours);
    state.suspects = [...this.suspects];
    this.stats.suspectsPending = this.suspects.size;
    this.stats.position = state.nextPage;
    this.o.onScanned({ first, count }, corrupt);

    if (isPass && state.nextPage >= pageCount) {
      const done = Date.now();
      state.passes++;
      state.lastPassCompletedAt = done;
      state.lastPassDurationMs = done - state.passStartedAt;
      Object.assign(this.stats, { passes: state.passes, lastPassCompletedAt: done, lastPassDurationMs: state.lastPassDurationMs });
      this.o.log.info({ store: this.o.storeId, pages: pageCount, ms: state.lastPassDurationMs, passes: state.passes }, 'scrub pass complete');
      await this.save(true);
    } else {
      await this.save(false);
    }
  }

  private batchPages(pageSize: number): number {
    return Math.max(1, Math.floor(Math.min(MAX_BATCH_BYTES, this.o.rate * BATCH_SECONDS) / pageSize));
  }

  /** Opens the store and loads (or starts) its saved state; false when it cannot be opened now. */
  private async open(): Promise<boolean> {
    try {
      this.scanner = await PageScanner.open(this.o.engine, this.o.dir, { recheckDelayMs: this.o.recheckDelayMs });
    } catch (err) {
      this.noteError(err);
      this.stats.state = 'unavailable';
      await this.pause(this.o.retryMs ?? 30_000, false);
      return false;
    }
    const { pageSize, pageCount } = this.scanner.target;
    const expect = { storeId: this.o.storeId, path: this.o.dir, pageSize, pageCount };
    if (!this.state || this.state.pageSize !== pageSize || this.state.pageCount !== pageCount) {
      const loaded = await loadScrubState(this.stateFile, expect);
      if (loaded.note) this.o.log.warn({ store: this.o.storeId }, loaded.note);
      this.state = loaded.state ?? freshState(this.o.storeId, this.o.dir, pageSize, pageCount);
      if (loaded.state && loaded.state.nextPage < pageCount) {
        this.o.log.info({ store: this.o.storeId, position: loaded.state.nextPage, pages: pageCount }, 'scrub resumes where it stopped');
      }
      this.suspect(this.state.suspects);
    }
    // Suspects named before the geometry was known (or of a store since replaced by a smaller one).
    for (const p of this.suspects) if (p >= pageCount) this.suspects.delete(p);
    this.stats.suspectsPending = this.suspects.size;
    const s = this.state;
    Object.assign(this.stats, {
      position: s.nextPage, pageCount, pageSize, passes: s.passes, passStartedAt: s.passStartedAt,
      lastPassCompletedAt: s.lastPassCompletedAt, lastPassDurationMs: s.lastPassDurationMs,
    });
    return true;
  }

  private async closeScanner(): Promise<void> {
    const s = this.scanner;
    this.scanner = null;
    await s?.close().catch(() => undefined);
  }

  private noteError(err: unknown): void {
    const message = describeError(err);
    this.stats.lastError = message;
    if (message !== this.lastLoggedError) {
      this.lastLoggedError = message;
      this.o.log.warn({ store: this.o.storeId, path: this.o.dir, err: message }, 'scrub cannot read the store; retrying later');
    }
  }

  private async save(force: boolean): Promise<void> {
    if (!this.state) return;
    const now = Date.now();
    if (!force && now - this.lastSave < SAVE_EVERY_MS) return;
    this.lastSave = now;
    this.state.suspects = [...this.suspects];
    try {
      await saveScrubState(this.stateFile, this.state);
    } catch (err) {
      this.o.log.warn({ store: this.o.storeId, file: this.stateFile, err: describeError(err) }, 'cannot save scrub position');
    }
  }

  /** Sleeps `ms`, or less when stopped (or, with `onSuspect`, when a suspect arrives). */
  private pause(ms: number, onSuspect: boolean): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wake = null;
        this.wakeOnSuspect = false;
        resolve();
      };
      // Capped: setTimeout cannot wait past 2^31 ms, and the loop re-checks what is due anyway.
      const timer = setTimeout(done, Math.min(Math.max(0, ms), MAX_PAUSE_MS));
      timer.unref();
      this.wake = done;
      this.wakeOnSuspect = onSuspect;
    });
  }
}

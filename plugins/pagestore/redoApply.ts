/**
 * Redo: applying WAL records to pages in the data file. Runs on the main thread (the
 * single-threaded baseline) or in worker-pool tasks, each given the records of its own pages.
 *
 * Rules:
 *   - records arrive in LSN order; a page's records are applied in that order;
 *   - a record is applied only if its LSN is newer than the page's LSN (repeating history
 *     without applying anything twice), and the page's LSN becomes the record's;
 *   - a page that fails its checksum is torn or damaged: only a full page image as its first
 *     record in the redo range can restore it, and every page changed since the redo point has
 *     one (the first change after a checkpoint logs one). Without it the page is reported.
 *
 * The per-record work runs in the native kernels (native/src/redo.rs): `redoCheckRecords`
 * checks every record before any page is touched (a record outside the store means the WAL is
 * not this store's: nothing is applied); then the pages, in ascending order, are read in
 * batches of up to `kBatchBytes` into one slab (one read per run of adjacent page ids),
 * `redoApplyPages` applies the batch's records page by page in one call, and the changed pages
 * are written back (one write per run).
 *
 * The streaming redo's page cache, applied to every few segments, is PageRedo (pageRedo.ts).
 *
 * Synchronous file I/O: it runs in a worker, or in recovery when nothing else runs.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { redoApplyPages, redoCheckRecords } from 'recovery-agent/native';
import { readU64 } from './format.js';
import { faultFires, die } from './faults.js';
import { kRecLsn } from './walRecord.js';
import { writeAllSync } from '../../core/writeAll.js';

/** A redo task's input: records are positions in `wal`, a view on a SharedArrayBuffer. */
export type RedoInput = {
  readonly wal: Uint8Array<SharedArrayBuffer>;
  readonly positions: Uint32Array<SharedArrayBuffer>;
  /** The page id of each record, parallel to `positions` (read once, in analysis). */
  readonly pageIds: Uint32Array<SharedArrayBuffer>;
  readonly count: number;
  readonly dataFile: string;
  readonly pageSize: number;
  readonly pageCount: number;
};

export interface RedoResult {
  applied: number;
  skipped: number;
  pagesWritten: number;
  /** Pages redo could not restore, with the reason; the caller decides what that means. */
  corrupt: Array<{ pageId: number; reason: string }>;
  /** Records whose page or byte range lies outside the store: the WAL is not this store's. */
  outOfRange: Array<{ lsn: number; pageId: number }>;
}

/** Bytes of pages read, applied and written back per native call. */
const kBatchBytes = 32 << 20;

/** `redoApplyPages` page status codes (native/index.d.ts, RedoPageStatus). */
export const kStatusChanged = 1;
export const kStatusMalformed = 6;
/** Status 2–5: why a page fails verification, as verifyPage names it. */
export const kCorruptReasons: Record<number, string> = { 2: 'checksum', 3: 'magic', 4: 'version', 5: 'page-id' };

export function applyRedo(input: RedoInput): RedoResult {
  const { wal, positions, pageIds, count, pageSize, pageCount } = input;
  const result: RedoResult = { applied: 0, skipped: 0, pagesWritten: 0, corrupt: [], outOfRange: [] };
  if (count === 0) return result;

  // Every record must fit its page and the store before anything is applied.
  let out = new Uint32Array(2 * 64);
  let bad = redoCheckRecords(wal, positions, pageIds, count, pageSize, pageCount, out);
  if (bad > 0) {
    if (2 * bad > out.length) {
      out = new Uint32Array(2 * bad);
      bad = redoCheckRecords(wal, positions, pageIds, count, pageSize, pageCount, out);
    }
    for (let k = 0; k < bad; k++) {
      const i = out[2 * k]!;
      result.outOfRange.push({ lsn: lsnAt(wal, positions[i]!), pageId: pageIds[i]! });
    }
    return result;
  }

  // Group record positions by page, keeping LSN order within a page: a counting sort over a
  // flat table of pages when the store is small enough for one, else over the pages seen.
  const { pages, starts, ordered } = groupByPage(positions, pageIds, count, pageCount);
  const n = pages.length;
  const batchPages = Math.max(1, Math.min(n, Math.floor(kBatchBytes / pageSize)));
  const slab = Buffer.allocUnsafe(batchPages * pageSize);
  const status = new Uint32Array(batchPages);
  // The crash harness's fault point: dies with the first half of the pages redone and written.
  // Batches end there, so even a store with one batch of pages gets there with half done.
  const half = n >> 1;

  const fd = openSync(input.dataFile, 'r+');
  try {
    for (let s = 0; s < n; ) {
      if (s === half && faultFires('recovery-redo')) die();
      const end = Math.min(n, s + batchPages, s < half ? half : n);
      readRuns(fd, pages, s, end, slab, pageSize);
      const applied = redoApplyPages(wal, ordered, starts, pages, s, end, slab, pageSize, status);
      // Records of pages applied or skipped; those of corrupt pages count as neither.
      let live = 0;
      for (let k = 0; k < end - s; k++) {
        const st = status[k]!;
        if (st <= kStatusChanged) {
          live += starts[s + k + 1]! - starts[s + k]!;
        } else if (st === kStatusMalformed) {
          // redoCheckRecords passed every record, so this cannot happen; report, never write.
          for (let r = starts[s + k]!; r < starts[s + k + 1]!; r++) result.outOfRange.push({ lsn: lsnAt(wal, ordered[r]!), pageId: pages[s + k]! });
        } else {
          result.corrupt.push({ pageId: pages[s + k]!, reason: kCorruptReasons[st] ?? `status ${st}` });
        }
      }
      result.applied += applied;
      result.skipped += live - applied;
      result.pagesWritten += writeRuns(fd, pages, s, end, slab, pageSize, status);
      s = end;
    }
  } finally {
    closeSync(fd);
  }
  return result;
}

/** The LSN of the record at `at`, or -1 when its header is not within the log. */
export function lsnAt(wal: Uint8Array, at: number): number {
  return at + kRecLsn + 8 <= wal.byteLength ? readU64(wal, at + kRecLsn) : -1;
}

/** Reads pages `pages[s..end)` into the slab, one read per run of adjacent page ids. */
function readRuns(fd: number, pages: Uint32Array, s: number, end: number, slab: Buffer, pageSize: number): void {
  for (let k = s; k < end; ) {
    let e = k + 1;
    while (e < end && pages[e]! === pages[e - 1]! + 1) e++;
    const off = (k - s) * pageSize;
    const len = (e - k) * pageSize;
    const pos = pages[k]! * pageSize;
    let done = 0;
    while (done < len) {
      const got = readSync(fd, slab, off + done, len - done, pos + done);
      if (got === 0) break;
      done += got;
    }
    // Past the end of the file: no page there, so it fails verification (a zeroed page does).
    if (done < len) slab.fill(0, off + done, off + len);
    k = e;
  }
}

/** Writes the changed pages of `pages[s..end)` back, one write per run of adjacent changed pages. */
function writeRuns(fd: number, pages: Uint32Array, s: number, end: number, slab: Buffer, pageSize: number, status: Uint32Array): number {
  let written = 0;
  for (let k = s; k < end; ) {
    if (status[k - s] !== kStatusChanged) {
      k++;
      continue;
    }
    let e = k + 1;
    while (e < end && status[e - s] === kStatusChanged && pages[e]! === pages[e - 1]! + 1) e++;
    const off = (k - s) * pageSize;
    const len = (e - k) * pageSize;
    const pos = pages[k]! * pageSize;
    writeAllSync(fd, slab.subarray(off, off + len), pos);
    written += e - k;
    k = e;
  }
  return written;
}

/** Below this many pages a flat table (4 bytes a page) groups faster than a map. */
const kFlatTablePages = 1 << 24;

/**
 * Orders record positions by page, LSN order kept within each page. Returns the pages in
 * ascending order (so the data file is visited in order and adjacent pages form runs), where
 * each page's records start in `ordered` (`starts`, one more than the pages), and the positions.
 */
function groupByPage(positions: Uint32Array, pageIds: Uint32Array, count: number, pageCount: number): { pages: Uint32Array; starts: Uint32Array; ordered: Uint32Array } {
  const slotOf = new Uint32Array(count);
  let pages: Uint32Array;
  let counts: Uint32Array;
  if (pageCount <= kFlatTablePages) {
    // Slot numbers are assigned in ascending page order.
    const perPage = new Uint32Array(pageCount);
    for (let i = 0; i < count; i++) perPage[pageIds[i]!]!++;
    let distinct = 0;
    for (let p = 0; p < pageCount; p++) if (perPage[p]! > 0) distinct++;
    pages = new Uint32Array(distinct);
    counts = new Uint32Array(distinct);
    let slot = 0;
    for (let p = 0; p < pageCount; p++) {
      if (perPage[p]! === 0) continue;
      pages[slot] = p;
      counts[slot] = perPage[p]!;
      perPage[p] = slot++;
    }
    for (let i = 0; i < count; i++) slotOf[i] = perPage[pageIds[i]!]!;
  } else {
    // Slots in first-seen order, then renumbered in ascending page order.
    const slots = new Map<number, number>();
    const seen: number[] = [];
    const n: number[] = [];
    for (let i = 0; i < count; i++) {
      let slot = slots.get(pageIds[i]!);
      if (slot === undefined) {
        slot = seen.length;
        slots.set(pageIds[i]!, slot);
        seen.push(pageIds[i]!);
        n.push(0);
      }
      n[slot]!++;
      slotOf[i] = slot;
    }
    const order = Array.from(seen.keys()).sort((a, b) => seen[a]! - seen[b]!);
    const rank = new Uint32Array(seen.length);
    pages = new Uint32Array(seen.length);
    counts = new Uint32Array(seen.length);
    order.forEach((old, slot) => {
      rank[old] = slot;
      pages[slot] = seen[old]!;
      counts[slot] = n[old]!;
    });
    for (let i = 0; i < count; i++) slotOf[i] = rank[slotOf[i]!]!;
  }
  const starts = new Uint32Array(pages.length + 1);
  for (let s = 0; s < pages.length; s++) starts[s + 1] = starts[s]! + counts[s]!;
  const fill = starts.slice(0, pages.length);
  const ordered = new Uint32Array(count);
  for (let i = 0; i < count; i++) ordered[fill[slotOf[i]!]!++] = positions[i]!;
  return { pages, starts, ordered };
}

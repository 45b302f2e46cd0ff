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
 * Synchronous file I/O: it runs in a worker, or in recovery when nothing else runs.
 */
import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { PAGE_HEADER_SIZE, pageLsn, sealPage, setPageLsn, verifyPage } from './format.js';
import { faultFires, die } from './faults.js';
import { RECORD_HEADER_SIZE, RecordType, kFlagFullPage, kRecFlags, kRecLsn, kRecOffset, kRecRangeLength, kRecType } from './walRecord.js';
import { readU64 } from './format.js';

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

export function applyRedo(input: RedoInput): RedoResult {
  const { wal, positions, count, pageSize, pageCount } = input;
  const dv = new DataView(wal.buffer, wal.byteOffset, wal.byteLength);
  const result: RedoResult = { applied: 0, skipped: 0, pagesWritten: 0, corrupt: [], outOfRange: [] };

  // Group record positions by page, keeping LSN order within a page: a counting sort over a
  // flat table of pages when the store is small enough for one, else over the pages seen.
  const { pageIds } = input;
  for (let i = 0; i < count; i++) {
    const at = positions[i]!;
    const pageId = pageIds[i]!;
    const offset = dv.getUint32(at + kRecOffset, true);
    const length = dv.getUint32(at + kRecRangeLength, true);
    if (pageId >= pageCount || pageId === 0 || offset < PAGE_HEADER_SIZE || offset + length > pageSize) {
      result.outOfRange.push({ lsn: readU64(wal, at + kRecLsn), pageId });
    }
  }
  if (result.outOfRange.length > 0) return result;
  const { pages, starts, ordered } = groupByPage(positions, pageIds, count, pageCount);

  const walBuf = Buffer.from(wal.buffer, wal.byteOffset, wal.byteLength);
  const fd = openSync(input.dataFile, 'r+');
  try {
    const page = Buffer.alloc(pageSize);
    const half = pages.length >> 1;
    for (let s = 0; s < pages.length; s++) {
      if (s === half && faultFires('recovery-redo')) die();
      const pageId = pages[s]!;
      readSync(fd, page, 0, pageSize, pageId * pageSize);
      const first = ordered[starts[s]!]!;
      const firstHasImage = (wal[first + kRecFlags]! & kFlagFullPage) !== 0;
      const fault = verifyPage(page, pageId);
      if (fault && !firstHasImage) {
        result.corrupt.push({ pageId, reason: fault });
        continue;
      }
      // A page that fails verification is rebuilt from the image, whatever LSN it claims.
      let lsn = fault ? -1 : pageLsn(page);
      let changed = false;
      for (let k = starts[s]!; k < starts[s + 1]!; k++) {
        const at = ordered[k]!;
        const recLsn = readU64(wal, at + kRecLsn);
        if (recLsn <= lsn) {
          result.skipped++;
          continue;
        }
        const flags = wal[at + kRecFlags]!;
        const length = dv.getUint32(at + kRecRangeLength, true);
        if (flags & kFlagFullPage) {
          // The image follows the range images: before+after for an update, after for a CLR.
          const images = wal[at + kRecType] === RecordType.Update ? 2 * length : length;
          const img = at + RECORD_HEADER_SIZE + images;
          walBuf.copy(page, 0, img, img + pageSize);
        } else {
          const offset = dv.getUint32(at + kRecOffset, true);
          const after = at + RECORD_HEADER_SIZE + (wal[at + kRecType] === RecordType.Update ? length : 0);
          walBuf.copy(page, offset, after, after + length);
        }
        setPageLsn(page, recLsn);
        lsn = recLsn;
        changed = true;
        result.applied++;
      }
      if (changed) {
        sealPage(page);
        writeSync(fd, page, 0, pageSize, pageId * pageSize);
        result.pagesWritten++;
      }
    }
  } finally {
    closeSync(fd);
  }
  return result;
}

/** Below this many pages a flat table (4 bytes a page) groups faster than a map. */
const kFlatTablePages = 1 << 24;

/**
 * Orders record positions by page, LSN order kept within each page. Returns the pages in the
 * order they are visited, where each page's records start in `ordered`, and the positions.
 */
function groupByPage(positions: Uint32Array, pageIds: Uint32Array, count: number, pageCount: number): { pages: Uint32Array; starts: Uint32Array; ordered: Uint32Array } {
  const slotOf = new Uint32Array(count);
  let pages: Uint32Array;
  let counts: Uint32Array;
  if (pageCount <= kFlatTablePages) {
    // Slot numbers are assigned in ascending page order, so the data file is visited in order.
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
    pages = Uint32Array.from(seen);
    counts = Uint32Array.from(n);
  }
  const starts = new Uint32Array(pages.length + 1);
  for (let s = 0; s < pages.length; s++) starts[s + 1] = starts[s]! + counts[s]!;
  const fill = starts.slice(0, pages.length);
  const ordered = new Uint32Array(count);
  for (let i = 0; i < count; i++) ordered[fill[slotOf[i]!]!++] = positions[i]!;
  return { pages, starts, ordered };
}

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
import { RECORD_HEADER_SIZE, RecordType, kFlagFullPage, kRecFlags, kRecLsn, kRecOffset, kRecPageId, kRecRangeLength, kRecType } from './walRecord.js';
import { readU64 } from './format.js';

/** A redo task's input: records are positions in `wal`, a view on a SharedArrayBuffer. */
export type RedoInput = {
  readonly wal: Uint8Array<SharedArrayBuffer>;
  readonly positions: Uint32Array<SharedArrayBuffer>;
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

  // Group record positions by page, keeping LSN order within a page (a counting sort).
  const pageOf = new Uint32Array(count);
  const slotOf = new Map<number, number>();
  const pages: number[] = [];
  const counts: number[] = [];
  for (let i = 0; i < count; i++) {
    const at = positions[i]!;
    const pageId = dv.getUint32(at + kRecPageId, true);
    const offset = dv.getUint32(at + kRecOffset, true);
    const length = dv.getUint32(at + kRecRangeLength, true);
    if (pageId >= pageCount || pageId === 0 || offset < PAGE_HEADER_SIZE || offset + length > pageSize) {
      result.outOfRange.push({ lsn: readU64(wal, at + kRecLsn), pageId });
      continue;
    }
    let slot = slotOf.get(pageId);
    if (slot === undefined) {
      slot = pages.length;
      slotOf.set(pageId, slot);
      pages.push(pageId);
      counts.push(0);
    }
    counts[slot]!++;
    pageOf[i] = slot;
  }
  if (result.outOfRange.length > 0) return result;
  const starts = new Uint32Array(pages.length + 1);
  for (let s = 0; s < pages.length; s++) starts[s + 1] = starts[s]! + counts[s]!;
  const fill = starts.slice(0, pages.length);
  const ordered = new Uint32Array(count);
  for (let i = 0; i < count; i++) ordered[fill[pageOf[i]!]!++] = positions[i]!;

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
          page.set(wal.subarray(img, img + pageSize));
        } else {
          const offset = dv.getUint32(at + kRecOffset, true);
          const after = at + RECORD_HEADER_SIZE + (wal[at + kRecType] === RecordType.Update ? length : 0);
          page.set(wal.subarray(after, after + length), offset);
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

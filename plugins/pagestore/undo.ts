/**
 * Recovery's undo pass (recovery.ts): every loser's changes, newest first across all losers, each
 * undone change logged as a compensation record (CLR) whose undo-next pointer skips what is
 * already undone, so a crash during undo never undoes anything twice.
 */
import { readSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { raError } from '../../core/errors.js';
import { faultPoint } from './faults.js';
import { setPageLsn, verifyPage } from './format.js';
import type { AnalysisAndRedo } from './redoPaths.js';
import type { StoreGeometry } from './storeFiles.js';
import { RecordType, type WalRecord } from './walRecord.js';
import type { WalWriter } from './walWriter.js';

export interface UndoInput {
  records: (lsn: number) => Promise<WalRecord>;
  wal: WalWriter;
  data: FileHandle;
  geometry: StoreGeometry;
  losers: Array<{ txId: number; lastLsn: number }>;
  /** Pages that already have a full image in the redo range. */
  covered: AnalysisAndRedo['covered'];
}

/** Pages per slab of undo's page images (2 MiB of 8 KiB pages). */
const kUndoSlabPages = 256;

export async function undoLosers(u: UndoInput): Promise<{ undone: number; pages: Map<number, Buffer>; recLsns: Map<number, number> }> {
  const { wal, data, geometry } = u;
  const pages = new Map<number, Buffer>();
  /** Each page's first CLR: its recLsn, should the store take it over dirty (DeferredCheckpoint). */
  const recLsns = new Map<number, number>();
  // Pages are carved out of zeroed slabs: a Buffer (and ArrayBuffer) of its own per page cost
  // undo more CPU than its reads (measured: 330 of 800 ms for ~8000 pages, most of it in GC).
  let slab = Buffer.alloc(0);
  let slabUsed = 0;
  // Synchronous reads: recovery has the store to itself, and a thread-pool round trip per page
  // made undo wait on I/O for most of its time (measured: 449 of 668 ms idle for 8000 pages).
  const loadPage = (pageId: number): Buffer => {
    let page = pages.get(pageId);
    if (!page) {
      if (slabUsed + geometry.pageSize > slab.length) {
        slab = Buffer.alloc(kUndoSlabPages * geometry.pageSize);
        slabUsed = 0;
      }
      page = slab.subarray(slabUsed, slabUsed + geometry.pageSize);
      slabUsed += geometry.pageSize;
      readSync(data.fd, page, 0, geometry.pageSize, pageId * geometry.pageSize);
      const fault = verifyPage(page, pageId);
      if (fault) throw raError('RA_ERR_PAGE_CORRUPT', `page ${pageId} fails its ${fault} check; undo cannot proceed`, { details: { pageId, reason: fault } });
      pages.set(pageId, page);
    }
    return page;
  };
  // Each loser: the next LSN to undo, and the tail of its chain (where its next CLR links).
  const todo = u.losers.map((l) => ({ txId: l.txId, next: l.lastLsn, tail: l.lastLsn }));
  let undone = 0;
  while (todo.length > 0) {
    todo.sort((a, b) => b.next - a.next); // newest first across all losers
    const t = todo[0]!;
    const rec = await u.records(t.next);
    if (rec.txId !== t.txId) throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${rec.lsn} belongs to transaction ${rec.txId}, not ${t.txId} whose chain leads there`, { details: { lsn: rec.lsn } });
    let next: number;
    if (rec.type === RecordType.Update) {
      const page = loadPage(rec.pageId);
      page.set(rec.before!, rec.offset);
      const fullPage = u.covered.has(rec.pageId) ? undefined : page;
      const clr = wal.append({ type: RecordType.Clr, txId: t.txId, prevLsn: t.tail, pageId: rec.pageId, offset: rec.offset, after: rec.before!, undoNextLsn: rec.prevLsn, ...(fullPage ? { fullPage } : {}) });
      setPageLsn(page, clr.lsn);
      if (!recLsns.has(rec.pageId)) recLsns.set(rec.pageId, clr.lsn);
      u.covered.add(rec.pageId);
      t.tail = clr.lsn;
      undone++;
      if (undone === 1) {
        await wal.flush();
        faultPoint('recovery-undo');
      }
      next = rec.prevLsn;
    } else if (rec.type === RecordType.Clr) {
      next = rec.undoNextLsn;
    } else {
      next = rec.prevLsn;
    }
    if (next === 0) {
      const end = wal.append({ type: RecordType.Abort, txId: t.txId, prevLsn: t.tail });
      t.tail = end.lsn;
      todo.shift();
    } else {
      t.next = next;
    }
  }
  await wal.flush();
  return { undone, pages, recLsns };
}


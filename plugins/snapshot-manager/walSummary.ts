/**
 * Which pages an incremental snapshot must look at, from the WAL instead of a read of every
 * page (as PostgreSQL 17's WAL summaries do).
 *
 * An incremental keeps the pages whose LSN is at or after its base's start LSN. Every change to
 * a page is WAL-logged with the page's new LSN (updates, CLRs, full page images alike), so those
 * pages are among the pages named by records from the base's start LSN on. Reading the WAL to
 * its valid end E — read after the new snapshot's control file, so E is at or after the new
 * snapshot's start LSN — is enough: a page changed only after E has all its changes at or after
 * the new start LSN, and restore replays those over the base's image anyway.
 *
 * The WAL comes from the store's WAL directory, and for segments already recycled from the
 * archive or a snapshot's WAL copy. Only copies known to be whole serve for a segment before the
 * last: an archived segment (archived when retired), or a snapshot's WAL entry other than its
 * last (the copy went on to a later segment, so this one was finished). Records never straddle
 * segments, and the writer moves to the next segment only when the next record does not fit;
 * so a segment's records are known to run to its end when the next segment's first record
 * would not have fit after them. Anything short of that — a missing segment, a segment that
 * ends early, a damaged header — and the caller falls back to reading every page.
 */
import path from 'node:path';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { isRaError } from '../../core/errors.js';
import { archiveDirOf, snapshotPath, type Manifest, type PageRun } from './manifest.js';
import { listArchive } from './walArchive.js';
import { loadSegment, type WalSource } from './walChain.js';

export interface WalSummaryOptions {
  /** The store's engine: how its log is laid out. */
  engine: PageEngine;
  /** The live segment starting at `start` as it is now, or null when recycled (walCopy.ts). */
  readLive: (start: number) => Promise<Uint8Array | null>;
  /** The store's WAL directory. */
  walDir: string;
  /** The snapshot directory (for the archive and the snapshots' WAL copies). */
  dir: string;
  /** The snapshots in `dir`, for their WAL copies. */
  manifests: readonly Manifest[];
  storeId: Uint8Array;
  segmentSize: number;
  pageCount: number;
  /** Summarise from here: the base snapshot's start LSN (a record boundary). */
  fromLsn: number;
  /** The WAL read must reach at least this LSN: the new snapshot's start LSN. */
  mustReach: number;
  /** Give up (fall back) when the WAL to read is larger than this many bytes. */
  maxBytes: number;
}

/** The pages named by the WAL from `fromLsn` to `endLsn`. */
export interface WalSummary {
  /** Runs of adjacent page ids, ascending. */
  runs: PageRun[];
  pages: number;
  endLsn: number;
  /** Bytes of WAL read, and how many segments came from the archive or snapshot copies. */
  walBytes: number;
  segmentsArchived: number;
}

/** The summary, or why the WAL cannot give it (the caller then reads every page). */
export type WalSummaryOutcome = { summary: WalSummary; fallback?: undefined } | { summary?: undefined; fallback: string };

export async function summarizeWal(o: WalSummaryOptions): Promise<WalSummaryOutcome> {
  const { log } = o.engine;
  const first = log.segmentStartOf(o.fromLsn, o.segmentSize);
  const live = (await log.listSegments(o.walDir)).filter((s) => s >= first);
  const last = live[live.length - 1];
  if (last === undefined) return { fallback: `the store's WAL directory holds no segment from LSN ${first} on` };
  if (last + o.segmentSize - first > o.maxBytes) {
    return { fallback: `the WAL since the base (LSN ${o.fromLsn} to at least ${last}) is larger than ${o.maxBytes} bytes, a quarter of the data file` };
  }
  const pages = new Uint8Array(o.pageCount);
  let whole: Map<number, WalSource> | null = null;
  let walBytes = 0;
  let segmentsArchived = 0;
  let endLsn = o.fromLsn;
  let prevEnd = -1; // offset in the previous segment where its valid records end
  for (let s = first; s <= last; s += o.segmentSize) {
    let buf = await o.readLive(s);
    if (!buf) {
      // Recycled: archived first (if an archiver runs), or in a snapshot's WAL copy.
      whole = whole && whole.has(s) ? whole : await wholeCopies(o.dir, o.manifests, first);
      const src = whole.get(s);
      if (!src) return { fallback: `WAL segment at LSN ${s} is recycled and in neither the archive nor a snapshot's WAL copy as a whole` };
      try {
        buf = (await loadSegment(o.engine, src, o.storeId, o.segmentSize, Infinity)).bytes;
      } catch (err) {
        // A damaged record in the copy (it used to be cut there silently): the snapshot reads
        // every page instead, as for any WAL it cannot use.
        if (isRaError(err, 'RA_ERR_SNAPSHOT_CORRUPT') && typeof err.details.lsn === 'number') return { fallback: err.message };
        throw err;
      }
      segmentsArchived++;
    }
    walBytes += buf.byteLength;
    const problem = log.checkSegmentHeader(buf, o.storeId, s, o.segmentSize);
    if (problem) {
      // The newest segment may be being created; anything else is a damaged log.
      if (s === last && s > first) break;
      return { fallback: `WAL segment at LSN ${s}: ${problem}` };
    }
    const start = s === first ? Math.max(o.fromLsn - s, log.segmentHeaderSize) : log.segmentHeaderSize;
    let outside = -1;
    let outsidePage = -1;
    const p = log.forEachPageRecord(buf, start, s + start, (at, pageId) => {
      if (pageId < o.pageCount) pages[pageId] = 1;
      else {
        outside = at;
        outsidePage = pageId;
      }
    });
    if (outside >= 0) return { fallback: `WAL record at LSN ${s + outside} names page ${outsidePage}, beyond the store's ${o.pageCount} pages` };
    if (s > first && prevEnd >= 0) {
      if (p === start) {
        // No record here: the end of the log, unless a later segment exists.
        if (s < last) return { fallback: `WAL segment at LSN ${s} holds no valid record, but later segments exist` };
        break;
      }
      // The previous segment is whole only if this one's first record did not fit after it.
      if (prevEnd + log.recordLength(buf, start) <= o.segmentSize) {
        return { fallback: `the WAL read of segment ${s - o.segmentSize} ends at LSN ${s - o.segmentSize + prevEnd}, before the segment's end (a damaged or partial copy)` };
      }
    }
    prevEnd = p;
    endLsn = s + p;
  }
  if (endLsn < o.mustReach) return { fallback: `the WAL read ends at LSN ${endLsn}, before the new snapshot's start LSN ${o.mustReach}` };
  const runs: PageRun[] = [];
  let count = 0;
  for (let id = 1; id < o.pageCount; id++) {
    if (pages[id] === 0) continue;
    count++;
    const run = runs[runs.length - 1];
    if (run && run[0] + run[1] === id) run[1]++;
    else runs.push([id, 1]);
  }
  return { summary: { runs, pages: count, endLsn, walBytes, segmentsArchived } };
}


/** Segment copies known to be whole: archived ones, and snapshot WAL entries but the last. */
async function wholeCopies(dir: string, manifests: readonly Manifest[], fromStart: number): Promise<Map<number, WalSource>> {
  const out = new Map<number, WalSource>();
  for (const m of manifests) {
    for (const w of m.wal.slice(0, -1)) out.set(w.startLsn, { startLsn: w.startLsn, rawBytes: w.rawBytes, path: path.join(snapshotPath(dir, m.id), w.file), entry: w, at: m.finishedAt });
  }
  for (const a of await listArchive(dir, fromStart)) out.set(a.startLsn, { startLsn: a.startLsn, rawBytes: a.rawBytes, path: path.join(archiveDirOf(dir), a.file), entry: a, at: a.archivedAt });
  return out;
}

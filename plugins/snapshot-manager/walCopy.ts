/**
 * The WAL side of a snapshot: the live segments pinned when it starts, read once for an
 * incremental's WAL summary and again — only the bytes after their valid records — for the
 * copy of the WAL from the snapshot's start to the end of its valid records.
 *
 * Rules: main thread only. A segment opened at pinning outlives the store recycling (unlinking)
 * it. Valid records once read stay as they were: the store only appends after the last, and a
 * reopened store truncates only a torn tail after it; so the copy reads again from there.
 */
import { open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { sharedBytes, type SharedBytes } from '../../core/workerPool.js';
import type { Compressor } from './compressor.js';
import { readFull } from './copyPages.js';
import { walFileName, type WalEntry } from './manifest.js';
import { listArchivedStarts } from './walArchive.js';

interface PinnedSegment {
  start: number;
  handle: FileHandle;
  /** What was read of it so far (a capacity of a whole segment), and how many bytes. */
  buf?: SharedBytes;
  length?: number;
}

/** The live WAL of a store from the checkpoint a snapshot starts at. */
export class LiveWal {
  private constructor(
    private readonly engine: PageEngine,
    private readonly walDir: string,
    private readonly segmentSize: number,
    private readonly pinned: PinnedSegment[],
  ) {}

  /**
   * Reads the store's state (its control file) and opens the WAL segments it needs; retries if
   * a checkpoint races. The caller must `close()` the result.
   */
  static async pin(engine: PageEngine, store: string) {
    const { files, log } = engine;
    for (let attempt = 0; ; attempt++) {
      const control = await files.readState(store);
      const walDir = files.logDir(store);
      const segments: PinnedSegment[] = [];
      try {
        const rec = await log.readRecord(walDir, control, control.checkpointLsn);
        if (log.recordKind(rec, 0) !== 'checkpoint') throw raError('RA_ERR_STORE_INVALID', `control file of ${store} points at LSN ${control.checkpointLsn}, not a checkpoint record`);
        const ckpt = log.decodeCheckpoint(rec, 0, control.pageSize);
        const first = log.segmentStartOf(Math.min(control.redoLsn, ...ckpt.activeTransactions.map((a) => a[1])), control.segmentSize);
        for (const start of await log.listSegments(walDir)) {
          if (start >= first) segments.push({ start, handle: await open(path.join(walDir, log.segmentName(start)), 'r') });
        }
        if (segments[0]?.start !== first) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${path.join(walDir, log.segmentName(first))} is missing`);
        return { control, ckpt, wal: new LiveWal(engine, walDir, control.segmentSize, segments) };
      } catch (err) {
        await Promise.all(segments.map((s) => s.handle.close().catch(() => undefined)));
        // A checkpoint may have switched the control file and recycled segments meanwhile.
        if (attempt >= 4) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  private segmentPath(start: number): string {
    return path.join(this.walDir, this.engine.log.segmentName(start));
  }

  async close(): Promise<void> {
    await Promise.all(this.pinned.map((s) => s.handle.close().catch(() => undefined)));
  }

  /**
   * The bytes of the live segment starting at `start`, as they are now, or null when it is gone
   * (recycled). A pinned segment's bytes are kept for `copy`.
   */
  async read(start: number): Promise<Uint8Array | null> {
    const seg = this.pinned.find((s) => s.start === start);
    if (seg) return (await this.refresh(seg, 0)).buf.subarray(0, seg.length);
    let h: FileHandle;
    try {
      h = await open(this.segmentPath(start), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    try {
      const { size } = await h.stat();
      const buf = Buffer.allocUnsafe(size);
      await readFull(h, this.segmentPath(start), buf, size, 0);
      return buf;
    } finally {
      await h.close();
    }
  }

  /**
   * Reads what `seg` holds now from byte `from` on (bytes before it read already), or all of it
   * if it does not fit what was read (or shrank); returns the buffer and where reading began.
   */
  private async refresh(seg: PinnedSegment, from: number): Promise<{ buf: SharedBytes; reread: number }> {
    const { size } = await seg.handle.stat();
    if (!seg.buf || seg.buf.byteLength < size) {
      seg.buf = sharedBytes(Math.max(size, this.segmentSize, 8));
      from = 0;
    }
    if (from > size || seg.length === undefined) from = 0;
    await readFull(seg.handle, this.segmentPath(seg.start), seg.buf.subarray(from), size - from, from);
    seg.length = size;
    return { buf: seg.buf, reread: from };
  }

  /** Reopens `seg` when its path names another file than the one pinned; true if it did. */
  private async repin(seg: PinnedSegment): Promise<boolean> {
    const file = this.segmentPath(seg.start);
    const [held, now] = await Promise.all([seg.handle.stat(), stat(file).catch(() => null)]);
    if (now === null || (now.ino === held.ino && now.dev === held.dev)) return false;
    const handle = await open(file, 'r').catch(() => null);
    if (handle === null) return false;
    await seg.handle.close().catch(() => undefined);
    seg.handle = handle;
    delete seg.buf;
    delete seg.length;
    return true;
  }

  /**
   * Compresses the WAL from `fromLsn` to the end of its valid records into `dir/wal/` (through
   * `compressor`; the caller drains it); returns the entries, that end, and when it was read
   * (a time after every commit before that end was issued).
   * A segment recycled meanwhile must be in the archive of `snapshotDir` (RA_ERR_WAL_GAP).
   */
  async copy(dir: string, snapshotDir: string, fromLsn: number, storeId: Uint8Array, compressor: Compressor): Promise<{ entries: WalEntry[]; endLsn: number; readAt: number }> {
    // Segments created since pinning (the copy may have taken a while).
    for (const start of await this.engine.log.listSegments(this.walDir)) {
      if (start > this.pinned[this.pinned.length - 1]!.start) {
        const handle = await open(this.segmentPath(start), 'r').catch(() => null);
        if (handle) this.pinned.push({ start, handle });
      }
    }
    const archived = new Set(await listArchivedStarts(snapshotDir));
    const entries: WalEntry[] = [];
    let endLsn = fromLsn;
    for (let i = 0; i < this.pinned.length; i++) {
      const seg = this.pinned[i]!;
      if (i > 0 && seg.start !== this.pinned[i - 1]!.start + this.segmentSize) {
        const gap = this.pinned[i - 1]!.start + this.segmentSize;
        if (!archived.has(gap)) throw raError('RA_ERR_WAL_GAP', `WAL segment at LSN ${gap} was recycled during the snapshot and is not in the archive (${gap}..${seg.start - 1} missing); configure the archiver or retry`);
      }
      const { log } = this.engine;
      const from = i === 0 ? Math.max(fromLsn - seg.start, log.segmentHeaderSize) : log.segmentHeaderSize;
      // Records read before (for the summary) stand; what follows them is read again.
      const known = seg.buf && seg.length !== undefined ? log.scanRecords(seg.buf, from, seg.length, seg.start + from) : 0;
      const { buf, reread } = await this.refresh(seg, known);
      // A segment made at full size (zeros after its records) reads as far as its records go.
      const size = log.segmentContent(buf.subarray(0, seg.length!), seg.length!, this.segmentSize).length;
      // Cut at the first record that is not (yet) valid: the writer may be mid-write there.
      const problem = log.checkSegmentHeader(buf.subarray(0, size), storeId, seg.start, this.segmentSize);
      // The newest segment may be being created (its file exists before its header is written):
      // the log ends before it, as for the summary (walSummary.ts) and recovery. A chaos trial's
      // new full snapshot failed on one ("shorter than its header"), and its repair escalated.
      if (problem && i > 0 && i === this.pinned.length - 1 && size < log.segmentHeaderSize) {
        // Unless the file pinned is not the segment any more: an owner killed while creating it
        // has it unlinked by its restart's recovery (past the log's end), and creates it afresh
        // on reaching it. Its commits there precede `readAt`, so the copy reads that file.
        if (await this.repin(seg)) {
          i--;
          continue;
        }
        break;
      }
      if (problem) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${this.segmentPath(seg.start)}: ${problem}`);
      const scanFrom = Math.max(from, reread);
      const p = log.scanRecords(buf, scanFrom, size, seg.start + scanFrom);
      endLsn = seg.start + p;
      const entry = { file: `wal/${walFileName(seg.start)}.lz4`, startLsn: seg.start } as WalEntry;
      entries.push(entry);
      compressor.submit(buf, p, path.join(dir, entry.file), entry, false);
      if (p < size) break; // the valid log ends inside this segment
    }
    // Taken only now that `endLsn` is fixed: every commit before it took its time (as it was
    // issued, before its record reached the file read above) before this, so `readAt` bounds the
    // time of every commit the snapshot holds. Taken before the scan, a commit issued during
    // the copy would lie before `endLsn` with a time after it (a restore to `readAt` kept it).
    const readAt = Date.now();
    return { entries, endLsn, readAt };
  }
}

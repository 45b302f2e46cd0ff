/**
 * The WAL writer: assigns LSNs, buffers records, and makes them durable with group commit.
 *
 * Group commit: `flush(lsn)` never starts a second write while one is in flight. Records
 * appended while an fdatasync runs wait for the next round, which writes them all with one
 * writev and one fdatasync. So N concurrent commits cost about two fdatasyncs, not N.
 *
 * The writer keeps the log's rolling checksum R (walRolling.ts) as it appends, and stamps R and
 * the epoch into each segment header it creates. A replication sender may hook `onFlushed`: it
 * is called with each batch right after its fdatasync (a null check when nobody hooks it).
 *
 * Segments are created FULL_SIZE (walSegments.ts): the file is `segmentSize` bytes from the
 * start (made aside and renamed into place whole), records are written into it, and its length
 * never changes; so a segment cut shorter is known for damage, never taken for a torn tail.
 *
 * After a failed write or fdatasync the writer is broken for good: the kernel may have dropped
 * the dirty pages, so retrying fsync could report success for data that is gone. Every waiter
 * is rejected; the store must be reopened, which runs recovery.
 */
import { open, readdir, rename, type FileHandle } from 'node:fs/promises';
import { unlink } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { openPrivate } from '../../core/privateFiles.js';
import { faultPoint } from './faults.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { encodeRecord, encodedSize, type RecordFields } from './walRecord.js';
import { SEGMENT_HEADER_SIZE, SEG_FULL_SIZE, encodeSegmentHeader, isFullSize, listSegments, nonzeroEnd, segmentLengthProblem, segmentPath, segmentStartOf, withFullSize, type SegmentPosition } from './walSegments.js';
import { roll } from '../../core/replication/rolling.js';
import { rollingAt } from './walRolling.js';
import { writeAll, writevAll } from '../../core/writeAll.js';
import { isFork, segmentEpoch, syncEpochFile } from './epochHistory.js';

/** A record appended and not yet durable, or (to `onFlushed`) just made durable. */
export interface Pending {
  readonly lsn: number;
  readonly buf: Buffer;
  /** R before this record: what a segment starting with it records in its header. */
  readonly rollingBefore: bigint;
}

interface Waiter {
  upto: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

/** Largest number of buffers handed to one writev. */
const kMaxIov = 512;

export class WalWriter {
  private pending: Pending[] = [];
  private waiters: Waiter[] = [];
  private flushing = false;
  private broken: Error | null = null;
  /** Statistics for benchmarks and metrics. */
  readonly stats = { flushes: 0, recordsWritten: 0, bytesWritten: 0 };

  private constructor(
    private readonly walDir: string,
    private readonly storeId: Uint8Array,
    readonly segmentSize: number,
    private handle: FileHandle,
    private segStart: number,
    /** LSN the next record gets. */
    private nextLsn: number,
    at: SegmentPosition,
    /** The epoch in the header of the segment holding `nextLsn`. */
    segEpoch: number,
  ) {
    this.flushedLsn = nextLsn;
    this.epoch = at.epoch;
    this.segEpoch = segEpoch;
    this.rolling = at.rolling;
    this.flushedRolling = at.rolling;
  }

  /** The epoch stamped into the segment headers this writer creates (replication raises it). */
  epoch: number;
  /** The epoch in the header of the segment being written. */
  private segEpoch: number;
  /** R at `endLsn`: folded over every record appended so far. */
  rolling: bigint;
  /** R at `flushedLsn`. */
  flushedRolling: bigint;
  /**
   * Called with each batch of records right after it is durable, before the commits it holds are
   * acknowledged (the replication sender's live tail). Must not throw.
   */
  onFlushed: ((batch: readonly Pending[]) => void) | null = null;

  /** Why the log cannot be written any more (it never recovers from that), or null. */
  get failure(): Error | null {
    return this.broken;
  }

  /** Every byte below this LSN is durable. */
  flushedLsn: number;

  /** The LSN the next record will get (the end of the log). */
  get endLsn(): number {
    return this.nextLsn;
  }

  /**
   * Opens the log for appending at `endLsn` (the end of the valid log as recovery found it):
   * the segment holding it is truncated there (dropping a torn tail) and later segments, which
   * can hold no valid record, are removed.
   *
   * `epoch` (a primary's, from replication.json) larger than the epoch of the log's last segment
   * **forks** the log (epochHistory.ts): the next record goes into a new segment stamped with it,
   * even when the current one has room, so the segment's start is where the new epoch's history
   * begins. Called before recovery's undo, so the new primary's own records (CLRs, its
   * checkpoint) are of the new epoch too: below the fork lies only what the old epoch wrote.
   * Epoch 1 (a store outside a cluster) never forks an unstamped log (`isFork`): it adopts it.
   */
  static async open(
    walDir: string,
    storeId: Uint8Array,
    segmentSize: number,
    endLsn: number,
    epoch = 0,
    /**
     * The epoch and R at `endLsn` when the caller has them (recovery, from the segment it
     * scanned): saves reading the segment again; `zerosAfter` when its scan found nothing but
     * zeros after `endLsn` (no torn tail): saves looking for a torn tail to zero.
     */
    known?: SegmentPosition & { zerosAfter?: boolean },
  ): Promise<WalWriter> {
    const segStart = segmentStartOf(endLsn, segmentSize);
    for (const start of await listSegments(walDir)) {
      if (start > segStart) await unlink(segmentPath(walDir, start));
    }
    // Segments a crash left half made, before their rename.
    for (const name of await readdir(walDir)) if (name.endsWith('.wal.tmp')) await unlink(path.join(walDir, name));
    const file = segmentPath(walDir, segStart);
    // R at the end of the log, from its segment's header and records (recovery checked them).
    const at = known ?? (await rollingAt(walDir, storeId, segmentSize, endLsn));
    let handle: FileHandle;
    if (endLsn - segStart < SEGMENT_HEADER_SIZE) {
      // The log ends at a segment boundary, so this segment holds no record; a crash while it
      // was being created may have left it without a header. Start it afresh.
      handle = await WalWriter.createSegment(walDir, storeId, segStart, segmentSize, at);
    } else {
      try {
        handle = await open(file, 'r+');
        if (!(await endRecordsAt(handle, file, endLsn - segStart, segmentSize, known?.zerosAfter === true))) {
          handle = await madeFullSize(walDir, file, handle, endLsn - segStart, segmentSize);
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        handle = await WalWriter.createSegment(walDir, storeId, segStart, segmentSize, at);
      }
    }
    await handle.datasync();
    // The epoch of the segment the log ends in: its header's (R's segment may be the one before,
    // when this one holds no record yet, e.g. a fork a crash left empty).
    const tailEpoch = (await segmentEpoch(walDir, segStart)) ?? at.epoch;
    let start = segStart;
    let next = endLsn;
    let segEpoch = tailEpoch;
    if (isFork(tailEpoch, epoch)) {
      segEpoch = epoch;
      await handle.close();
      // A segment holding records of the old epoch stays theirs: the new epoch starts the next
      // one. A segment with no record yet is made afresh with the new epoch in its header.
      if (endLsn - segStart > SEGMENT_HEADER_SIZE) start = segStart + segmentSize;
      handle = await WalWriter.createSegment(walDir, storeId, start, segmentSize, { epoch, rolling: at.rolling });
      next = start + SEGMENT_HEADER_SIZE;
    }
    // After the fork's segment is durable (the file follows the log, never leads it).
    await syncEpochFile(walDir);
    // Every segment it writes is FULL_SIZE: made so (createSegment), or remade so (madeFullSize).
    return new WalWriter(walDir, storeId, segmentSize, handle, start, next, { epoch: Math.max(tailEpoch, epoch), rolling: at.rolling }, segEpoch);
  }

  /**
   * Creates a FULL_SIZE segment: its header (with the epoch and R at its start), then zeros to
   * `segmentSize` (a sparse file), made aside and renamed into place, durably; so no crash leaves
   * a segment file shorter than its header says.
   */
  static createSegment(walDir: string, storeId: Uint8Array, start: number, segmentSize: number, at: SegmentPosition): Promise<FileHandle> {
    return placeWhole(walDir, segmentPath(walDir, start), encodeSegmentHeader(storeId, start, segmentSize, at, SEG_FULL_SIZE), segmentSize);
  }

  /** Appends a record to the in-memory tail and returns its LSN. Not durable until `flush`. */
  append(fields: RecordFields): { lsn: number; end: number } {
    if (this.broken) throw this.broken;
    const size = encodedSize(fields);
    if (size > this.segmentSize - SEGMENT_HEADER_SIZE) {
      throw raError('RA_ERR_WAL_RECORD_TOO_LARGE', `WAL record of ${size} bytes does not fit a ${this.segmentSize}-byte segment`);
    }
    let lsn = this.nextLsn;
    const start = segmentStartOf(lsn, this.segmentSize);
    // The log may end exactly at a segment boundary: the next record goes after the new
    // segment's header, not over it.
    if (lsn - start < SEGMENT_HEADER_SIZE) lsn = start + SEGMENT_HEADER_SIZE;
    else if (lsn - start + size > this.segmentSize) lsn = start + this.segmentSize + SEGMENT_HEADER_SIZE;
    const buf = Buffer.alloc(size);
    encodeRecord(buf, lsn, fields);
    this.pending.push({ lsn, buf, rollingBefore: this.rolling });
    this.rolling = roll(this.rolling, buf.readBigUInt64LE(size - 8));
    this.nextLsn = lsn + size;
    return { lsn, end: this.nextLsn };
  }

  /**
   * When the segment being written was made FULL_SIZE and its file has become shorter (cut, by
   * something else than this writer: walSegments.ts), moves the end of the log to the next
   * segment, so that the next record (a checkpoint's) starts a whole file and the cut one is
   * sealed below the new redo point: a crash then no longer needs it whole. Returns whether it
   * did. A checkpoint calls it first (the WAL scrub's checkpoint-past-damage asks for one).
   */
  async sealIfCut(): Promise<boolean> {
    if (this.broken) return false;
    const handle = this.handle;
    const size = await handle.stat().then((st) => st.size, () => this.segmentSize);
    const next = this.segStart + this.segmentSize;
    if (size >= this.segmentSize || handle !== this.handle || this.nextLsn >= next) return false;
    this.nextLsn = next; // append() puts the next record after the next segment's header
    return true;
  }

  /** Resolves once every record below `upto` (default: all appended so far) is durable. */
  flush(upto = this.nextLsn): Promise<void> {
    if (this.broken) return Promise.reject(this.broken);
    // Nothing appended waits: below the end (which sealIfCut may move past the last record) all is durable.
    if (upto <= this.flushedLsn || (this.pending.length === 0 && !this.flushing)) return Promise.resolve();
    const p = new Promise<void>((resolve, reject) => this.waiters.push({ upto, resolve, reject }));
    if (!this.flushing) void this.flushLoop();
    return p;
  }

  async close(): Promise<void> {
    if (!this.broken) await this.flush();
    await this.handle.close();
  }

  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.pending.length > 0) {
        // One turn of the event loop first: committers woken by the last round append their
        // next records now, and ride this round instead of waiting for the one after.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.pending;
        this.pending = [];
        await this.writeBatch(batch);
        faultPoint('wal-before-sync');
        await this.handle.datasync();
        const last = batch[batch.length - 1]!;
        this.flushedLsn = last.lsn + last.buf.byteLength;
        this.flushedRolling = this.pending.length > 0 ? this.pending[0]!.rollingBefore : this.rolling;
        this.stats.flushes++;
        this.stats.recordsWritten += batch.length;
        this.onFlushed?.(batch);
        this.wake();
      }
    } catch (err) {
      this.broken = raError('RA_ERR_WAL_WRITE', `WAL write failed; the store must be reopened (recovery runs then): ${(err as Error).message}`, { cause: err });
      for (const w of this.waiters.splice(0)) w.reject(this.broken);
    } finally {
      this.flushing = false;
    }
  }

  private wake(): void {
    const still: Waiter[] = [];
    const all = this.pending.length === 0;
    for (const w of this.waiters) {
      if (all || w.upto <= this.flushedLsn) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
  }

  /** Writes records in order, rolling to a new segment where they do; the old one is synced first. */
  private async writeBatch(batch: Pending[]): Promise<void> {
    let i = 0;
    while (i < batch.length) {
      const start = segmentStartOf(batch[i]!.lsn, this.segmentSize);
      if (start !== this.segStart) {
        // Everything before the new segment must be durable before anything in it is.
        await this.handle.datasync();
        await this.handle.close();
        this.handle = await WalWriter.createSegment(this.walDir, this.storeId, start, this.segmentSize, { epoch: this.epoch, rolling: batch[i]!.rollingBefore });
        this.segStart = start;
        // The first segment of a raised epoch (a log adopting its primary's): into epochs.json
        // before a checkpoint can retire its header (epochHistory.ts).
        if (this.epoch > this.segEpoch) await syncEpochFile(this.walDir);
        this.segEpoch = this.epoch;
      }
      let j = i;
      while (j < batch.length && j - i < kMaxIov && segmentStartOf(batch[j]!.lsn, this.segmentSize) === start) j++;
      const bufs = batch.slice(i, j).map((p) => p.buf);
      // Records of one run are contiguous: each starts where the previous one ended.
      await writevAll(this.handle, bufs, batch[i]!.lsn - start);
      for (const b of bufs) this.stats.bytesWritten += b.byteLength;
      i = j;
    }
  }
}

/**
 * Ends the records of the open segment `handle` at byte `at` (the end of the valid log): a
 * growing segment is truncated there; a FULL_SIZE one keeps its length, and the bytes between
 * `at` and the end of its content (a torn write's) become zeros, so that its records end at
 * `at` again. Fails on a FULL_SIZE segment of another length (recovery refuses it first).
 * Returns whether the segment is FULL_SIZE.
 */
export async function endRecordsAt(handle: FileHandle, file: string, at: number, segmentSize: number, zerosAfter = false): Promise<boolean> {
  const size = (await handle.stat()).size;
  const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
  const { bytesRead } = await handle.read(head, 0, SEGMENT_HEADER_SIZE, 0);
  if (bytesRead < SEGMENT_HEADER_SIZE || !isFullSize(head)) {
    await handle.truncate(at);
    return false;
  }
  const problem = segmentLengthProblem(head, size, segmentSize);
  if (problem) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${file} is ${problem}`, { details: { lsn: at } });
  // Bytes past the segment size hold no record (a torn write's, or junk): gone, as a growing segment's tail.
  if (size > segmentSize) await handle.truncate(segmentSize);
  // Recovery's scan found only zeros after `at` (no torn tail): nothing to zero, nothing to read.
  if (zerosAfter) return true;
  // The last nonzero byte past `at`, read in chunks through one small buffer: a fresh 16 MiB
  // buffer costs ~40 ms of page clearing on a VM, on every open.
  const chunk = Buffer.alloc(kZeroChunk);
  let last = at;
  for (let off = at; off < segmentSize; off += kZeroChunk) {
    const n = Math.min(kZeroChunk, segmentSize - off);
    const { bytesRead: got } = await handle.read(chunk, 0, n, off);
    const end = nonzeroEnd(chunk.subarray(0, got), 0);
    if (end > 0) last = off + end;
  }
  const zeros = Buffer.alloc(Math.min(kZeroChunk, last - at));
  for (let off = at; off < last; off += zeros.byteLength) await writeAll(handle, zeros.subarray(0, Math.min(zeros.byteLength, last - off)), off);
  return true;
}

const kZeroChunk = 1 << 16;

/**
 * The open growing segment `handle` (records up to byte `at`: a restore's or a base copy's copy,
 * an older writer's) remade as a FULL_SIZE file: its records copied into a file made aside at
 * full size with the flag set, renamed over it, durably — so a cut of the live segment is known
 * for one from now on, not taken for a torn tail.
 */
async function madeFullSize(walDir: string, file: string, handle: FileHandle, at: number, segmentSize: number): Promise<FileHandle> {
  const bytes = Buffer.alloc(at);
  for (let got = 0; got < at; ) {
    const { bytesRead } = await handle.read(bytes, got, at - got, got);
    if (bytesRead === 0) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${file} ends at ${got}, before the end of its records (${at})`, { details: { lsn: at } });
    got += bytesRead;
  }
  const out = await placeWhole(walDir, file, withFullSize(bytes), segmentSize);
  await handle.close();
  return out;
}

/**
 * Writes `bytes` (a header and records) into `<file>.tmp`, extends it to `segmentSize`, syncs it
 * and renames it over `file`, durably with its directory: a segment file is never seen shorter
 * than its size. Returns the open file.
 */
async function placeWhole(walDir: string, file: string, bytes: Uint8Array, segmentSize: number): Promise<FileHandle> {
  const tmp = `${file}.tmp`;
  const handle = await openPrivate(tmp, 'w+');
  try {
    await writeAll(handle, bytes, 0);
    await handle.truncate(segmentSize);
    await handle.datasync();
    await rename(tmp, file);
  } catch (err) {
    await handle.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await fsyncDir(walDir);
  return handle;
}

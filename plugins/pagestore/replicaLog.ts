/**
 * A replica's log: the primary's records, byte for byte, at their own LSNs in the replica's own
 * segments (FORMAT.md, "The log"), so that the replica's store is an ordinary store whose crash
 * recovery, restart and promotion need nothing replication-specific.
 *
 * `append` takes a run of the primary's consecutive records in one segment and checks all of it
 * (the run starts where the runs accepted before it end, every record's length, LSN and checksum,
 * the epoch) before it writes a byte: a refused run leaves the log as it was. A run is written at
 * its LSN's offset and fdatasynced before `append` resolves; the durable LSN is then its end.
 *
 * Group commit, as the primary's WAL writer: runs appended while a write and fdatasync are under
 * way (frames that arrived together, or while the disk was busy) wait for the next round, which
 * writes them all and syncs once. One fdatasync per frame would cap a replica at one frame per
 * sync latency, and a burst would queue behind it (the sync commit's and the async lag's cost).
 * A crash in the middle leaves a torn tail, which the next open cuts (recovery's WalWriter.open),
 * so the durable LSN after a restart is the end of the last complete run.
 *
 * The epoch (the primary's term, DESIGN.md) is kept in the store's `epoch` file, raised before
 * the first record of a newer epoch is written; records of an older epoch are refused. A newer
 * epoch's first run may start the next segment although the current one has room: the primary
 * forked its log there (epochHistory.ts); the replica's segment gets that epoch in its header.
 */
import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { openPrivate } from '../../core/privateFiles.js';
import { writeAll } from '../../core/writeAll.js';
import { die, faultFires } from './faults.js';
import { readU32 } from './format.js';
import type { StoreGeometry } from './storeFiles.js';
import { readControl } from './control.js';
import { RecordType, kRecLength, kRecType, validRecordAt } from './walRecord.js';
import { SEGMENT_HEADER_SIZE, listSegments, segmentPath, segmentStartOf, type SegmentPosition } from './walSegments.js';
import { UNSTAMPED_EPOCH, isFork, segmentEpoch, syncEpochFile } from './epochHistory.js';
import { foldRecords, rollingAt } from './walRolling.js';
import { WalWriter } from './walWriter.js';

export const EPOCH_FILE = 'epoch';

/** Why a run of records was refused (RA_ERR_REPLICA_REFUSED's `details.reason`). */
export type RefusalReason = 'gap' | 'overlap' | 'bad-record' | 'bad-range' | 'older-epoch' | 'broken';

function refuse(reason: RefusalReason, message: string, details: Record<string, unknown> = {}): Error {
  return raError('RA_ERR_REPLICA_REFUSED', `replica refused log records [${reason}]: ${message}; nothing was written`, { details: { reason, ...details } });
}

/** A run accepted by `append`, waiting for its round's write and fdatasync. */
interface QueuedRun {
  bytes: Uint8Array;
  startLsn: number;
  endLsn: number;
  epoch: number;
  /** R before and after the run. */
  rollingBefore: bigint;
  rollingAfter: bigint;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ReplicaLog {
  private handle: FileHandle | undefined;
  private handleStart = -1;
  private broken: Error | null = null;
  /** Runs accepted and not yet written (the next round). */
  private queue: QueuedRun[] = [];
  private flushing = false;
  /** The running round loop (close waits for it). */
  private loop: Promise<void> = Promise.resolve();
  /** End, R and epoch of the runs accepted so far (durable, or queued or in a round): what the next run must follow. */
  private acceptedEnd: number;
  private acceptedR: bigint;
  private acceptedEpoch: number;
  /** The tail epoch (below) as of the runs accepted so far. */
  private acceptedTailEpoch: number;
  /** End of what is written to the segment files (durable or not). */
  private writtenEnd: number;
  /** Rounds made durable (tests: runs that arrive together share one fdatasync). */
  readonly stats = { syncs: 0, runs: 0 };

  private constructor(
    private readonly dir: string,
    private readonly geometry: StoreGeometry,
    private durable: number,
    private currentEpoch: number,
    /** The log's rolling checksum R at `durable` (walRolling.ts). */
    private rollingR: bigint,
    /**
     * The epoch of the log's last segment: its header's (0: unstamped, or no segment), raised to
     * that of the records appended into it since (a primary that adopted an epoch writes it into
     * an unstamped segment; a jump at that epoch is then no fork).
     */
    private tailEpoch: number,
  ) {
    this.acceptedTailEpoch = tailEpoch;
    this.acceptedEnd = durable;
    this.acceptedR = rollingR;
    this.acceptedEpoch = currentEpoch;
    this.writtenEnd = durable;
  }

  /** The log of the store in `dir`, whose valid records end at `endLsn` (recovery found it so). */
  static async open(dir: string, geometry: StoreGeometry, endLsn: number): Promise<ReplicaLog> {
    const walDir = path.join(dir, 'wal');
    const { rolling } = await rollingAt(walDir, geometry.storeId, geometry.segmentSize, endLsn);
    const last = (await listSegments(walDir)).pop();
    const tailEpoch = last === undefined ? 0 : ((await segmentEpoch(walDir, last)) ?? 0);
    // The epoch file is a replica's; a store that was a primary stamped its epochs in its
    // segment headers only (its fork), so an old primary opened here as a replica took its
    // epoch file's — or none: 1 in its hello — and was refused as diverged past the first fork
    // after that epoch, however little of its own epoch it had written: every deposed primary was
    // rebuilt from a whole base copy. Its log's own tail epoch lets the new primary judge it by
    // the fork that matters (its records up to the new epoch's fork, R equal, stream on).
    return new ReplicaLog(dir, geometry, endLsn, Math.max(await readEpoch(dir), tailEpoch), rolling, tailEpoch);
  }

  /** The rolling checksum R of the log at its durable end: what the primary checks in `hello`. */
  get rolling(): bigint {
    return this.rollingR;
  }

  /** Every record below this is durable. */
  get durableLsn(): number {
    return this.durable;
  }

  get epoch(): number {
    return this.currentEpoch;
  }

  /**
   * Where a run that follows the log may start: the end of the runs accepted, or, when the next
   * record did not fit the current segment, the first record position of the next one.
   */
  private nextSegmentStart(): number {
    return segmentStartOf(this.acceptedEnd - 1, this.geometry.segmentSize) + this.geometry.segmentSize;
  }

  /** Checks a run (see the file's comment) without writing anything; throws the refusal. */
  check(bytes: Uint8Array, startLsn: number, endLsn: number, epoch: number): void {
    const { segmentSize } = this.geometry;
    if (this.broken) throw refuse('broken', `a write to this replica's log failed earlier (${this.broken.message}); reopen the replica`);
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw refuse('bad-range', `epoch ${epoch} is not an epoch`);
    if (epoch < this.acceptedEpoch) throw refuse('older-epoch', `the records are of epoch ${epoch}, older than this replica's ${this.acceptedEpoch}`, { epoch, replicaEpoch: this.acceptedEpoch });
    if (!Number.isSafeInteger(startLsn) || !Number.isSafeInteger(endLsn) || bytes.byteLength === 0 || endLsn - startLsn !== bytes.byteLength) {
      throw refuse('bad-range', `the run [${startLsn}, ${endLsn}) does not match its ${bytes.byteLength} bytes`, { startLsn, endLsn });
    }
    const seg = segmentStartOf(startLsn, segmentSize);
    if (startLsn - seg < SEGMENT_HEADER_SIZE || endLsn - seg > segmentSize) {
      throw refuse('bad-range', `the run [${startLsn}, ${endLsn}) is not within the records of one ${segmentSize}-byte segment`, { startLsn, endLsn });
    }
    const end = this.acceptedEnd;
    if (startLsn < end) {
      throw refuse('overlap', `the run starts at LSN ${startLsn}, inside this replica's log, which ends at ${end}`, { startLsn, durableLsn: end });
    }
    if (startLsn > end) {
      const next = this.nextSegmentStart();
      // The primary moves on to the next segment only when its next record does not fit this one,
      // when it forked the log at a newer epoch (epochHistory.ts: the fork starts a segment), or
      // when a checkpoint sealed a segment cut under its writer (WalWriter.sealIfCut: the
      // checkpoint's record starts the next one, as recovery's scan allows).
      const firstLength = bytes.byteLength >= 8 ? readU32(bytes, kRecLength) : 0;
      const fork = isFork(this.acceptedTailEpoch, epoch);
      const sealed = bytes.byteLength > kRecType && bytes[kRecType] === RecordType.Checkpoint && validRecordAt(bytes, 0, bytes.byteLength, startLsn) > 0;
      const jumped = startLsn === next + SEGMENT_HEADER_SIZE && (end + firstLength > next || fork || sealed);
      if (!jumped) throw refuse('gap', `the run starts at LSN ${startLsn}, but this replica's log ends at ${end}: records are missing`, { startLsn, durableLsn: end });
    }
    for (let at = 0; at < bytes.byteLength; ) {
      const size = validRecordAt(bytes, at, bytes.byteLength, startLsn + at);
      if (size === 0) {
        throw refuse('bad-record', `the record at LSN ${startLsn + at} is damaged (length, LSN or checksum) or cut short`, { lsn: startLsn + at });
      }
      at += size;
    }
  }

  /**
   * Checks a run (refused at once, nothing written), then queues it for the next round of writes
   * and fdatasync (see the file's comment); resolves once it is durable. Runs are written in the
   * order they were appended.
   */
  append(bytes: Uint8Array, startLsn: number, endLsn: number, epoch: number): Promise<void> {
    this.check(bytes, startLsn, endLsn, epoch);
    const rollingBefore = this.acceptedR;
    this.acceptedR = foldRecords(rollingBefore, bytes, 0, bytes.byteLength);
    this.acceptedEnd = endLsn;
    this.acceptedEpoch = Math.max(this.acceptedEpoch, epoch);
    this.acceptedTailEpoch = Math.max(this.acceptedTailEpoch, epoch);
    const done = new Promise<void>((resolve, reject) => this.queue.push({ bytes, startLsn, endLsn, epoch, rollingBefore, rollingAfter: this.acceptedR, resolve, reject }));
    if (!this.flushing) this.loop = this.flushLoop();
    return done;
  }

  /** Rounds: every run queued, written in order, then one fdatasync for all of them. */
  private async flushLoop(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        // One turn of the event loop first: frames already received are appended now and ride
        // this round instead of the next.
        await new Promise<void>((resolve) => setImmediate(resolve));
        const batch = this.queue;
        this.queue = [];
        try {
          for (const run of batch) await this.writeRun(run);
          await this.handle!.datasync();
        } catch (err) {
          // As the WAL writer: after a failed write or sync the kernel may have dropped what it
          // held, so nothing more is appended until a reopen has found the log's real end.
          this.broken = err as Error;
          const e = raError('RA_ERR_WAL_WRITE', `writing the replica's log failed; reopen the replica (recovery finds its durable end): ${(err as Error).message}`, { cause: err });
          for (const run of [...batch, ...this.queue.splice(0)]) run.reject(e);
          return;
        }
        const last = batch[batch.length - 1]!;
        this.durable = last.endLsn;
        this.rollingR = last.rollingAfter;
        this.stats.syncs++;
        this.stats.runs += batch.length;
        for (const run of batch) run.resolve();
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Writes one run at its LSN's offset (not synced), raising the epoch file first when the run's is newer. */
  private async writeRun(run: QueuedRun): Promise<void> {
    if (run.epoch > this.currentEpoch) {
      await writeEpoch(this.dir, run.epoch);
      this.currentEpoch = run.epoch;
    }
    const seg = segmentStartOf(run.startLsn, this.geometry.segmentSize);
    const h = await this.segmentHandle(seg, run.epoch, run.rollingBefore);
    const offset = run.startLsn - seg;
    if (faultFires('replica-append')) {
      // The crash harness's point: half the run written, nothing synced.
      await writeAll(h, run.bytes.subarray(0, run.bytes.byteLength >> 1), offset);
      die();
    }
    await writeAll(h, run.bytes, offset);
    this.writtenEnd = run.endLsn;
    this.tailEpoch = Math.max(this.tailEpoch, run.epoch);
  }

  /**
   * The open segment starting at `seg`, created (header first, synced with its directory) when
   * new; the segment before it is synced first (everything before a segment is durable before
   * anything in it, as the WAL writer does).
   */
  private async segmentHandle(seg: number, epoch: number, rolling: bigint): Promise<FileHandle> {
    if (this.handle && this.handleStart === seg) return this.handle;
    if (this.handle) {
      await this.handle.datasync();
      await this.handle.close();
    }
    this.handle = undefined;
    const file = segmentPath(path.join(this.dir, 'wal'), seg);
    if (seg === segmentStartOf(this.writtenEnd - 1, this.geometry.segmentSize)) {
      this.handle = await open(file, 'r+');
    } else {
      // A new segment's header holds the epoch of its first records and R where it starts, as
      // the primary's does: the replica's log stays byte-equal to the primary's, and its epoch
      // history (epochHistory.ts) the same, ready for its own promotion.
      const walDir = path.join(this.dir, 'wal');
      this.handle = await createSegment(walDir, this.geometry, seg, { epoch, rolling });
      const raised = epoch > this.tailEpoch;
      this.tailEpoch = epoch;
      if (raised) await syncEpochFile(walDir);
    }
    this.handleStart = seg;
    return this.handle;
  }

  /** Closes the log once the runs already appended are durable (or failed). */
  async close(): Promise<void> {
    await this.loop;
    await this.handle?.close();
    this.handle = undefined;
  }
}

/**
 * A new segment holding only its header, durable with its directory entry before any record
 * goes in, made at full size as the WAL writer makes it (WalWriter.createSegment): the header
 * is the one place a segment's identity is written, with the epoch and the rolling checksum at
 * its start, and the replica's log stays byte-equal to the primary's.
 */
function createSegment(walDir: string, g: StoreGeometry, start: number, pos: SegmentPosition): Promise<FileHandle> {
  return WalWriter.createSegment(walDir, g.storeId, start, g.segmentSize, pos);
}

/** The epoch the replica in `dir` has accepted (0 when none yet). */
export async function readEpoch(dir: string): Promise<number> {
  const file = path.join(dir, EPOCH_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let epoch: unknown;
  try {
    epoch = (JSON.parse(text) as { epoch?: unknown }).epoch;
  } catch {
    epoch = undefined;
  }
  if (typeof epoch !== 'number' || !Number.isSafeInteger(epoch) || epoch < 0) {
    // Guessing would let an older primary's records in: refuse.
    throw raError('RA_ERR_STORE_INVALID', `${file} is damaged (expected {"epoch": N})`);
  }
  return epoch;
}

/** Replaces the epoch file atomically and durably. */
export async function writeEpoch(dir: string, epoch: number): Promise<void> {
  const file = path.join(dir, EPOCH_FILE);
  const tmp = `${file}.tmp`;
  const h = await openPrivate(tmp, 'w');
  try {
    await writeAll(h, Buffer.from(JSON.stringify({ epoch }) + '\n'), 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, file);
  await fsyncDir(dir);
}

/**
 * A store laid out from the primary's own files (a snapshot and the WAL archive, segments as the
 * primary wrote them) takes its log's epoch as the replica's: the epoch of the last segment's
 * header (the newest history entry; unstamped: 1). `epochs.json` is brought up to the headers
 * first, so the history a promotion of this replica would read is the primary's.
 *
 * `lastRetired`: the log's last segment is one the primary retired (archived), so the primary
 * went on in the next segment. That one is started here holding only its header (the epoch of
 * the last segment, R at the end of its records), as the primary's writer started it: the
 * replica's log then ends at the next segment's first record position, where the primary's next
 * record is, and the primary checks its `hello` there from its own copy of that segment's header
 * even once it has retired the archived one (walRolling.ts). Were the primary's log forked at
 * exactly that boundary, its header would carry the newer epoch and this one would not.
 */
export async function adoptLog(dir: string, options: { lastRetired?: boolean } = {}): Promise<{ epoch: number }> {
  const walDir = path.join(dir, 'wal');
  if (options.lastRetired) {
    const control = await readControl(dir);
    const { storeId, segmentSize } = control;
    const last = (await listSegments(walDir)).pop();
    if (last === undefined) throw raError('RA_ERR_STORE_INVALID', `${walDir} holds no WAL segment`);
    const next = last + segmentSize;
    // At a segment boundary, R is folded over every record of the segment before it.
    const { rolling } = await rollingAt(walDir, storeId, segmentSize, next);
    const epoch = (await segmentEpoch(walDir, last)) ?? 0;
    await (await createSegment(walDir, control, next, { epoch, rolling })).close();
  }
  const history = await syncEpochFile(walDir);
  const epoch = Math.max(history[history.length - 1]?.epoch ?? 0, UNSTAMPED_EPOCH);
  await writeEpoch(dir, epoch);
  return { epoch };
}

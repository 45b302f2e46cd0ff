/**
 * The durable half of a checkpoint, shared by the running store and by recovery:
 *
 *   1. the WAL is flushed (no page may reach disk before the log records that explain it);
 *   2. the page images are sealed (checksummed) and written, then the data file fdatasync'd;
 *   3. a checkpoint record (redo LSN, next transaction id, active transactions, dirty pages)
 *      is appended and flushed;
 *   4. the control file is switched to it atomically;
 *   5. WAL segments wholly below what recovery could still need are handed to the archiver
 *      (if any) and removed.
 *
 * A crash anywhere before step 4 leaves the previous checkpoint in force, whose redo range
 * holds a full page image for every page written in step 2: torn page writes are repaired.
 */
import { unlink, type FileHandle } from 'node:fs/promises';
import { writeControl } from './control.js';
import { die, faultFires, faultPoint } from './faults.js';
import { sealPage } from './format.js';
import { walDirOf, type StoreGeometry } from './storeFiles.js';
import { RecordType } from './walRecord.js';
import { listSegments, segmentPath } from './walSegments.js';
import type { WalWriter } from './walWriter.js';
import { writeAll, writevAll } from '../../core/writeAll.js';
import { raError } from '../../core/errors.js';

/** A WAL segment about to be recycled, and who archives it: the face's types (core/contracts/PageEngine.ts). */
export type { RetiredSegment, LogArchiver as WalArchiver } from '../../core/contracts/PageEngine.js';
import type { LogArchiver as WalArchiver } from '../../core/contracts/PageEngine.js';

/** How a store's checkpoints retire WAL: through `archiver`, or, when `required` and none is given, not at all. */
export interface ArchivePolicy {
  readonly archiver?: WalArchiver;
  /** The store remembers an archive (archiveLink.ts): a segment nobody archived is kept. */
  readonly required: boolean;
  /** Where the remembered archive is, for messages. */
  readonly target?: string | null;
}

/** An active transaction as a checkpoint records it: [txId, firstLsn, lastLsn]. */
export type AttEntry = [number, number, number];

export interface CheckpointBody {
  redoLsn: number;
  nextTxId: number;
  att: AttEntry[];
  /** Pages dirty when the record was written: [pageId, recLsn]. */
  dpt: Array<[number, number]>;
}

export interface PageImage {
  readonly pageId: number;
  readonly image: Uint8Array;
}

/** Seals and writes page images (runs of adjacent pages in one writev), then fdatasyncs. */
export async function writePages(data: FileHandle, pageSize: number, pages: readonly PageImage[]): Promise<void> {
  const sorted = [...pages].sort((a, b) => a.pageId - b.pageId);
  let run: Uint8Array[] = [];
  let runStart = 0;
  const flushRun = async () => {
    for (let i = 0; i < run.length; i += kMaxIov) await writevAll(data, run.slice(i, i + kMaxIov), (runStart + i) * pageSize);
    run = [];
  };
  for (const { pageId, image } of sorted) {
    sealPage(image);
    if (faultFires('page-write-torn')) {
      // Half a page reaches the disk, as when power fails mid-write.
      await flushRun();
      await writeAll(data, image.subarray(0, pageSize / 2), pageId * pageSize);
      await data.datasync();
      die();
    }
    if (run.length > 0 && pageId !== runStart + run.length) await flushRun();
    if (run.length === 0) runStart = pageId;
    run.push(image.byteLength === pageSize ? image : image.subarray(0, pageSize));
  }
  await flushRun();
  await data.datasync();
}

/** Largest number of buffers handed to one writev. */
const kMaxIov = 512;

export interface CheckpointOutcome {
  /** LSN of the checkpoint record. */
  lsn: number;
  /** WAL segments removed. */
  recycled: number;
  /** Set when the archiver failed; the segment and those after it were kept. */
  archiveError?: Error;
}

/** Steps 3–5. */
export async function completeCheckpoint(
  dir: string,
  wal: WalWriter,
  geometry: StoreGeometry,
  body: CheckpointBody,
  archive: ArchivePolicy = { required: false },
  /** Keep the segments from this LSN on too (replicas still need them), or undefined. */
  retainFrom?: number,
  /**
   * Step 2 still under way (recovery: its pages' fdatasync), or undefined when it is done. The
   * checkpoint record's flush overlaps it, and the control file is switched only once both are
   * durable: a checkpoint record the control file does not point at is one recovery skips.
   */
  pagesDurable?: Promise<void>,
): Promise<CheckpointOutcome> {
  const { lsn } = wal.append({ type: RecordType.Checkpoint, txId: 0, prevLsn: 0, json: Buffer.from(JSON.stringify(body)) });
  const settled = await Promise.allSettled([wal.flush(), pagesDurable]);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  faultPoint('checkpoint-before-control');
  await writeControl(dir, { checkpointLsn: lsn, redoLsn: body.redoLsn, nextTxId: body.nextTxId, ...geometry });
  const keepFrom = Math.min(body.redoLsn, ...body.att.map((a) => a[1]), retainFrom ?? Infinity);
  return { lsn, ...(await recycleSegments(dir, geometry.segmentSize, keepFrom, archive)) };
}

/**
 * Step 5. Without an archiver the segments are unlinked all at once (on libuv's threads): one
 * after another cost a checkpoint after a long log (recovery's: 64 segments per GiB) a disk
 * round trip each. Any subset of them may be gone after a crash, which is safe: they lie wholly
 * below what the durable checkpoint needs (keepFrom), and nothing reads the log below it as a
 * sequence (recovery and the readers start at the checkpoint's segment, and tolerate a segment
 * gone under them). With an archiver they are archived a few at a time and unlinked in order,
 * each only once archived, and the first failure keeps it and those after it.
 */
async function recycleSegments(dir: string, segmentSize: number, keepFrom: number, { archiver, required, target }: ArchivePolicy): Promise<Omit<CheckpointOutcome, 'lsn'>> {
  const walDir = walDirOf(dir);
  const retired = (await listSegments(walDir)).filter((start) => start + segmentSize <= keepFrom);
  if (retired.length === 0) return { recycled: 0 };
  if (!archiver && required) {
    return {
      recycled: 0,
      archiveError: raError('RA_ERR_WAL_NOT_ARCHIVED', `${dir} archives its WAL to ${target ?? 'an archive'}, but no archiver was given: WAL segments from ${segmentPath(walDir, retired[0]!)} on are kept for the next owner that archives`),
    };
  }
  if (!archiver) {
    const settled = await Promise.allSettled(retired.map((start) => unlink(segmentPath(walDir, start))));
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return { recycled: retired.length };
  }
  // Archived kArchiveWidth at a time (one after another, 80 segments of 64 KiB took 846 of a
  // crash recovery's 867 ms before the agent could restart the application); unlinked in order,
  // up to the first that failed. Those after it may be archived already: they stay live too, and
  // the next checkpoint archives them again (archiving replaces a copy).
  let recycled = 0;
  for (let i = 0; i < retired.length; i += kArchiveWidth) {
    const batch = retired.slice(i, i + kArchiveWidth);
    const settled = await Promise.allSettled(batch.map((start) => archiver({ file: segmentPath(walDir, start), startLsn: start, endLsn: start + segmentSize })));
    for (let j = 0; j < batch.length; j++) {
      const r = settled[j]!;
      if (r.status === 'rejected') return { recycled, archiveError: r.reason as Error };
      await unlink(segmentPath(walDir, batch[j]!));
      recycled++;
    }
  }
  return { recycled };
}

/** Segments archived at once by a checkpoint. */
const kArchiveWidth = 8;

/**
 * A replica's continuous apply: redo of a range of its log onto its pages with the crash
 * recovery's machinery (redoApply.ts: the native kernels, partitioned by page over the worker
 * pool as recovery's two-pass redo does), then the pages synced.
 *
 * Why not the streaming redo (redoStream.ts, the SPSC rings): it reads from a start LSN to the
 * end of the log and analyses as it goes; apply needs a bounded range and no analysis, and the
 * stream offers neither without being restructured. The range is read one segment at a time, so
 * memory stays bounded by a segment whatever the lag.
 *
 * A restartpoint. When the range passes one of the primary's checkpoint records, the pages it
 * applied are synced and then the store's control file is switched to that checkpoint (its LSN,
 * its redo LSN): every change below the redo LSN is in the data file, since everything below the
 * record itself is. A restart, or a promotion, is then ordinary crash recovery from there, and
 * the segments it needs (from min(redo LSN, first LSN of each active transaction)) are kept.
 */
import { faultPoint } from './faults.js';
import type { Control } from './control.js';
import { writeControl } from './control.js';
import type { CheckpointBody } from './checkpoint.js';
import { readU32 } from './format.js';
import { applyRedo, type RedoInput, type RedoResult } from './redoApply.js';
import { parallelRedo } from './redoPaths.js';
import { raError } from '../../core/errors.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { RecordType, decodeRecord, kRecPageId, kRecType, validRecordAt } from './walRecord.js';
import { readSegmentInto } from './walScan.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength, segmentStartOf } from './walSegments.js';

/** Below this many records, handing work to threads costs more than it saves (as recovery's). */
const kMinParallelRecords = 4096;

export interface ApplyRangeInput {
  readonly dir: string;
  readonly walDir: string;
  readonly dataFile: string;
  readonly control: Control;
  /** Where the records not yet applied start (a record's LSN or the end of a segment's records). */
  readonly from: number;
  /** Records whose LSN is below this are applied; at most the durable LSN. */
  readonly upto: number;
  /** The end of the durable log. */
  readonly durable: number;
  readonly pool?: WorkerPool;
  /** Below this many page records in a segment, redo runs on this thread (default 4096, as recovery's). */
  readonly parallelFrom?: number;
  /** Syncs the data file (the caller's handle). */
  readonly syncData: () => Promise<void>;
}

export interface ApplyRangeOutcome {
  /** The end of the last record applied (or `from` when none). */
  readonly appliedLsn: number;
  readonly redo: RedoResult;
  /** The most threads one segment's redo ran on. */
  readonly redoWorkers: number;
  /** The control file written at a restartpoint, or null when the range held no checkpoint. */
  readonly control: Control | null;
}

export async function applyRange(i: ApplyRangeInput): Promise<ApplyRangeOutcome> {
  const { segmentSize, pageSize, pageCount } = i.control;
  const total: RedoResult = { applied: 0, skipped: 0, pagesWritten: 0, corrupt: [], outOfRange: [] };
  let lastCheckpoint: { lsn: number; body: CheckpointBody } | null = null;
  let pos = i.from;
  const upto = Math.min(i.upto, i.durable);
  const lastSeg = segmentStartOf(i.durable - 1, segmentSize);
  let segments = 0;
  let redoWorkers = 1;
  while (pos < upto) {
    const seg = segmentStartOf(pos, segmentSize);
    // The segment's records: up to the durable LSN in the newest segment, all of an older one
    // (its records end where the next did not fit).
    const isLast = seg === lastSeg;
    const wal = new Uint8Array(new SharedArrayBuffer(isLast ? i.durable - seg : segmentSize));
    // A segment made at full size: its records end where its zeros begin.
    const read = segmentContentLength(wal.subarray(0, await readSegmentInto(i.walDir, seg, wal, 0, wal.byteLength)));
    let at = Math.max(pos - seg, SEGMENT_HEADER_SIZE);
    const positions = new Uint32Array(new SharedArrayBuffer(4 * Math.max(1, Math.ceil((read - at) / 64))));
    const pageIds = new Uint32Array(new SharedArrayBuffer(positions.byteLength));
    let count = 0;
    while (at < read && seg + at < upto) {
      const size = validRecordAt(wal, at, read, seg + at);
      // Every record below the durable LSN was checked when it was appended (or by recovery).
      if (size === 0) throw raError('RA_ERR_WAL_CORRUPT', `the replica's log record at LSN ${seg + at} is damaged`, { details: { lsn: seg + at } });
      const type = wal[at + kRecType] as RecordType;
      if (type === RecordType.Update || type === RecordType.Clr) {
        positions[count] = at;
        pageIds[count++] = readU32(wal, at + kRecPageId);
      } else if (type === RecordType.Checkpoint) {
        const rec = decodeRecord(wal, at, pageSize);
        lastCheckpoint = { lsn: rec.lsn, body: JSON.parse(Buffer.from(rec.json!).toString('utf8')) as CheckpointBody };
      }
      at += size;
    }
    if (count > 0) {
      const input: RedoInput = { wal, positions, pageIds, count, dataFile: i.dataFile, pageSize, pageCount };
      const parallel = i.pool !== undefined && i.pool.threads > 1 && count >= (i.parallelFrom ?? kMinParallelRecords);
      const redo = parallel ? await parallelRedo(i.pool!, input, i.pool!.threads) : applyRedo(input);
      redoWorkers = Math.max(redoWorkers, parallel ? i.pool!.threads : 1);
      if (redo.outOfRange.length > 0) {
        const first = redo.outOfRange[0]!;
        throw raError('RA_ERR_WAL_CORRUPT', `log record at LSN ${first.lsn} changes page ${first.pageId} or a byte range outside this store's ${pageCount} pages`, { details: { lsn: first.lsn } });
      }
      if (redo.corrupt.length > 0) {
        throw raError('RA_ERR_PAGE_CORRUPT', `apply cannot restore ${redo.corrupt.length} page(s) that fail verification and have no full image in the log: ${redo.corrupt.slice(0, 10).map((c) => `page ${c.pageId} (${c.reason})`).join(', ')}`, {
          details: { pages: redo.corrupt },
        });
      }
      total.applied += redo.applied;
      total.skipped += redo.skipped;
      total.pagesWritten += redo.pagesWritten;
    }
    if (++segments === 1) faultPoint('replica-apply');
    if (at < read || isLast) {
      // Stopped at `upto`, or at the end of the durable log.
      pos = seg + at;
      break;
    }
    // Past this segment's records: the next record is the next segment's first.
    pos = seg + segmentSize + SEGMENT_HEADER_SIZE;
  }
  await i.syncData();
  let control: Control | null = null;
  if (lastCheckpoint) {
    faultPoint('replica-restartpoint');
    const { lsn, body } = lastCheckpoint;
    control = { ...i.control, checkpointLsn: lsn, redoLsn: body.redoLsn, nextTxId: Math.max(i.control.nextTxId, body.nextTxId) };
    await writeControl(i.dir, control);
  }
  return { appliedLsn: Math.max(pos, i.from), redo: total, redoWorkers, control };
}

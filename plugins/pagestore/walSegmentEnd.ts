/**
 * Where a segment's records may end when the log goes on in the next segment: the writer's rules,
 * applied alike by recovery's scan (walScan.ts `scanSegments`) and by the replication sender's
 * catch-up from the segment files (walCatchUp.ts `checkSegmentTail`), so that what one
 * accepts the other does.
 *
 * The writer leaves a segment for the next one when the next record does not fit the rest of it;
 * when the log forks at a newer epoch (epochHistory.ts: the fork starts a segment); and when the
 * record that starts the next segment is one a checkpoint or recovery wrote there on purpose: the
 * checkpoint that seals a live segment cut under its writer (WalWriter.sealIfCut), and recovery's
 * CLR, abort or checkpoint in stores recovered before recovery cut a torn first record of a
 * segment together with its segment. Anything else that stops a segment's records short is damage.
 */
import { readU64 } from './format.js';
import { RECORD_MIN_SIZE, RecordType, validRecordAt } from './walRecord.js';
import { SEGMENT_HEADER_SIZE } from './walSegments.js';
import { isFork } from './epochHistory.js';

/** A segment whose records end before its end, and the first record of the next segment. */
export interface SegmentEnd {
  /** Offset in its segment where its valid records end. */
  end: number;
  /** Its epoch (header). */
  epoch: number;
  /** The next segment's epoch (header). */
  nextEpoch: number;
  /** Bytes of the next segment's first record (it is valid; 0 when it is not). */
  first: number;
  /** The type of that record. */
  firstType: number;
}

/** Whether the next segment starts a newer epoch: a fork starts a segment however much room is left. */
function forks(e: SegmentEnd): boolean {
  return isFork(e.epoch, e.nextEpoch);
}

/**
 * Whether the bytes after the records of a segment made at full size (ending at `e.end`, with
 * bytes that are not a record after them) are its unused tail: its next record did not fit after
 * them, or the next segment forks. A flipped bit there is then no damage: a growing segment never
 * had those bytes.
 */
export function leftForNext(e: SegmentEnd, segmentSize: number): boolean {
  return e.first > 0 && (e.end + e.first > segmentSize || forks(e));
}

/** Types of a record that may start a segment although the one before had room (module comment). */
function startsSegmentOnPurpose(type: number): boolean {
  return type === RecordType.Checkpoint || type === RecordType.Clr || type === RecordType.Abort;
}

/**
 * Why the log cannot go on at the next segment's first record from a segment whose records end
 * at `e.end` with nothing after them, or null when the writer leaves segments so (module comment).
 * A segment with no record at all is never followed by one with records (no record is larger than
 * a segment).
 */
export function segmentEndProblem(e: SegmentEnd, segmentSize: number): string | null {
  if (e.end <= SEGMENT_HEADER_SIZE) return 'the segment has no valid record, and the log goes on after it';
  if (e.end + e.first > segmentSize || forks(e) || startsSegmentOnPurpose(e.firstType)) return null;
  return `the next segment's first record (${e.first} bytes) would have fitted after it`;
}

/**
 * The LSN of a valid record in bytes [from, to) of `bytes`, whose position `at` is byte 0 of the
 * segment starting at LSN `start` (`at` may lie before the buffer: a buffer holding a segment's
 * tail), or null. Records start at 8-byte boundaries of the segment (their LSN), which are not
 * the buffer's when `at` is not a multiple of 8.
 */
export function nextValidRecord(bytes: Uint8Array, at: number, start: number, from: number, to: number): number | null {
  for (let p = at + ((from - at + 7) & ~7); p + RECORD_MIN_SIZE <= to; p += 8) {
    const lsn = start + (p - at);
    // Cheap test first: a record carries its own LSN.
    if (readU64(bytes, p + 8) === lsn && validRecordAt(bytes, p, to, lsn) > 0) return lsn;
  }
  return null;
}

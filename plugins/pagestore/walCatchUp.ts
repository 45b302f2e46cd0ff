/**
 * The primary's catch-up reads of its own WAL files (replicationSender.ts `catchUp`): whole valid
 * records of a segment from an LSN, and the check that a segment's records really end where the
 * catch-up leaves it for the next segment (recovery's end-of-segment rules, walSegmentEnd.ts, and
 * the rolling checksum R the next segment's header carries).
 */
import { open } from 'node:fs/promises';
import { raError } from '../../core/errors.js';
import { readU32 } from './format.js';
import { RECORD_MIN_SIZE, kRecLength, kRecType, validRecordAt } from './walRecord.js';
import { readRecordFromDisk } from './walScan.js';
import { leftForNext, nextValidRecord, segmentEndProblem } from './walSegmentEnd.js';
import { rollingAt } from './walRolling.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, isFullSize, nonzeroEnd, readSegmentHeader, segmentPath, segmentPosition } from './walSegments.js';

/** Most bytes read from a segment file per catch-up frame (a longer record is read whole); also the live tail's frame size. */
export const kCatchUpChunk = 4 * 1024 * 1024;

/**
 * Segment `start`'s valid records end at `end`, and the log goes on in the next segment. The
 * rest of the segment is left for the next one only by the rules recovery's scan applies
 * (walSegmentEnd.ts): after the records, zeros (or the file's end) and a next segment the
 * writer could have jumped to — its first record did not fit, a fork, or a checkpoint that
 * sealed this segment cut under its writer (WalWriter.sealIfCut) —, or, in a segment made at
 * full size, bytes that are no record where the next record did not fit or forks. A valid
 * record after the bytes that stop the records is damage whatever follows (recovery: "a bad
 * record followed by a valid one"). And since a segment sealed after a cut is shorter than its
 * size by design, its length cannot show a cut that took records with it at a record boundary
 * (recovery never reads such a segment again: it lies below the sealing checkpoint's redo
 * point): the next segment's header holds R before its first record, which must be R folded
 * over this segment's records up to `end` (`folded`, R at `end` as the catch-up folded it, or
 * null: read from the segment). Otherwise RA_ERR_WAL_CORRUPT, nothing past `end` sent. Returns
 * R at the next segment's first record.
 */
export async function checkSegmentTail(walDir: string, storeId: Uint8Array, seg: number, start: number, end: number, folded: bigint | null): Promise<bigint> {
  const damaged = (why: string) => raError('RA_ERR_WAL_CORRUPT', `the record at LSN ${end} of WAL segment ${segmentPath(walDir, start)} is damaged: ${why}; catch-up stops there`, { details: { lsn: end } });
  const off = end - start;
  if (off <= SEGMENT_HEADER_SIZE) throw damaged('the segment has no valid record, and the log goes on after it');
  const next = start + seg;
  const first = await readRecordFromDisk(walDir, storeId, seg, next + SEGMENT_HEADER_SIZE).catch(() => null);
  if (first === null) throw damaged('the next segment has no valid first record either');
  // Its header was checked with the record: it is there, and this store's.
  const told = segmentPosition((await readSegmentHeader(walDir, next))!);
  const { header, tail } = await segmentTail(walDir, seg, start, off);
  const headerProblem = checkSegmentHeader(header, storeId, start, seg);
  if (headerProblem) throw damaged(`its header: ${headerProblem}`);
  const at = { end: off, epoch: segmentPosition(header).epoch, nextEpoch: told.epoch, first: readU32(first, kRecLength), firstType: first[kRecType]! };
  // The bytes after the records that can hold any: a FULL_SIZE segment's zeros left off.
  const content = isFullSize(header) ? Math.ceil(nonzeroEnd(tail, 0) / 8) * 8 : tail.byteLength;
  if (content > 0) {
    const after = nextValidRecord(tail, -off, start, 8, content);
    if (after !== null) throw damaged(`valid records follow (at LSN ${after})`);
    if (!isFullSize(header) || !leftForNext(at, seg)) throw damaged(content < RECORD_MIN_SIZE || tail.readUInt32LE(kRecLength) > content ? 'record cut short' : 'checksum, length or LSN mismatch');
  } else {
    const problem = segmentEndProblem(at, seg);
    if (problem !== null) throw damaged(problem);
  }
  // A segment of a writer before R (zeros: "R folded from 0 at this segment") tells nothing.
  if (told.rolling === 0n && told.epoch === 0) return told.rolling;
  const r = folded ?? (await rollingAt(walDir, storeId, seg, end)).rolling;
  if (r !== told.rolling) throw damaged(`records are missing: the next segment's header says the log's rolling checksum before its first record is ${told.rolling.toString(16)}, but this segment's records up to LSN ${end} fold to ${r.toString(16)}`);
  return r;
}

/** Segment `start`'s header, and its bytes from offset `off` to its end (at most the segment size). */
async function segmentTail(walDir: string, seg: number, start: number, off: number): Promise<{ header: Buffer; tail: Buffer }> {
  const fh = await open(segmentPath(walDir, start), 'r');
  try {
    const size = Math.min((await fh.stat()).size, seg);
    const header = Buffer.alloc(SEGMENT_HEADER_SIZE);
    await fh.read(header, 0, SEGMENT_HEADER_SIZE, 0);
    const tail = Buffer.alloc(Math.max(0, size - off));
    let got = 0;
    while (got < tail.byteLength) {
      const { bytesRead } = await fh.read(tail, got, tail.byteLength - got, off + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return { header, tail: tail.subarray(0, got) };
  } finally {
    await fh.close();
  }
}

/** The whole valid records of segment `start` from `from`, below `limit` (at most about kCatchUpChunk bytes, at least one record). */
export async function readRecords(walDir: string, start: number, from: number, limit: number): Promise<Buffer> {
  const fh = await open(segmentPath(walDir, start), 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    throw raError('RA_ERR_REPL_PROTOCOL', `the replica is too far behind: this primary no longer has the log at ${from} (segment retired); rebuild it from a snapshot and the archive`);
  });
  try {
    let want = Math.min(limit - from, kCatchUpChunk);
    for (;;) {
      const buf = Buffer.alloc(want);
      const { bytesRead } = await fh.read(buf, 0, want, from - start);
      let p = 0;
      for (let n; p < bytesRead && (n = validRecordAt(buf, p, bytesRead, from + p)) > 0; ) p += n;
      if (p > 0 || bytesRead < 8) return buf.subarray(0, p);
      // One record longer than the chunk: read exactly it.
      const total = buf.readUInt32LE(0);
      if (total <= want || total > limit - from) return buf.subarray(0, 0);
      want = total;
    }
  } finally {
    await fh.close();
  }
}


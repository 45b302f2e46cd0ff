/**
 * Reading the WAL for recovery: every segment from a start LSN to the end of the log, read into
 * one SharedArrayBuffer (so redo workers can apply records straight from it, never copied), and
 * an index of the valid records in it.
 *
 * Where the log ends: at the first record that is torn (cut short) or fails its checksum or
 * LSN check, provided no valid record follows it; that is what a crash in the middle of a write
 * leaves. A bad record followed by a valid one is corruption: the scan fails with
 * RA_ERR_WAL_CORRUPT naming the LSN, and nothing is applied or truncated.
 */
import { open, stat } from 'node:fs/promises';
import { walScanRecords } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';
import { RECORD_MIN_SIZE, RecordType, kRecLength, kRecType, validRecordAt } from './walRecord.js';
import { readU64 } from './format.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, listSegments, segmentPath, segmentStartOf } from './walSegments.js';

export interface WalScan {
  /** The segments' bytes from the scan's first segment on, on a SharedArrayBuffer. */
  readonly buf: Uint8Array<SharedArrayBuffer>;
  /** Byte positions in `buf` of the valid records from `fromLsn`, in LSN order. */
  readonly positions: Uint32Array;
  readonly count: number;
  /** The end of the valid log: where the next record goes. */
  readonly endLsn: number;
  /** Bytes of WAL read from disk. */
  readonly bytesRead: number;
  /** Set when the log ended at a torn or unfinished record (a crash mid-write). */
  readonly tornAt?: { lsn: number; reason: string };
  /** Maps an LSN inside the scanned range to its position in `buf`, or -1. */
  positionOf(lsn: number): number;
}

interface Region {
  start: number; // segment start LSN
  at: number; // position of the segment's byte 0 in buf
  length: number; // bytes of the segment file
}

export async function scanWal(walDir: string, storeId: Uint8Array, segmentSize: number, fromLsn: number): Promise<WalScan> {
  const firstSeg = segmentStartOf(fromLsn, segmentSize);
  const all = (await listSegments(walDir)).filter((s) => s >= firstSeg);
  if (all[0] !== firstSeg) {
    throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, firstSeg)} holding the redo start LSN ${fromLsn} is missing`, { details: { lsn: fromLsn } });
  }
  const regions: Region[] = [];
  let total = 0;
  for (const start of all) {
    const { size } = await stat(segmentPath(walDir, start));
    regions.push({ start, at: total, length: size });
    total += size;
  }
  const buf = new Uint8Array(new SharedArrayBuffer(Math.max(total, 8)));
  for (const r of regions) {
    const h = await open(segmentPath(walDir, r.start), 'r');
    try {
      let done = 0;
      while (done < r.length) {
        const { bytesRead } = await h.read(buf, r.at + done, Math.min(r.length - done, 64 << 20), done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      r.length = done;
    } finally {
      await h.close();
    }
  }

  // Sized for records of about 512 bytes; grown by doubling when there are more.
  let positions = new Uint32Array(Math.max(1024, total >>> 9));
  let count = 0;
  let endLsn = fromLsn;
  let tornAt: WalScan['tornAt'];
  const dv = new DataView(buf.buffer);

  scan: for (let i = 0; i < regions.length; i++) {
    const r = regions[i]!;
    if (i > 0 && r.start !== regions[i - 1]!.start + segmentSize) {
      // A missing segment matters only if the log goes on after it.
      if (hasValidRecordFrom(buf, regions, i)) {
        const gap = regions[i - 1]!.start + segmentSize;
        throw raError('RA_ERR_WAL_CORRUPT', `WAL segment for LSN ${gap} to ${r.start - 1} is missing, and the log goes on after it`, { details: { lsn: gap } });
      }
      break;
    }
    const headerProblem = checkSegmentHeader(buf.subarray(r.at, r.at + r.length), storeId, r.start, segmentSize);
    if (headerProblem) {
      // A header is durable before any record is written to its segment, so a bad one is a
      // torn creation only when the segment holds nothing yet: shorter than its header, or all
      // zeros (extended by a crash before its bytes were written). Anything else is damage,
      // and dropping the segment would drop the commits in it.
      const unwritten = r.length < SEGMENT_HEADER_SIZE || buf.subarray(r.at, r.at + r.length).every((b) => b === 0);
      if (i === 0 || !unwritten || hasValidRecordFrom(buf, regions, i + 1)) {
        throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, r.start)}: ${headerProblem}; refusing to recover past a damaged segment header`, {
          details: { lsn: r.start, reason: headerProblem },
        });
      }
      tornAt = { lsn: r.start + SEGMENT_HEADER_SIZE, reason: `segment header: ${headerProblem} (segment never written)` };
      break;
    }
    const end = r.at + r.length;
    const prevEndLsn = endLsn;
    if (i > 0) {
      // The writer starts a segment only when the next record does not fit the rest of the one
      // before; a segment whose records stop earlier lost its tail (cut short, or emptied).
      // A segment with no record at all is never followed by one with records (no record is
      // larger than a segment). Stores recovered before recovery cut a torn first record of a
      // segment together with its segment have recovery's own records (CLR, abort, checkpoint)
      // first in the next one: allowed.
      const prevEnd = endLsn - regions[i - 1]!.start;
      const first = validRecordAt(buf, r.at + SEGMENT_HEADER_SIZE, end, r.start + SEGMENT_HEADER_SIZE);
      const firstType = buf[r.at + SEGMENT_HEADER_SIZE + kRecType];
      const byRecovery = firstType === RecordType.Clr || firstType === RecordType.Abort || firstType === RecordType.Checkpoint;
      if (first > 0 && (prevEnd <= SEGMENT_HEADER_SIZE || (prevEnd + first <= segmentSize && !byRecovery))) {
        const lsn = endLsn;
        throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, regions[i - 1]!.start)} ends at LSN ${lsn}, but the next segment's first record (${first} bytes) would have fitted after it: records from LSN ${lsn} to ${r.start - 1} are missing; refusing to recover past them`, {
          details: { lsn, reason: 'segment cut short', nextValidLsn: r.start + SEGMENT_HEADER_SIZE },
        });
      }
    }
    // A start LSN at a segment boundary (the log ended there) means the segment's first record.
    let p = r.at + (i === 0 ? Math.max(fromLsn - r.start, SEGMENT_HEADER_SIZE) : SEGMENT_HEADER_SIZE);
    endLsn = r.start + (p - r.at);
    while (p < end) {
      // The valid records from p on, as many as one native call validates (validRecordAt's
      // checks); it stops at the first that is not valid, the end, or when positions is full.
      if (count === positions.length) {
        const grown = new Uint32Array(positions.length * 2);
        grown.set(positions);
        positions = grown;
      }
      const n = walScanRecords(buf, p, end, r.start + (p - r.at), positions, count);
      if (n > 0) {
        const last = positions[count + n - 1]!;
        count += n;
        p = last + dv.getUint32(last + kRecLength, true);
        endLsn = r.start + (p - r.at);
        continue;
      }
      const lsn = r.start + (p - r.at);
      const reason = end - p < RECORD_MIN_SIZE || dv.getUint32(p + kRecLength, true) > end - p ? 'record cut short' : 'checksum, length or LSN mismatch';
      const after = nextValidRecord(buf, r, p + 8, end) ?? (hasValidRecordFrom(buf, regions, i + 1) ? regions[i + 1]!.start : null);
      if (after !== null) {
        throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${lsn} is damaged (${reason}) but valid records follow (at LSN ${after}); refusing to recover past it`, {
          details: { lsn, reason, nextValidLsn: after },
        });
      }
      tornAt = { lsn, reason };
      // A torn first record of a segment: the log ends where the previous segment's records do,
      // and the segment goes, so the next record goes where it would have gone (it fits there).
      endLsn = i > 0 && p === r.at + SEGMENT_HEADER_SIZE ? prevEndLsn : lsn;
      break scan;
    }
  }

  return {
    buf,
    positions,
    count,
    endLsn,
    bytesRead: total,
    ...(tornAt ? { tornAt } : {}),
    positionOf(lsn: number): number {
      const start = segmentStartOf(lsn, segmentSize);
      const r = regions.find((x) => x.start === start);
      if (!r || lsn - start >= r.length) return -1;
      return r.at + (lsn - start);
    },
  };
}

/**
 * The LSN of a valid record in [from, end) of region r, or null. Records start at 8-byte
 * boundaries of the segment (LSN), which are not those of `buf` when an earlier segment's file
 * length is not a multiple of 8.
 */
function nextValidRecord(buf: Uint8Array, r: Region, from: number, end: number): number | null {
  for (let p = r.at + ((from - r.at + 7) & ~7); p + RECORD_MIN_SIZE <= end; p += 8) {
    const lsn = r.start + (p - r.at);
    // Cheap test first: a record carries its own LSN.
    if (readU64(buf, p + 8) === lsn && validRecordAt(buf, p, end, lsn) > 0) return lsn;
  }
  return null;
}

/**
 * True when a valid record lies in regions i onwards. A segment whose header is damaged counts
 * too: its records carry their own LSN and checksum, and dropping them would drop commits.
 */
function hasValidRecordFrom(buf: Uint8Array, regions: Region[], i: number): boolean {
  for (let k = i; k < regions.length; k++) {
    const r = regions[k]!;
    if (nextValidRecord(buf, r, r.at + SEGMENT_HEADER_SIZE, r.at + r.length) !== null) return true;
  }
  return false;
}

/** Reads and validates one record straight from its segment file (for LSNs outside a scan). */
export async function readRecordFromDisk(walDir: string, storeId: Uint8Array, segmentSize: number, lsn: number): Promise<Uint8Array> {
  const start = segmentStartOf(lsn, segmentSize);
  const file = segmentPath(walDir, start);
  const h = await open(file, 'r').catch((err: Error) => {
    throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${file} holding LSN ${lsn} is missing: ${err.message}`, { cause: err, details: { lsn } });
  });
  try {
    const header = Buffer.alloc(SEGMENT_HEADER_SIZE);
    await h.read(header, 0, SEGMENT_HEADER_SIZE, 0);
    const problem = checkSegmentHeader(header, storeId, start, segmentSize);
    if (problem) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${file}: ${problem}`, { details: { lsn } });
    const len = Buffer.alloc(4);
    await h.read(len, 0, 4, lsn - start);
    const size = len.readUInt32LE(0);
    const rec = Buffer.alloc(Math.max(size, RECORD_MIN_SIZE));
    const { bytesRead } = await h.read(rec, 0, rec.byteLength, lsn - start);
    if (validRecordAt(rec, 0, bytesRead, lsn) === 0) {
      throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${lsn} in ${file} is damaged`, { details: { lsn } });
    }
    return rec;
  } finally {
    await h.close();
  }
}

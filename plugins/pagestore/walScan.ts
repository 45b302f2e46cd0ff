/**
 * Reading the WAL for recovery: every segment from a start LSN to the end of the log, one
 * segment at a time (`scanSegments`), into buffers on SharedArrayBuffers (so redo workers can
 * apply records straight from them, never copied): all of it into one buffer with an index of
 * the valid records (`scanWal`), or segment by segment into a window of reused slots as the
 * streaming redo does (redoStream.ts).
 *
 * Where the log ends: at the first record that is torn (cut short) or fails its checksum or
 * LSN check, provided no valid record follows it; that is what a crash in the middle of a write
 * leaves. A bad record followed by a valid one is corruption: the scan fails with
 * RA_ERR_WAL_CORRUPT naming the LSN, and nothing is applied or truncated. So is a newest
 * segment made FULL_SIZE (walSegments.ts) that is shorter than its segment size: cut, not torn.
 * A FULL_SIZE segment's zeros after its last record are not read as records
 * (`segmentContentLength`).
 */
import { open, stat } from 'node:fs/promises';
import { walScanRecords } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';
import { RECORD_MIN_SIZE, kRecLength, kRecType, validRecordAt } from './walRecord.js';
import { leftForNext, nextValidRecord, segmentEndProblem } from './walSegmentEnd.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, isFullSize, listSegments, segmentContentLength, segmentLengthProblem, segmentPath, segmentPosition, segmentStartOf } from './walSegments.js';

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

/** One segment file as the scan sees it: where its bytes are, in whichever buffer holds them. */
export interface WalRegion {
  /** The segment's start LSN. */
  readonly start: number;
  /** The buffer holding the segment's bytes (shared, so redo workers can read records in place). */
  readonly bytes: Uint8Array<SharedArrayBuffer>;
  /** Position of the segment's byte 0 in `bytes`. */
  readonly at: number;
  /** Bytes of the segment file read. */
  readonly length: number;
}

/**
 * Where the scan gets segment bytes: `load` for the segments it scans in order (the bytes must
 * stay put while the scan's caller uses the records), `probe` for looking past damage at the
 * segments after it (the bytes may go to a scratch buffer).
 */
export interface SegmentSource {
  load(index: number, start: number): Promise<WalRegion>;
  probe(index: number, start: number): Promise<WalRegion>;
}

/** The valid records of one segment (maybe none): positions in `region.bytes`, in LSN order. */
export type SegmentRecords = (region: WalRegion, positions: Uint32Array, count: number) => void | Promise<void>;

/**
 * Validates the records of a run from `start`: `walScanRecords`'s contract (same arguments, same
 * stop, same positions written, same count returned). The streaming redo passes one that also
 * analyses each record as it validates it (walAnalysis.ts `scan`).
 */
export type RecordScanner = (buf: Uint8Array, start: number, end: number, startLsn: number, positions: Uint32Array, first: number) => number;

/** How the log ended. */
export interface WalEnd {
  /** The end of the valid log: where the next record goes. */
  readonly endLsn: number;
  /** Bytes of WAL read from disk. */
  readonly bytesRead: number;
  /** Valid records from `fromLsn`. */
  readonly count: number;
  readonly tornAt?: { lsn: number; reason: string };
}

/** The segment files from the one holding `fromLsn` on, in LSN order; fails when that one is missing. */
export async function segmentsFrom(walDir: string, segmentSize: number, fromLsn: number): Promise<number[]> {
  const firstSeg = segmentStartOf(fromLsn, segmentSize);
  const all = (await listSegments(walDir)).filter((s) => s >= firstSeg);
  if (all[0] !== firstSeg) {
    throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, firstSeg)} holding the redo start LSN ${fromLsn} is missing`, { details: { lsn: fromLsn } });
  }
  return all;
}

/** Reads segment file `start` into `into` at `at`, at most `max` bytes; returns the bytes read. */
export async function readSegmentInto(walDir: string, start: number, into: Uint8Array, at: number, max: number): Promise<number> {
  const h = await open(segmentPath(walDir, start), 'r');
  try {
    let done = 0;
    while (done < max) {
      const { bytesRead } = await h.read(into, at + done, Math.min(max - done, 64 << 20), done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  } finally {
    await h.close();
  }
}

/** The whole log from `fromLsn` read into one buffer, and every valid record's position in it. */
export async function scanWal(walDir: string, storeId: Uint8Array, segmentSize: number, fromLsn: number): Promise<WalScan> {
  const segments = await segmentsFrom(walDir, segmentSize, fromLsn);
  const sizes: number[] = [];
  let total = 0;
  for (const start of segments) {
    // Bytes past the segment size hold no record (the next LSN is the next segment's): not read,
    // as the streaming redo does not read them (redoStream.ts).
    const size = Math.min((await stat(segmentPath(walDir, start))).size, segmentSize);
    sizes.push(size);
    total += size;
  }
  const buf = new Uint8Array(new SharedArrayBuffer(Math.max(total, 8)));
  const ats: number[] = [];
  for (let i = 0, at = 0; i < segments.length; at += sizes[i]!, i++) ats.push(at);
  const regions = new Map<number, WalRegion>();
  const load = async (i: number, start: number): Promise<WalRegion> => {
    let r = regions.get(i);
    if (!r) {
      r = { start, bytes: buf, at: ats[i]!, length: await readSegmentInto(walDir, start, buf, ats[i]!, sizes[i]!) };
      regions.set(i, r);
    }
    return r;
  };
  // Sized for records of about 512 bytes; grown by doubling when there are more.
  let positions = new Uint32Array(Math.max(1024, total >>> 9));
  let count = 0;
  const end = await scanSegments(walDir, storeId, segmentSize, fromLsn, segments, { load, probe: load }, (_r, found, n) => {
    if (count + n > positions.length) {
      const grown = new Uint32Array(Math.max(positions.length * 2, count + n));
      grown.set(positions.subarray(0, count));
      positions = grown;
    }
    positions.set(found.subarray(0, n), count);
    count += n;
  });
  return {
    buf,
    positions,
    count,
    endLsn: end.endLsn,
    bytesRead: end.bytesRead,
    ...(end.tornAt ? { tornAt: end.tornAt } : {}),
    positionOf(lsn: number): number {
      const i = segments.indexOf(segmentStartOf(lsn, segmentSize));
      const r = regions.get(i);
      if (!r || lsn - r.start >= r.length) return -1;
      return r.at + (lsn - r.start);
    },
  };
}

/**
 * The scan proper, one segment at a time: loads each of `segments` (listed from the one holding
 * `fromLsn`) from `source`, validates its records, hands them to `onSegment`, and decides where
 * the log ends (a torn tail) or that it is damaged (RA_ERR_WAL_CORRUPT) by the rules at the top
 * of this file. A segment's records reach `onSegment` only once the segment is known to be sound
 * up to them; records after damage never do. `scanner` validates each segment's records in one
 * call (at most one per segment, none when the segment has no byte to scan).
 */
export async function scanSegments(
  walDir: string,
  storeId: Uint8Array,
  segmentSize: number,
  fromLsn: number,
  segments: readonly number[],
  source: SegmentSource,
  onSegment: SegmentRecords,
  scanner: RecordScanner = walScanRecords,
): Promise<WalEnd> {
  let positions = new Uint32Array(4096);
  let count = 0;
  let found = 0;
  let bytesRead = 0;
  let endLsn = fromLsn;
  let tornAt: WalEnd['tornAt'];
  let prev: WalRegion | undefined;
  let prevEpoch = 0;
  // A region as far as it can hold records: a FULL_SIZE segment's zero tail left off.
  const content = (r: WalRegion): WalRegion => {
    const length = r.length >= SEGMENT_HEADER_SIZE ? segmentContentLength(r.bytes.subarray(r.at, r.at + r.length)) : r.length;
    return length === r.length ? r : { ...r, length };
  };
  const prevEpochOf = (r: WalRegion): number => segmentPosition(r.bytes.subarray(r.at, r.at + SEGMENT_HEADER_SIZE)).epoch;
  /** Whether a segment whose records end at offset `off` was left for segment `next` (its first record did not fit after them, or it forks). */
  const unusedTail = async (off: number, next: number, epoch: number): Promise<boolean> => {
    const n = await source.probe(next, segments[next]!);
    if (n.start !== segments[next - 1]! + segmentSize || n.length < SEGMENT_HEADER_SIZE) return false;
    const first = validRecordAt(n.bytes, n.at + SEGMENT_HEADER_SIZE, n.at + n.length, n.start + SEGMENT_HEADER_SIZE);
    const nextEpoch = segmentPosition(n.bytes.subarray(n.at, n.at + SEGMENT_HEADER_SIZE)).epoch;
    return leftForNext({ end: off, epoch, nextEpoch, first, firstType: n.bytes[n.at + SEGMENT_HEADER_SIZE + kRecType]! }, segmentSize);
  };
  const validFrom = async (i: number): Promise<boolean> => {
    for (let k = i; k < segments.length; k++) {
      const r = content(await source.probe(k, segments[k]!));
      if (nextValidRecord(r.bytes, r.at, r.start, r.at + SEGMENT_HEADER_SIZE, r.at + r.length) !== null) return true;
    }
    return false;
  };

  scan: for (let i = 0; i < segments.length; i++) {
    const start = segments[i]!;
    if (prev && start !== prev.start + segmentSize) {
      // A missing segment matters only if the log goes on after it.
      if (await validFrom(i)) {
        const gap = prev.start + segmentSize;
        throw raError('RA_ERR_WAL_CORRUPT', `WAL segment for LSN ${gap} to ${start - 1} is missing, and the log goes on after it`, { details: { lsn: gap } });
      }
      break;
    }
    const loaded = await source.load(i, start);
    const buf = loaded.bytes;
    bytesRead += loaded.length;
    const headerProblem = checkSegmentHeader(buf.subarray(loaded.at, loaded.at + loaded.length), storeId, loaded.start, segmentSize);
    // A FULL_SIZE segment's records end where its zeros begin, or its file was cut: a cut there is
    // what a torn tail cannot be. So for an older one too: its records alone show a cut only when
    // the next segment's first record would have fitted after it (below), and a large first record
    // (a full page image) hides a cut within its size of the end. A segment without the flag is
    // judged by its records alone.
    const lengthProblem = headerProblem ? null : segmentLengthProblem(buf.subarray(loaded.at, loaded.at + loaded.length), loaded.length, segmentSize);
    if (lengthProblem) {
      throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, start)} is ${lengthProblem}; refusing to recover past it`, {
        details: { lsn: start, reason: 'segment cut short' },
      });
    }
    const r = headerProblem ? loaded : content(loaded);
    if (headerProblem) {
      // A header is durable before any record is written to its segment, so a bad one is a
      // torn creation only when the segment holds nothing yet: shorter than its header, or all
      // zeros (extended by a crash before its bytes were written). Anything else is damage,
      // and dropping the segment would drop the commits in it.
      const unwritten = r.length < SEGMENT_HEADER_SIZE || buf.subarray(r.at, r.at + r.length).every((b) => b === 0);
      // A writer that makes segments FULL_SIZE renames one into place only once it is whole and
      // durable: after a FULL_SIZE segment, a next one without a header was not torn in its
      // creation but cut (its header, and the flag that would tell, gone with its records).
      const prevFull = prev !== undefined && isFullSize(prev.bytes.subarray(prev.at, prev.at + SEGMENT_HEADER_SIZE));
      if (i === 0 || !unwritten || prevFull || (await validFrom(i + 1))) {
        throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, r.start)}: ${headerProblem}; refusing to recover past a damaged segment header`, {
          details: { lsn: r.start, reason: headerProblem },
        });
      }
      tornAt = { lsn: r.start + SEGMENT_HEADER_SIZE, reason: `segment header: ${headerProblem} (segment never written)` };
      break;
    }
    const end = r.at + r.length;
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const prevEndLsn = endLsn;
    if (prev) {
      // A segment whose records stop before the writer would have left it (walSegmentEnd.ts: the
      // next record did not fit, a fork, a checkpoint that sealed a cut segment, recovery's own
      // records in older stores) lost its tail (cut short, or emptied).
      const prevEnd = endLsn - prev.start;
      const first = validRecordAt(buf, r.at + SEGMENT_HEADER_SIZE, end, r.start + SEGMENT_HEADER_SIZE);
      const firstType = buf[r.at + SEGMENT_HEADER_SIZE + kRecType]!;
      const nextEpoch = segmentPosition(buf.subarray(r.at, r.at + SEGMENT_HEADER_SIZE)).epoch;
      if (first > 0 && segmentEndProblem({ end: prevEnd, epoch: prevEpoch, nextEpoch, first, firstType }, segmentSize) !== null) {
        const lsn = endLsn;
        throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, prev.start)} ends at LSN ${lsn}, but the next segment's first record (${first} bytes) would have fitted after it: records from LSN ${lsn} to ${r.start - 1} are missing; refusing to recover past them`, {
          details: { lsn, reason: 'segment cut short', nextValidLsn: r.start + SEGMENT_HEADER_SIZE },
        });
      }
    }
    prev = r;
    prevEpoch = segmentPosition(buf.subarray(r.at, r.at + SEGMENT_HEADER_SIZE)).epoch;
    count = 0;
    // A start LSN at a segment boundary (the log ended there) means the segment's first record.
    let p = r.at + (i === 0 ? Math.max(fromLsn - r.start, SEGMENT_HEADER_SIZE) : SEGMENT_HEADER_SIZE);
    endLsn = r.start + (p - r.at);
    if (p < end) {
      // Room for every record the segment could hold, so one call validates the whole run
      // (validRecordAt's checks): it stops only at the first record that is not valid or the end.
      const room = Math.floor((end - p) / RECORD_MIN_SIZE) + 1;
      if (positions.length < room) positions = new Uint32Array(room);
      count = scanner(buf, p, end, r.start + (p - r.at), positions, 0);
      if (count > 0) {
        const last = positions[count - 1]!;
        p = last + dv.getUint32(last + kRecLength, true);
        endLsn = r.start + (p - r.at);
      }
    }
    // Bytes after the records of a segment made at full size that the log left for the next one
    // (its first record did not fit after them, or it starts a newer epoch) hold no record: a
    // flipped bit there is not damage (a growing segment never had those bytes).
    if (p < end && i + 1 < segments.length && isFullSize(buf.subarray(r.at, r.at + SEGMENT_HEADER_SIZE)) && (await unusedTail(p - r.at, i + 1, prevEpochOf(r)))) {
      await onSegment(r, positions, count);
      found += count;
      prev = r;
      continue;
    }
    if (p < end) {
      const lsn = r.start + (p - r.at);
      const reason = end - p < RECORD_MIN_SIZE || dv.getUint32(p + kRecLength, true) > end - p ? 'record cut short' : 'checksum, length or LSN mismatch';
      const after = nextValidRecord(buf, r.at, r.start, p + 8, end) ?? ((await validFrom(i + 1)) ? segments[i + 1]! : null);
      if (after !== null) {
        throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${lsn} is damaged (${reason}) but valid records follow (at LSN ${after}); refusing to recover past it`, {
          details: { lsn, reason, nextValidLsn: after },
        });
      }
      tornAt = { lsn, reason };
      // A torn first record of a segment: the log ends where the previous segment's records do,
      // and the segment goes, so the next record goes where it would have gone (it fits there).
      endLsn = i > 0 && p === r.at + SEGMENT_HEADER_SIZE ? prevEndLsn : lsn;
      await onSegment(r, positions, count);
      found += count;
      break scan;
    }
    await onSegment(r, positions, count);
    found += count;
  }
  return { endLsn, bytesRead, count: found, ...(tornAt ? { tornAt } : {}) };
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

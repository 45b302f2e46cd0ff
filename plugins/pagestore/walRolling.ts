/**
 * The log's rolling checksum R (plugins/replication/DESIGN.md, "Position"): R(L) folds the
 * trailing checksum of every record below LSN L, `R ← roll(R, checksum)`, from 0. Each segment
 * header stores R (and the epoch) at the segment's start, so R(L) needs L's segment alone: its
 * header, then its valid records up to L. A replication primary compares its R(L) with the one a
 * replica says it has at L; the WAL writer recomputes it for the end of the log when it opens.
 */
import { open } from 'node:fs/promises';
import { raError } from '../../core/errors.js';
import { walScanRecords, xxh3Pages } from 'recovery-agent/native';
import { readU32 } from '../../core/bytes.js';
import { RECORD_MIN_SIZE } from './walRecord.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, readSegmentHeader, segmentPath, segmentPosition, segmentStartOf, type SegmentPosition } from './walSegments.js';

/** Folds the records of `buf[from, to)` (consecutive, already valid: the caller checked them) into `r`. */
export function foldRecords(r: bigint, buf: Uint8Array, from: number, to: number): bigint {
  if (from >= to) return r;
  foldStart(r);
  for (let p = from; p < to; ) {
    const total = readU32(buf, p);
    foldNext(buf, p + total - 8);
    p += total;
  }
  return foldOut[0]!;
}

/**
 * `roll(r, checksum)` (core/replication/frames.ts) is XXH3-64 of r (8 bytes, little-endian)
 * then the record's checksum. Folded with no BigInt per record: `foldScratch` holds r's bytes
 * and the checksum, `xxh3Pages` (one 16-byte "page") writes the next r into `foldOut`, whose
 * bytes are copied back. A reopened writer or the end of recovery folds every record of the
 * log's last segment (tens of thousands): a BigInt in and out per record was ~30 ms of it.
 */
function foldStart(r: bigint): void {
  foldOut[0] = r;
  foldScratch.set(foldOutBytes, 0);
}

/** Folds the record checksum at `buf[at, at + 8)` into the r held in `foldScratch` (and `foldOut`). */
function foldNext(buf: Uint8Array, at: number): void {
  for (let i = 0; i < 8; i++) foldScratch[8 + i] = buf[at + i]!;
  xxh3Pages(foldScratch, 16, foldOut);
  foldScratch.set(foldOutBytes, 0);
}
const foldScratch = new Uint8Array(16);
const foldOut = new BigUint64Array(1);
/** `foldOut`'s bytes: little-endian on every platform the addon is built for (x86_64, arm64). */
const foldOutBytes = new Uint8Array(foldOut.buffer);

/**
 * The epoch and R at `lsn`: what a replica whose log ends at `lsn` must report. `lsn` must be a
 * record boundary of this log: the end of a record, or a position in a segment's header (then R
 * is the one after the previous segment's last valid record). Fails with RA_ERR_WAL_CORRUPT when
 * the segment is missing, its header is not this store's, or no record ends at `lsn`.
 */
export async function rollingAt(walDir: string, storeId: Uint8Array, segmentSize: number, lsn: number): Promise<SegmentPosition & { lsn: number }> {
  let seg = segmentStartOf(lsn, segmentSize);
  let limit = lsn;
  if (lsn - seg <= SEGMENT_HEADER_SIZE) {
    // No record of this segment lies below `lsn`: R is the one at the end of the previous segment.
    if (seg === 0) return { epoch: 0, rolling: 0n, lsn };
    seg -= segmentSize;
    limit = Infinity;
  }
  const file = segmentPath(walDir, seg);
  const fh = await open(file, 'r').catch(async (err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
    // The previous segment is retired (archived), but the one `lsn` starts holds R at its start in
    // its header: the same R. So a replica whose log ends where an archived segment did (one made
    // from a snapshot and the archive) is checked by a primary that kept only the next segment.
    const next = limit === Infinity ? await headerPosition(walDir, storeId, seg + segmentSize, segmentSize) : null;
    if (next) return null;
    throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${file} holding LSN ${lsn} is missing`, { details: { lsn } });
  });
  if (fh === null) {
    const next = (await headerPosition(walDir, storeId, seg + segmentSize, segmentSize))!;
    return { ...next, lsn };
  }
  let buf: Buffer;
  try {
    const size = (await fh.stat()).size;
    const want = Math.min(size, limit === Infinity ? size : limit - seg);
    buf = Buffer.alloc(want);
    const { bytesRead } = await fh.read(buf, 0, want, 0);
    buf = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const problem = checkSegmentHeader(buf, storeId, seg, segmentSize);
  if (problem) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${file}: ${problem}`, { details: { lsn } });
  const start = segmentPosition(buf);
  // One native pass validates the records (as walScanRecords does for recovery's scan); then
  // only their checksums are folded (a JS validation per record made a reopen after a crash
  // spend 60–190 ms here for a 5 MiB last segment).
  const positions = new Uint32Array(Math.max(1, Math.ceil((buf.byteLength - SEGMENT_HEADER_SIZE) / RECORD_MIN_SIZE)));
  const n = buf.byteLength > SEGMENT_HEADER_SIZE ? walScanRecords(buf, SEGMENT_HEADER_SIZE, buf.byteLength, seg + SEGMENT_HEADER_SIZE, positions, 0) : 0;
  const stop = n > 0 ? positions[n - 1]! + readU32(buf, positions[n - 1]!) : SEGMENT_HEADER_SIZE;
  if (limit !== Infinity && seg + stop !== limit) {
    throw raError('RA_ERR_WAL_CORRUPT', `no record of ${file} ends at LSN ${lsn} (the valid records stop at ${seg + stop})`, { details: { lsn } });
  }
  if (n === 0) return { epoch: start.epoch, rolling: start.rolling, lsn };
  foldStart(start.rolling);
  for (let k = 0; k < n; k++) {
    const at = positions[k]!;
    foldNext(buf, at + readU32(buf, at) - 8);
  }
  return { epoch: start.epoch, rolling: foldOut[0]!, lsn };
}

/** The epoch and R a segment's header holds, or null when the segment is missing or its header is not sound. */
async function headerPosition(walDir: string, storeId: Uint8Array, start: number, segmentSize: number): Promise<SegmentPosition | null> {
  const h = await readSegmentHeader(walDir, start);
  return h === null || checkSegmentHeader(h, storeId, start, segmentSize) ? null : segmentPosition(h);
}

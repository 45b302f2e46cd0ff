/**
 * WAL segment files: `wal/<16 hex digits of the segment's first LSN>.wal`. A segment holds the
 * LSN range [start, start + segmentSize); records never straddle two segments. A segment begins
 * with a 64-byte header naming the store it belongs to, so a segment of another store (or a
 * recycled file) is never replayed.
 *
 * Segment header, little-endian: u32 magic, u16 version, u16 flags, 16 bytes store id,
 * u64 segment start LSN, u32 segment size, u64 epoch at 36, u64 rolling checksum R at 44 (the
 * log's R at the segment's first record: replication's position check, DESIGN.md of
 * plugins/replication), zero padding, u64 XXH3-64 of bytes [0, 56) at 56. Segments written
 * before epoch and R existed hold zeros there: "epoch 0, R folded from 0 at this segment".
 *
 * Flag FULL_SIZE (bit 0 of the flags): the writer made the file `segmentSize` bytes long when it
 * created it (header, then zeros; renamed into place whole), and writes records into it without
 * ever changing its length. Its records end where the zeros after them begin. A file that says
 * FULL_SIZE and is shorter was cut: records the owner made durable (and acknowledged) may be gone
 * with it, which a growing file's torn tail cannot be told apart from (a crash mid-write leaves
 * the same short file). Segments of older writers, replica logs and copies (restore, base copy)
 * have the flag clear: they grow as written, and end with their last record.
 */
import type { Stats } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import path from 'node:path';
import { xxh3 } from 'recovery-agent/native';
import { readU64, writeU64 } from './format.js';

export const SEGMENT_MAGIC = 0x4c574152; // "RAWL"
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_SIZE = 64;
export const DEFAULT_SEGMENT_SIZE = 16 * 1024 * 1024;

export function segmentName(start: number): string {
  return `${start.toString(16).padStart(16, '0')}.wal`;
}

export function segmentPath(walDir: string, start: number): string {
  return path.join(walDir, segmentName(start));
}

export function segmentStartOf(lsn: number, segmentSize: number): number {
  return Math.floor(lsn / segmentSize) * segmentSize;
}

/** The segment starts present in `walDir`, ascending. */
export async function listSegments(walDir: string): Promise<number[]> {
  const names = await readdir(walDir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names
    .filter((n) => /^[0-9a-f]{16}\.wal$/.test(n))
    .map((n) => parseInt(n.slice(0, 16), 16))
    .sort((a, b) => a - b);
}

export const kSegFlags = 6;
/** The file was created at its full segment size (module comment). */
export const SEG_FULL_SIZE = 1;
export const kSegEpoch = 36;
export const kSegRolling = 44;

/** Where a segment starts in the log's history: the epoch it was written in, and R before its first record. */
export interface SegmentPosition {
  epoch: number;
  rolling: bigint;
}

export function encodeSegmentHeader(storeId: Uint8Array, start: number, segmentSize: number, pos: SegmentPosition = { epoch: 0, rolling: 0n }, flags = 0): Buffer {
  const h = Buffer.alloc(SEGMENT_HEADER_SIZE);
  h.writeUInt32LE(SEGMENT_MAGIC, 0);
  h.writeUInt16LE(SEGMENT_VERSION, 4);
  h.writeUInt16LE(flags, kSegFlags);
  h.set(storeId, 8);
  writeU64(h, 24, start);
  h.writeUInt32LE(segmentSize, 32);
  writeU64(h, kSegEpoch, pos.epoch);
  h.writeBigUInt64LE(pos.rolling, kSegRolling);
  h.writeBigUInt64LE(xxh3(h.subarray(0, 56)), 56);
  return h;
}

/** The epoch and R a (checked) segment header records. */
export function segmentPosition(h: Uint8Array): SegmentPosition {
  const b = Buffer.from(h.buffer, h.byteOffset, SEGMENT_HEADER_SIZE);
  return { epoch: readU64(b, kSegEpoch), rolling: b.readBigUInt64LE(kSegRolling) };
}

/** Why a segment header is not one of this store's, or null when it is. */
export function checkSegmentHeader(h: Uint8Array, storeId: Uint8Array, start: number, segmentSize: number): string | null {
  if (h.byteLength < SEGMENT_HEADER_SIZE) return 'shorter than its header';
  const b = Buffer.from(h.buffer, h.byteOffset, SEGMENT_HEADER_SIZE);
  if (b.readBigUInt64LE(56) !== xxh3(b.subarray(0, 56))) return 'header checksum mismatch';
  if (b.readUInt32LE(0) !== SEGMENT_MAGIC) return 'bad magic';
  if (b.readUInt16LE(4) !== SEGMENT_VERSION) return `unsupported version ${b.readUInt16LE(4)}`;
  if (!Buffer.from(storeId).equals(b.subarray(8, 24))) return 'belongs to another store';
  if (readU64(b, 24) !== start) return `header says it starts at LSN ${readU64(b, 24)}`;
  if (b.readUInt32LE(32) !== segmentSize) return `header says segment size ${b.readUInt32LE(32)}`;
  return null;
}

/** The first SEGMENT_HEADER_SIZE bytes of segment `start`, or null when the file is missing or shorter (unchecked). */
export async function readSegmentHeader(walDir: string, start: number): Promise<Buffer | null> {
  let fh;
  try {
    fh = await open(segmentPath(walDir, start), 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const h = Buffer.alloc(SEGMENT_HEADER_SIZE);
    const { bytesRead } = await fh.read(h, 0, SEGMENT_HEADER_SIZE, 0);
    return bytesRead < SEGMENT_HEADER_SIZE ? null : h;
  } finally {
    await fh.close();
  }
}

/** Whether a segment's (checked) header says FULL_SIZE. */
export function isFullSize(h: Uint8Array): boolean {
  return h.byteLength >= SEGMENT_HEADER_SIZE && (h[kSegFlags]! & SEG_FULL_SIZE) !== 0;
}

const kZeroBlock = 1 << 16;
const zeroBlock = new Uint8Array(kZeroBlock);

/**
 * The bytes of segment file `seg` (its whole file, header first) that can hold records: a
 * FULL_SIZE segment's zeros after its last record left off — up to its last nonzero byte,
 * rounded up to the 8-byte boundary records end on (a record's trailing checksum may end in zero
 * bytes); all of any other. Blocks of zeros are skipped with a compare, not byte by byte.
 */
export function segmentContentLength(seg: Uint8Array): number {
  if (!isFullSize(seg)) return seg.byteLength;
  const end = nonzeroEnd(seg, SEGMENT_HEADER_SIZE);
  return Math.min(seg.byteLength, SEGMENT_HEADER_SIZE + Math.ceil((end - SEGMENT_HEADER_SIZE) / 8) * 8);
}

/**
 * The end of the last nonzero byte of `bytes` at or after `from` (`from` when all are zero). Back
 * over whole zero blocks of 64 KiB, then of 512 bytes inside the last one that is not, then bytes
 * (a byte loop over a view of a SharedArrayBuffer costs ~0.3 µs a byte).
 */
export function nonzeroEnd(bytes: Uint8Array, from: number): number {
  let end = bytes.byteLength;
  for (const block of [kZeroBlock, 512]) {
    while (end > from) {
      const start = Math.max(from, end - block);
      if (Buffer.compare(bytes.subarray(start, end), zeroBlock.subarray(0, end - start)) !== 0) break;
      end = start;
    }
  }
  while (end > from && bytes[end - 1] === 0) end--;
  return end;
}

/**
 * The bytes of a segment file written so far, from its stat: its size, or for one made at full
 * size (sparse past its records) its allocated bytes (st_blocks) — an estimate to the
 * filesystem's block, which a compressing filesystem can undercount; never more than its size.
 */
export function writtenBytes(st: Stats, segmentSize: number): number {
  if (st.size < segmentSize || st.blocks === 0) return st.size;
  return Math.min(st.size, st.blocks * 512);
}

/** Why segment file `seg` (its bytes from 0; `fileBytes` its length) is not as long as its header says it must be, or null. */
export function segmentLengthProblem(seg: Uint8Array, fileBytes: number, segmentSize: number): string | null {
  if (!isFullSize(seg) || fileBytes >= segmentSize) return null;
  return `${fileBytes} bytes, not the ${segmentSize} it was created with: cut short (records made durable may be gone with the cut)`;
}

/**
 * The bytes of a file holding segment bytes `seg` (header first, up to its last record): a
 * FULL_SIZE segment padded with zeros to `segmentSize`, as its writer made it; any other as it
 * is. (Copies here use `segmentFileSize` and leave the zeros a hole.)
 */
export function fullSizeFile(seg: Uint8Array, segmentSize: number): Uint8Array {
  const size = segmentFileSize(seg, segmentSize);
  if (size === seg.byteLength) return seg;
  const out = new Uint8Array(size);
  out.set(seg);
  return out;
}

/**
 * The length of a file holding segment bytes `seg` (header first, up to its last record):
 * `segmentSize` for a FULL_SIZE segment, as its writer made it (the copy extends the file past
 * the bytes, a hole that reads as zeros, so a restore's copy stays the log's own, byte for byte);
 * any other segment's own length.
 */
export function segmentFileSize(seg: Uint8Array, segmentSize: number): number {
  return isFullSize(seg) ? Math.max(seg.byteLength, segmentSize) : seg.byteLength;
}

/**
 * Segment bytes `seg` with FULL_SIZE cleared in the header (and its checksum again): what a
 * segment that grows as written says (tests make such a log, as older writers left it).
 */
export function withoutFullSize(seg: Uint8Array): Uint8Array {
  return isFullSize(seg) ? withFlags(seg, (f) => f & ~SEG_FULL_SIZE) : seg;
}

/**
 * Segment bytes `seg` with FULL_SIZE set (and the header's checksum again): a growing segment's
 * records (a copy's, an older writer's) for a file made at full size (WalWriter.open).
 */
export function withFullSize(seg: Uint8Array): Buffer {
  return withFlags(seg, (f) => f | SEG_FULL_SIZE);
}

/** A copy of segment bytes `seg` whose header flags are `change(flags)`, its checksum again. */
function withFlags(seg: Uint8Array, change: (flags: number) => number): Buffer {
  const out = Buffer.from(seg);
  out.writeUInt16LE(change(out.readUInt16LE(kSegFlags)), kSegFlags);
  out.writeBigUInt64LE(xxh3(out.subarray(0, 56)), 56);
  return out;
}

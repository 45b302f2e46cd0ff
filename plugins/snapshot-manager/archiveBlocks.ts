/**
 * Archived WAL segments as LZ4 frames of 1 MiB independent blocks, with an index in the sidecar
 * so that one page's records can be read without decompressing the whole segment (what a page
 * rebuild does, pageSource.ts). The frame stays a standard one (`lz4 -d`,
 * restore and verify read it whole, as before); the index adds, per block:
 *
 *   offset   where its u32 size field is in the compressed file;
 *   first    where the first record that starts in it starts (segment offset), or -1;
 *   filter   1 KiB: bit `pageId mod 8192` set for every update or CLR that starts in it.
 *
 * A record may run past the end of its block into the next; `readBlockRecords` decodes both.
 */
import { compress, uncompressSync } from 'lz4-napi';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { FRAME_END, FRAME_HEADER, frameBlock, kUncompressedBit } from './lz4Frame.js';

export const ARCHIVE_BLOCK = 1 << 20;
const FILTER_BYTES = 1024;
const FILTER_BITS = FILTER_BYTES * 8;

/** The sidecar's `blocks`. */
export interface BlockIndex {
  /** Raw bytes per block (the last may be shorter). */
  size: number;
  offsets: number[];
  firsts: number[];
  /** Base64 of the blocks' filters, `FILTER_BYTES` each, in order. */
  filters: string;
}

/**
 * Compresses a segment (on libuv's threads, block by block) into a frame, and indexes it.
 * `recordsEnd`: where the walk of its records (the index needs it) found the valid records to
 * end — the segment's length when they run whole to its end.
 */
export async function encodeIndexed(engine: PageEngine, raw: Buffer, recordsFrom: number, startLsn: number): Promise<{ frame: Buffer; index: BlockIndex; recordsEnd: number }> {
  const n = Math.ceil(raw.byteLength / ARCHIVE_BLOCK);
  const packed = await Promise.all(Array.from({ length: n }, (_, b) => compress(raw.subarray(b * ARCHIVE_BLOCK, Math.min((b + 1) * ARCHIVE_BLOCK, raw.byteLength)))));
  const parts: Uint8Array[] = [Buffer.from(FRAME_HEADER)];
  const offsets: number[] = [];
  let at = FRAME_HEADER.byteLength;
  for (let b = 0; b < n; b++) {
    const block = raw.subarray(b * ARCHIVE_BLOCK, Math.min((b + 1) * ARCHIVE_BLOCK, raw.byteLength));
    const { field, body } = frameBlock(block, packed[b]!);
    const size = Buffer.alloc(4);
    size.writeUInt32LE(field);
    offsets.push(at);
    parts.push(size, body);
    at += 4 + body.byteLength;
  }
  parts.push(Buffer.from(FRAME_END));
  const firsts = new Array<number>(n).fill(-1);
  const filters = Buffer.alloc(n * FILTER_BYTES);
  const recordsEnd = engine.log.scanRecords(raw, recordsFrom, raw.byteLength, startLsn + recordsFrom, (pos) => {
    const b = Math.floor(pos / ARCHIVE_BLOCK);
    if (firsts[b] === -1) firsts[b] = pos;
    const pageId = engine.log.recordPageId(raw, pos);
    if (pageId === null) return;
    const bit = pageId % FILTER_BITS;
    filters[b * FILTER_BYTES + (bit >> 3)]! |= 1 << (bit & 7);
  });
  return { frame: Buffer.concat(parts), index: { size: ARCHIVE_BLOCK, offsets, firsts, filters: filters.toString('base64') }, recordsEnd };
}

/** The blocks whose records may include one for `pageId`, ascending. */
export function blocksFor(index: BlockIndex, pageId: number): number[] {
  const filters = Buffer.from(index.filters, 'base64');
  const bit = pageId % FILTER_BITS;
  const out: number[] = [];
  for (let b = 0; b < index.offsets.length; b++) {
    if (index.firsts[b]! >= 0 && (filters[b * FILTER_BYTES + (bit >> 3)]! & (1 << (bit & 7))) !== 0) out.push(b);
  }
  return out;
}

/** Decodes block `b` of a checked frame. */
function decodeBlock(file: string, frame: Buffer, index: BlockIndex, rawBytes: number, b: number): Buffer {
  const at = index.offsets[b]!;
  const rawSize = Math.min(index.size, rawBytes - b * index.size);
  if (at + 4 > frame.byteLength) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file}: block ${b} lies past the end of the file`, { details: { file } });
  const word = frame.readUInt32LE(at);
  const size = word & ~kUncompressedBit;
  if (at + 4 + size > frame.byteLength) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file}: block ${b} runs past the end of the file`, { details: { file } });
  const body = frame.subarray(at + 4, at + 4 + size);
  if ((word & kUncompressedBit) !== 0) return body;
  const prefixed = Buffer.allocUnsafe(4 + size);
  prefixed.writeUInt32LE(rawSize, 0);
  body.copy(prefixed, 4);
  try {
    const out = uncompressSync(prefixed);
    if (out.byteLength !== rawSize) throw new Error(`${out.byteLength} bytes, expected ${rawSize}`);
    return out;
  } catch (err) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file}: block ${b} does not decompress: ${(err as Error).message}`, { cause: err, details: { file } });
  }
}

/**
 * The bytes holding every record that starts in block `b`: that block and the next (its last
 * record may run into it; no record is longer than a block). Returns them with the segment
 * offset of their first byte.
 */
export function readBlockRecords(file: string, frame: Buffer, index: BlockIndex, rawBytes: number, b: number): { bytes: Buffer; base: number } {
  const here = decodeBlock(file, frame, index, rawBytes, b);
  const next = b + 1 < index.offsets.length ? decodeBlock(file, frame, index, rawBytes, b + 1) : null;
  return { bytes: next ? Buffer.concat([here, next]) : here, base: b * index.size };
}

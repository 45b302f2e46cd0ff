/**
 * LZ4 frames built from lz4-napi's block compressor (worker side).
 *
 * lz4-napi's block compressor `compressSync` runs at about 1.3 GB/s on a snapshot's 1 MiB runs
 * here, its `compressFrameSync` at about 1.1 GB/s (it goes through a 4 MiB block buffer of its
 * own), so the frame around the blocks is written here, into the caller's buffer. It is a
 * standard LZ4 frame (doc/lz4_Frame_format.md of lz4/lz4), which `lz4 -d` and lz4-napi's
 * `decompressFrame` read:
 *
 *   magic 0x184D2204 | FLG 0x60 | BD 0x70 | HC 0x73       the 7-byte frame header
 *   u32 LE block size | block bytes                        per ≤ 4 MiB of input
 *   u32 0                                                  end mark
 *
 * FLG 0x60: version 01, independent blocks, no block or content checksums (the manifest holds
 * XXH3-64 of both the frame and the raw bytes), no content size, no dictionary. BD 0x70: blocks
 * of at most 4 MiB. HC is byte 1 of XXH32 (seed 0) of FLG and BD: 0x73 (a test recomputes it).
 * A block that does not shrink is stored raw, as the format asks (high bit of its size set).
 */
import { compressSync } from 'lz4-napi';
import { setImmediate as eventLoopTurn } from 'node:timers/promises';
import xxhash from 'xxhash-addon';
import { raError } from '../../core/errors.js';
import { hex64 } from './manifest.js';

/** The 7-byte frame header, and the end mark (a block size of 0) that closes a frame. */
export const FRAME_HEADER = Uint8Array.of(0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73);
export const FRAME_END = new Uint8Array(4);
/** Largest block the header's BD byte allows. */
export const FRAME_BLOCK_MAX = 4 << 20;
/** Set in a block's size field when the block is stored uncompressed. */
export const kUncompressedBit = 0x8000_0000;

/**
 * A frame block from `block`'s raw bytes and lz4-napi's compression of them (`compressSync` or
 * `compress`, which prefix the raw size, a u32 the frame does not use): its size field and
 * body; the raw bytes when compressing does not shrink them, as the format asks.
 */
export function frameBlock(block: Uint8Array, packed: Buffer): { field: number; body: Uint8Array } {
  const size = packed.byteLength - 4;
  return size < block.byteLength ? { field: size, body: packed.subarray(4) } : { field: (block.byteLength | kUncompressedBit) >>> 0, body: block };
}

/** Bytes the blocks of `rawBytes` input can take: each stored raw at worst, with its size. */
export function blocksBound(rawBytes: number): number {
  return rawBytes + 4 * Math.ceil(rawBytes / FRAME_BLOCK_MAX);
}

/** Bytes a frame of `rawBytes` input can take: header, blocks, end mark. */
export function frameBound(rawBytes: number): number {
  return FRAME_HEADER.byteLength + blocksBound(rawBytes) + FRAME_END.byteLength;
}

/**
 * Writes the LZ4 frame of `raw` into `out` (at least `frameBound(raw.byteLength)` bytes) and
 * returns its length. Allocates a block buffer per 4 MiB (lz4-napi's): see `freeBlockBuffers`.
 */
export function encodeFrame(raw: Uint8Array, out: Uint8Array): number {
  if (out.byteLength < frameBound(raw.byteLength)) throw raError('RA_ERR_TASK_PAYLOAD', `LZ4 frame output of ${out.byteLength} bytes is below the bound ${frameBound(raw.byteLength)} for ${raw.byteLength} bytes; size it with frameBound()`);
  out.set(FRAME_HEADER, 0);
  const at = FRAME_HEADER.byteLength + encodeBlocks(raw, out.subarray(FRAME_HEADER.byteLength));
  out.set(FRAME_END, at);
  return at + FRAME_END.byteLength;
}

/**
 * Writes the blocks of `raw` (each a u32 size and its bytes, ≤ 4 MiB of input each) into `out`
 * (at least `blocksBound(raw.byteLength)` bytes) and returns their length: a frame's middle,
 * so that the blocks of one large input can be compressed on several workers at once.
 */
export function encodeBlocks(raw: Uint8Array, out: Uint8Array): number {
  if (out.byteLength < blocksBound(raw.byteLength)) throw raError('RA_ERR_TASK_PAYLOAD', `LZ4 block output of ${out.byteLength} bytes is below the bound ${blocksBound(raw.byteLength)} for ${raw.byteLength} bytes; size it with blocksBound()`);
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  let at = 0;
  for (let from = 0; from < raw.byteLength; from += FRAME_BLOCK_MAX) {
    const block = raw.subarray(from, Math.min(from + FRAME_BLOCK_MAX, raw.byteLength));
    const { field, body } = frameBlock(block, compressSync(Buffer.from(block.buffer, block.byteOffset, block.byteLength)));
    dv.setUint32(at, field, true);
    out.set(body, at + 4);
    at += 4 + body.byteLength;
  }
  return at;
}

/** XXH3-64 (16 hex digits) of the concatenation of `pieces`, as `xxhsum -H3` gives it. */
export function xxh3OfPieces(pieces: readonly Uint8Array[]): string {
  const h = new xxhash.XXHash3(kSeed0);
  for (const p of pieces) h.update(Buffer.from(p.buffer, p.byteOffset, p.byteLength));
  return hex64(h.digest().readBigUInt64BE(0));
}
const kSeed0 = Buffer.alloc(8);

/** Tasks between two turns of a worker's event loop (see `freeBlockBuffers`). */
const kTasksPerTurn = 8;
let tasksSinceTurn = 0;

/**
 * Call at the end of every task that called `encodeFrame` or `encodeBlocks`; every 8th call lets the worker's
 * event loop turn once. lz4-napi returns each block in a new Buffer, freed by a Node-API
 * finalizer that Node defers to the event loop, and piscina's workers wait for their next task
 * in `Atomics.wait` (its default 'sync' atomics): the loop turns only when a task awaits.
 * Measured on 1 MiB blocks: never turning leaks every block (~0.4 MiB each) and touching fresh
 * memory halves the speed; turning after every block frees each at once, and the allocator
 * hands the memory back and faults it in again (0.17 s of system time per GiB); every 8th
 * keeps a few MiB in hand and costs nothing.
 */
export async function freeBlockBuffers(): Promise<void> {
  if (++tasksSinceTurn < kTasksPerTurn) return;
  tasksSinceTurn = 0;
  await eventLoopTurn();
}

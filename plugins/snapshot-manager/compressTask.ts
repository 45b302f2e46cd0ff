/**
 * Worker tasks compressing slabs of raw bytes (page images or WAL) into a second slab:
 * `default`, into an LZ4 frame, hashing both; `frame`, the same but hashing only the frame (a
 * full snapshot's main thread hashed the raw bytes while checking them); `blocks`, one 4 MiB
 * part of a large input, joined with the others by compressor.ts. No file I/O here: the main
 * thread writes the frame (through libuv's threads) while this worker compresses the next slab.
 *
 * Both slabs are views on SharedArrayBuffers, so they cross to the worker by reference; only the
 * small result comes back. Rules: the caller does not touch either slab until the task's promise
 * settles; then `frame[0, bytes)` holds the frame, and the caller may reuse `slab` at once and
 * `frame` once it has written it out.
 */
import type { SharedBytes } from '../../core/workerPool.js';
import { encodeBlocks, encodeFrame, freeBlockBuffers } from './lz4Frame.js';
import { xxh3Hex } from './manifest.js';

/** Crosses to the worker. */
export interface CompressInput {
  [key: string]: SharedBytes | number;
  readonly slab: SharedBytes;
  /** Bytes of the slab to compress, from its start. */
  readonly length: number;
  /** Receives the frame; at least `frameBound(length)` bytes. */
  readonly frame: SharedBytes;
}

/** Comes back from the worker: the fields of a manifest file entry. */
export interface CompressResult {
  /** Bytes of the frame (at the start of `frame`) and their XXH3-64. */
  bytes: number;
  xxh3: string;
  rawBytes: number;
  rawXxh3: string;
}

/** Compresses `raw` into `frame`; shared by the select task (which frees block buffers). */
export function compressInto(raw: Uint8Array, frame: Uint8Array): CompressResult {
  const bytes = encodeFrame(raw, frame);
  return { bytes, xxh3: xxh3Hex(frame.subarray(0, bytes)), rawBytes: raw.byteLength, rawXxh3: xxh3Hex(raw) };
}

export default async function compressChunk(input: CompressInput): Promise<CompressResult> {
  const r = compressInto(input.slab.subarray(0, input.length), input.frame);
  await freeBlockBuffers();
  return r;
}

/** Crosses to the worker (`blocks`): one part of a large input, compressed beside the others. */
export interface BlocksInput {
  [key: string]: SharedBytes | number;
  readonly slab: SharedBytes;
  /** The part: `slab[from, from + length)`, a multiple of 4 MiB from the input's start. */
  readonly from: number;
  readonly length: number;
  /** Receives the part's blocks; at least `blocksBound(length)` bytes. */
  readonly out: SharedBytes;
}

/** Compresses one part of a large input into blocks (no frame header, no end mark); returns their length. */
export async function blocks(input: BlocksInput): Promise<number> {
  const n = encodeBlocks(input.slab.subarray(input.from, input.from + input.length), input.out);
  await freeBlockBuffers();
  return n;
}

/** Comes back from the worker (`frame`): the frame's half of a manifest entry. */
export interface FrameResult {
  bytes: number;
  xxh3: string;
}

/**
 * Compresses `slab[0, length)` into `frame` and hashes the frame only: the full snapshot's
 * task, whose caller hashed the raw bytes (copyPages.ts) while checking them.
 */
export async function frame(input: CompressInput): Promise<FrameResult> {
  const bytes = encodeFrame(input.slab.subarray(0, input.length), input.frame);
  const r = { bytes, xxh3: xxh3Hex(input.frame.subarray(0, bytes)) };
  await freeBlockBuffers();
  return r;
}

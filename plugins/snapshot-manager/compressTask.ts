/**
 * Worker task: compresses one slab of raw bytes (page images or WAL) into an LZ4 frame file.
 * The slab is a view on a SharedArrayBuffer, so it crosses to the worker by reference; only the
 * small result comes back. The caller must not touch the slab until the task's promise settles
 * (it then reuses it). The file is not synced here: the snapshot syncs all its files together
 * before writing its manifest (one wait for the disk, not one per chunk).
 */
import { open } from 'node:fs/promises';
import { compressFrameSync } from 'lz4-napi';
import type { SharedBytes } from '../../core/workerPool.js';
import { xxh3Hex } from './manifest.js';

/** Crosses to the worker. */
export interface CompressInput {
  [key: string]: SharedBytes | number | string;
  readonly slab: SharedBytes;
  /** Bytes of the slab to compress, from its start. */
  readonly length: number;
  /** Where the compressed frame goes (overwritten). */
  readonly file: string;
}

/** Comes back from the worker. */
export interface CompressResult {
  bytes: number;
  xxh3: string;
  rawBytes: number;
  rawXxh3: string;
}

export default async function compressChunk(input: CompressInput): Promise<CompressResult> {
  const raw = Buffer.from(input.slab.buffer, input.slab.byteOffset, input.length);
  const rawXxh3 = xxh3Hex(raw);
  const frame = compressFrameSync(raw);
  const h = await open(input.file, 'w');
  try {
    await h.write(frame, 0, frame.byteLength, 0);
  } finally {
    await h.close();
  }
  return { bytes: frame.byteLength, xxh3: xxh3Hex(frame), rawBytes: input.length, rawXxh3 };
}

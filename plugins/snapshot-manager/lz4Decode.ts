/**
 * Decoding the snapshot's LZ4 frames (lz4Frame.ts) into a buffer the caller owns (restore).
 *
 * lz4-napi's decoders return every result in a new Buffer, freed by a finalizer only when the
 * garbage collector gets to it: a restore of 1 GiB then touches ~2 GiB of fresh memory, and
 * the page faults (system time) cost more than the decoding. So restore decodes into one buffer
 * a worker reuses chunk after chunk, with the native addon's decoder (native/src/lz4.rs): ~4 GB/s
 * per thread on snapshot data here, where the JavaScript decoder it replaced ran at ~1 GB/s and
 * was, after the writes, the largest cost of a restore (#16).
 *
 * Only the frames lz4Frame.ts writes are read here (its 7-byte header: independent blocks, no
 * checksums, no content size); `decodeFrameInto` returns -1 for any other header and the
 * caller falls back to lz4-napi's `decompressFrame`. Every length and offset is checked, so a
 * damaged frame throws RA_ERR_SNAPSHOT_CORRUPT instead of writing outside its output (the
 * callers have checked the frame's XXH3 first anyway, and check the output's after).
 */
import { lz4DecodeFrame } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';

/**
 * Decodes a frame written by lz4Frame.ts into `dst`; returns the bytes written, or -1 when the
 * frame's header is not that one (decode it with lz4-napi instead). Bytes of `dst` after the
 * returned length may have been written too (the decoder copies 16 bytes at a time).
 */
export function decodeFrameInto(frame: Uint8Array, dst: Uint8Array): number {
  try {
    return lz4DecodeFrame(frame, dst);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'RA_ERR_SNAPSHOT_CORRUPT') throw raError('RA_ERR_SNAPSHOT_CORRUPT', e.message);
    throw err;
  }
}

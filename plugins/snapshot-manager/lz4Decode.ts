/**
 * Decoding the snapshot's LZ4 frames (lz4Frame.ts) into a buffer the caller owns (restore).
 *
 * lz4-napi's decoders return every result in a new Buffer, freed by a finalizer only when the
 * garbage collector gets to it: a restore of 1 GiB then touches ~2 GiB of fresh memory, and
 * the page faults (system time) cost more than the decoding. Decoding here, into one buffer a
 * worker reuses chunk after chunk, faults nothing; V8 runs this loop at ~1 GB/s on snapshot data.
 *
 * Only the frames lz4Frame.ts writes are read here (its 7-byte header: independent blocks, no
 * checksums, no content size); `decodeFrameInto` returns -1 for any other header and the
 * caller falls back to lz4-napi's `decompressFrame`. Every length and offset is checked, so a
 * damaged frame throws RA_ERR_SNAPSHOT_CORRUPT instead of writing outside its block (the
 * callers have checked the frame's XXH3 first anyway, and check the output's after).
 */
import { raError } from '../../core/errors.js';
import { FRAME_HEADER, kUncompressedBit } from './lz4Frame.js';

const damaged = (why: string) => raError('RA_ERR_SNAPSHOT_CORRUPT', `LZ4 frame is damaged: ${why}`);

/**
 * Decodes one LZ4 block `src[s, sEnd)` into `dst` from `d`, never past `dEnd`; returns where its
 * output ends.
 */
export function decodeBlockInto(src: Uint8Array, s: number, sEnd: number, dst: Uint8Array, d: number, dEnd: number): number {
  while (s < sEnd) {
    const token = src[s++]!;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (s >= sEnd) throw damaged('literal length runs past the block');
        b = src[s++]!;
        lit += b;
      } while (b === 255);
    }
    if (s + lit > sEnd || d + lit > dEnd) throw damaged('literals run past the block or the output');
    if (lit < 32) {
      for (const e = s + lit; s < e; ) dst[d++] = src[s++]!;
    } else {
      dst.set(src.subarray(s, s + lit), d);
      s += lit;
      d += lit;
    }
    if (s === sEnd) break; // the last sequence has literals only
    if (s + 2 > sEnd) throw damaged('match offset runs past the block');
    const off = src[s]! | (src[s + 1]! << 8);
    s += 2;
    let len = (token & 15) + 4;
    if (len === 19) {
      let b: number;
      do {
        if (s >= sEnd) throw damaged('match length runs past the block');
        b = src[s++]!;
        len += b;
      } while (b === 255);
    }
    if (off === 0 || off > d) throw damaged(`match offset ${off} points before the output`);
    if (d + len > dEnd) throw damaged('match runs past the output');
    let m = d - off;
    if (off >= len && len >= 32) {
      dst.copyWithin(d, m, m + len);
      d += len;
    } else {
      // Overlapping (a repeat of the last `off` bytes) or short: byte by byte, as the format means.
      for (const e = d + len; d < e; ) dst[d++] = dst[m++]!;
    }
  }
  return d;
}

/**
 * Decodes a frame written by lz4Frame.ts into `dst`; returns the bytes written, or -1 when the
 * frame's header is not that one (decode it with lz4-napi instead).
 */
export function decodeFrameInto(frame: Uint8Array, dst: Uint8Array): number {
  if (frame.byteLength < FRAME_HEADER.byteLength + 4) return -1;
  for (let i = 0; i < FRAME_HEADER.byteLength; i++) if (frame[i] !== FRAME_HEADER[i]) return -1;
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  let s = FRAME_HEADER.byteLength;
  let d = 0;
  for (;;) {
    if (s + 4 > frame.byteLength) throw damaged('no end mark');
    const field = dv.getUint32(s, true);
    s += 4;
    if (field === 0) break;
    const size = field & ~kUncompressedBit;
    if (s + size > frame.byteLength) throw damaged('a block runs past the frame');
    if (field & kUncompressedBit) {
      if (d + size > dst.byteLength) throw damaged('a stored block runs past the output');
      dst.set(frame.subarray(s, s + size), d);
      d += size;
    } else {
      d = decodeBlockInto(frame, s, s + size, dst, d, dst.byteLength);
    }
    s += size;
  }
  if (s !== frame.byteLength) throw damaged('bytes after the end mark');
  return d;
}

/**
 * Little-endian unsigned reads from bytes, without allocation: the page store's formats, the
 * snapshot manager's worker tasks and anything else that walks binary records per record call
 * them in hot loops, where a DataView per buffer costs more than the read.
 */

/** Little-endian u32 from bytes; no allocation (redo calls it per record). */
export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16)) + buf[off + 3]! * 0x100_0000;
}

/** Unsigned 64-bit read as a JS number; LSNs stay below 2^53 (8 PiB of WAL). No allocation. */
export function readU64(buf: Uint8Array, off: number): number {
  return readU32(buf, off) + readU32(buf, off + 4) * 0x1_0000_0000;
}

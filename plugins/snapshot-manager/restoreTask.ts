/**
 * Restore's per-chunk work, on a pool worker (or the calling thread without a pool): read a
 * snapshot chunk, check its XXH3, decode it, check the pages' XXH3, and write its page runs into
 * the staging data file. Both workers of a 2-thread pool do all of it side by side but the
 * writes, which take turns (takeWriteTurn), and each reuses its two buffers chunk after chunk:
 * no fresh memory, no garbage, no copy back to the main thread (the file descriptor is the
 * process's, so a worker writes through it).
 *
 * Errors do not cross a worker boundary whole (a structured clone keeps the message, not the
 * `code`), so the task returns them as data and `restoreChunkResult` rethrows them.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { decompressFrame } from 'lz4-napi';
import { raError, type ErrorCode } from '../../core/errors.js';
import { writeAllSync } from '../../core/writeAll.js';
import { decodeFrameInto } from './lz4Decode.js';
import { xxh3Hex } from './manifest.js';

/** Crosses to the worker. */
export interface RestoreChunkInput {
  [key: string]: string | number | readonly number[] | Int32Array<SharedArrayBuffer>;
  /** The chunk's file, and its manifest entry's sizes and XXH3-64s. */
  readonly file: string;
  readonly bytes: number;
  readonly xxh3: string;
  readonly rawBytes: number;
  readonly rawXxh3: string;
  /** The page runs it holds, flat: first page id, count, first page id, count, … */
  readonly runs: readonly number[];
  /** The staging data file, open for writing (a descriptor of this process). */
  readonly fd: number;
  readonly pageSize: number;
  /** The data file's write turn, shared by the workers (takeWriteTurn). */
  readonly writeTurn: Int32Array<SharedArrayBuffer>;
}

/** Longest wait for the write turn; past it a worker writes anyway (the turn only saves CPU). */
const kWriteTurnWaitMs = 10_000;

/**
 * Takes the data file's write turn: one worker writes at a time, the others sleep on a futex.
 * ext4 lets one buffered write into a file run at a time anyway (the inode's lock), and a writer
 * that waits for that lock spins on its CPU while the owner runs: two workers writing side by
 * side spent ~0.4 s of CPU each spinning per GiB restored (perf, `rwsem_spin_on_owner`), CPU the
 * other worker's decoding could have had. Returns whether the turn was taken (give it back with
 * giveWriteTurn); a turn never given back (a worker gone mid-write) is waited for at most
 * kWriteTurnWaitMs.
 */
export function takeWriteTurn(turn: Int32Array<SharedArrayBuffer>, waitMs = kWriteTurnWaitMs): boolean {
  const until = performance.now() + waitMs;
  while (Atomics.compareExchange(turn, 0, 0, 1) !== 0) {
    if (performance.now() > until) return false;
    Atomics.wait(turn, 0, 1, 50);
  }
  return true;
}

export function giveWriteTurn(turn: Int32Array<SharedArrayBuffer>): void {
  Atomics.store(turn, 0, 0);
  Atomics.notify(turn, 0, 1);
}

/** Comes back: pages written, or why not. */
export type RestoreChunkResult = { pages: number } | { failed: { code: string | null; message: string } };

let frameBuf = new Uint8Array(0);
let rawBuf = new Uint8Array(0);

async function restoreChunkOrThrow(i: RestoreChunkInput): Promise<number> {
  if (frameBuf.byteLength < i.bytes) frameBuf = new Uint8Array(i.bytes);
  if (rawBuf.byteLength < i.rawBytes) rawBuf = new Uint8Array(i.rawBytes);
  let frame: Uint8Array;
  try {
    const fd = openSync(i.file, 'r');
    try {
      let n = 0;
      for (let k; n < i.bytes && (k = readSync(fd, frameBuf, n, i.bytes - n, n)) > 0; ) n += k;
      // One byte more than the manifest says means the file grew: it fails the size check below.
      const extra = readSync(fd, new Uint8Array(1), 0, 1, n);
      frame = frameBuf.subarray(0, n);
      if (extra > 0) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${i.file} fails its checksum (more than ${i.bytes} bytes, expected ${i.bytes} with XXH3 ${i.xxh3})`);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as { code?: string }).code === 'RA_ERR_SNAPSHOT_CORRUPT') throw err;
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `cannot read ${i.file}: ${(err as Error).message}`, { cause: err });
  }
  if (frame.byteLength !== i.bytes || xxh3Hex(frame) !== i.xxh3) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${i.file} fails its checksum (${frame.byteLength} bytes, expected ${i.bytes} with XXH3 ${i.xxh3})`);
  }
  let raw: Uint8Array;
  try {
    const n = decodeFrameInto(frame, rawBuf.subarray(0, i.rawBytes));
    raw = n >= 0 ? rawBuf.subarray(0, n) : await decompressFrame(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength));
  } catch (err) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${i.file} is not a valid LZ4 frame: ${(err as Error).message}`, { cause: err });
  }
  if (raw.byteLength !== i.rawBytes || xxh3Hex(raw) !== i.rawXxh3) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${i.file} decompresses to ${raw.byteLength} bytes that fail their checksum (expected ${i.rawBytes} bytes, XXH3 ${i.rawXxh3})`);
  }
  let at = 0;
  let pages = 0;
  const writes: Array<[Uint8Array, number]> = [];
  for (let r = 0; r < i.runs.length; r += 2) {
    const [first, count] = [i.runs[r]!, i.runs[r + 1]!];
    const len = count * i.pageSize;
    if (at + len > raw.byteLength) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${i.file} holds fewer pages than its manifest entry names`);
    writes.push([raw.subarray(at, at + len), first * i.pageSize]);
    at += len;
    pages += count;
  }
  const turn = takeWriteTurn(i.writeTurn);
  try {
    for (const [bytes, position] of writes) writeAllSync(i.fd, bytes, position);
  } finally {
    if (turn) giveWriteTurn(i.writeTurn);
  }
  return pages;
}

export default async function restoreChunk(i: RestoreChunkInput): Promise<RestoreChunkResult> {
  try {
    return { pages: await restoreChunkOrThrow(i) };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    return { failed: { code: typeof e.code === 'string' ? e.code : null, message: e.message } };
  }
}

/** The pages a chunk task wrote; rethrows its failure (RA_ERR_… codes as raError, others with their errno code). */
export function restoreChunkResult(r: RestoreChunkResult): number {
  if ('pages' in r) return r.pages;
  const { code, message } = r.failed;
  if (code?.startsWith('RA_ERR_')) throw raError(code as ErrorCode, message);
  throw Object.assign(new Error(message), code ? { code } : {});
}

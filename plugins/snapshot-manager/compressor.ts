/**
 * Compressing slabs into snapshot files on the worker pool: an incremental's packed chunks and
 * the WAL segments. An input larger than one LZ4 block (4 MiB, e.g. a 16 MiB segment) is cut
 * into parts compressed on several workers at once (compressTask.ts `blocks`); the main thread
 * joins them between a frame header and an end mark, and hashes the frame and the input.
 *
 * Rules: main thread only. A slab handed to `submit` is the compressor's until its file is
 * written (one from `acquire` then returns to the free list; one the caller owns is the
 * caller's again once `drain` or `settle` resolves). At most `max` acquired slabs are busy
 * (being filled, compressed or written): `acquire` waits. A failure is kept and thrown by
 * `acquire` and `drain`.
 */
import { defineTask, sharedBytes, type SharedBytes, type WorkerPool } from '../../core/workerPool.js';
import type { BlocksInput, CompressInput, CompressResult } from './compressTask.js';
import type { FrameWriter } from './frameWriter.js';
import { FRAME_BLOCK_MAX, FRAME_END, FRAME_HEADER, blocksBound, frameBound, xxh3OfPieces } from './lz4Frame.js';
import { xxh3Hex } from './manifest.js';

const compressTask = defineTask<CompressInput, CompressResult>(new URL('./compressTask.js', import.meta.url));
const blocksTask = defineTask<BlocksInput, number>(new URL('./compressTask.js', import.meta.url), 'blocks');

export class Compressor {
  private readonly rawFree: SharedBytes[] = [];
  private readonly outFree: SharedBytes[] = [];
  private busy = 0;
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown = null;
  private readonly max: number;

  constructor(
    private readonly pool: WorkerPool,
    private readonly writer: FrameWriter,
    max: number,
  ) {
    // At least one slab being filled and one being compressed, or acquire could wait forever.
    this.max = Math.max(2, max);
  }

  /** A slab of at least `bytes` to fill; waits while `max` are busy. */
  async acquire(bytes: number): Promise<SharedBytes> {
    while (this.busy >= this.max && this.inflight.size > 0) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
    this.busy++;
    return take(this.rawFree, bytes);
  }

  /** Gives back a slab acquired but not submitted. */
  release(slab: SharedBytes): void {
    this.busy--;
    this.rawFree.push(slab);
  }

  /**
   * Compresses `slab[0, length)` into the new file `file` and fills the manifest entry `entry` in
   * (bytes, xxh3, rawBytes, rawXxh3). `acquired`: the slab came from `acquire` (else the
   * caller's: it is left alone afterwards).
   */
  submit(slab: SharedBytes, length: number, file: string, entry: object, acquired = true): void {
    const p: Promise<void> = this.compress(slab, length, file, entry)
      .catch((err: unknown) => void (this.failure ??= err))
      .finally(() => {
        if (acquired) this.release(slab);
        this.inflight.delete(p);
      });
    this.inflight.add(p);
  }

  /** Waits for every submitted compression; throws the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    if (this.failure) throw this.failure;
  }

  /** Waits for every submitted compression, ignoring failures. */
  async settle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }

  private async compress(slab: SharedBytes, length: number, file: string, entry: object): Promise<void> {
    const parts = Math.max(1, Math.ceil(length / FRAME_BLOCK_MAX));
    const outs: SharedBytes[] = [];
    try {
      if (parts === 1) {
        const frame = take(this.outFree, frameBound(length));
        outs.push(frame);
        const r = await this.pool.run(compressTask, { slab, length, frame });
        await this.writer.write(file, frame.subarray(0, r.bytes));
        Object.assign(entry, r);
        return;
      }
      const runs = Array.from({ length: parts }, (_, i) => {
        const from = i * FRAME_BLOCK_MAX;
        const part = Math.min(FRAME_BLOCK_MAX, length - from);
        const out = take(this.outFree, blocksBound(part));
        outs.push(out);
        return this.pool.run(blocksTask, { slab, from, length: part, out });
      });
      // Every part settles before its slab is reused, even when one fails.
      const settled = await Promise.allSettled(runs);
      const failed = settled.find((x) => x.status === 'rejected');
      if (failed) throw failed.reason;
      const pieces = [FRAME_HEADER, ...outs.map((o, i) => o.subarray(0, (settled[i] as PromiseFulfilledResult<number>).value)), FRAME_END];
      const rawXxh3 = xxh3Hex(slab.subarray(0, length));
      await this.writer.write(file, pieces);
      Object.assign(entry, { bytes: pieces.reduce((n, x) => n + x.byteLength, 0), xxh3: xxh3OfPieces(pieces), rawBytes: length, rawXxh3 });
    } finally {
      this.outFree.push(...outs);
    }
  }
}

/** A free slab of at least `bytes` from `free`, or a new one (allocating: not for the hot path). */
function take(free: SharedBytes[], bytes: number): SharedBytes {
  const i = free.findIndex((s) => s.byteLength >= bytes);
  return i >= 0 ? free.splice(i, 1)[0]! : sharedBytes(bytes);
}

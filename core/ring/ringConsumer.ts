/**
 * The consuming view of an SPSC ring. The rules of concurrent use are at the top of spscRing.ts:
 * read them before changing anything here.
 */
import { performance } from 'node:perf_hooks';
import { MAX_TIMER_MS, RingView, SPIN_BEFORE_SLEEP, checkCount, checkMax, checkTimeout, kClosed, kConsumerClaim, kConsumerWaiting, kProducerWaiting, kReadIndex, kWriteIndex, noop, requireWaitAsync, ringError } from './spscRing.js';
import type { RecordReader, RingWaitResult } from './spscRing.js';

/**
 * The consuming side of a ring. Construct it in the consuming thread from the SAB; at most one
 * per ring.
 */
export class RingConsumer extends RingView {
  /** Count of records released (mod 2^32); a copy of kReadIndex, which only this side writes. */
  private read: number;
  /** The producer's kWriteIndex as last loaded; re-loaded only when the ring looks empty. */
  private cachedWrite: number;

  /** Claims the consumer role of the ring at `byteOffset`. Allocates views: construct once, not on the hot path. */
  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    super(sab, byteOffset, kConsumerClaim, 'consumer');
    this.read = Atomics.load(this.header, kReadIndex);
    this.cachedWrite = Atomics.load(this.header, kWriteIndex);
  }

  /** Records ready to read now (re-loads the producer's index). */
  get size(): number {
    this.cachedWrite = Atomics.load(this.header, kWriteIndex);
    return (this.cachedWrite - this.read) >>> 0;
  }

  /** True when the producer has closed the ring and every record it published has been consumed. */
  get ended(): boolean {
    return this.poll() === 'closed';
  }

  /** Filled slots, re-loading the producer's index only if fewer than `wanted` are known. */
  private filled(wanted: number): number {
    let filled = (this.cachedWrite - this.read) >>> 0;
    if (filled < wanted) {
      this.cachedWrite = Atomics.load(this.header, kWriteIndex);
      filled = (this.cachedWrite - this.read) >>> 0;
    }
    return filled;
  }

  /** 'data' if a record is ready, 'closed' if closed and drained, else null. kClosed is loaded BEFORE kWriteIndex. */
  private poll(): RingWaitResult | null {
    if (this.cachedWrite !== this.read) return 'data';
    const closed = Atomics.load(this.header, kClosed) !== 0;
    this.cachedWrite = Atomics.load(this.header, kWriteIndex);
    if (this.cachedWrite !== this.read) return 'data';
    return closed ? 'closed' : null;
  }

  /** The release step: one SeqCst store frees every slot read so far, then a wake-up only if the producer sleeps. */
  private releaseTo(read: number): void {
    this.read = read;
    Atomics.store(this.header, kReadIndex, read);
    if (Atomics.load(this.header, kProducerWaiting) !== 0) {
      Atomics.store(this.header, kProducerWaiting, 0);
      Atomics.notify(this.header, kProducerWaiting);
    }
  }

  /** Copies the next record into `into[0 .. recordSize)` and releases it; false if the ring is empty. */
  tryPop(into: Uint8Array): boolean {
    const size = this.recordSize;
    if (into.length < size) {
      throw ringError(`tryPop target is ${into.length} bytes, expected at least recordSize = ${size}`, { length: into.length, expected: size });
    }
    if (this.filled(1) < 1) return false;
    const bytes = this.bytes;
    const off = (this.read & this.mask) * size;
    for (let k = 0; k < size; k++) into[k] = bytes[off + k];
    this.releaseTo((this.read + 1) | 0);
    return true;
  }

  /**
   * Reads up to `max` records — as many as are ready — calling `read(view, offset, i)` for i = 0,
   * 1, …, then releases them all with one store. Returns how many were consumed (0 if empty). If
   * `read` throws at i, records 0 … i-1 are released, record i stays first in the ring, and the
   * error propagates.
   */
  drain(max: number, read: RecordReader): number {
    checkMax(max);
    const n = Math.min(max, this.filled(max));
    if (n === 0) return 0;
    const view = this.dataView;
    const mask = this.mask;
    const size = this.recordSize;
    const start = this.read;
    let i = 0;
    try {
      for (; i < n; i++) read(view, ((start + i) & mask) * size, i);
    } finally {
      if (i > 0) this.releaseTo((start + i) | 0);
    }
    return n;
  }

  /**
   * Looks at up to `max` ready records without a callback: returns how many (n); read record i
   * (0 ≤ i < n) at `offsetOf(i)` in `bytes` / `int32` / `dataView`, then `release(k)` with k ≤ n.
   */
  peek(max: number): number {
    checkMax(max);
    return Math.min(max, this.filled(max));
  }

  /** Byte offset in the record area of the i-th unreleased record. */
  offsetOf(i: number): number {
    return ((this.read + i) & this.mask) * this.recordSize;
  }

  /** Releases the first `count` records seen by the last peek() (count ≤ what it returned) with one store; their slots may be overwritten at once. */
  release(count: number): void {
    const filled = (this.cachedWrite - this.read) >>> 0;
    if (!(count >= 0 && count <= filled && Number.isInteger(count))) checkCount('count', count, filled);
    if (count > 0) this.releaseTo((this.read + count) | 0);
  }

  /**
   * Waits without blocking the event loop (Atomics.waitAsync) until a record is ready ('data'),
   * the producer has closed the ring and everything is consumed ('closed'), or `timeoutMs` passes
   * ('timeout'). Allocates (a promise, a timer that keeps the event loop alive while asleep): not
   * for the hot path — call it after drain/tryPop found the ring empty. One waiter at a time.
   */
  async waitForData(timeoutMs = Infinity): Promise<RingWaitResult> {
    checkTimeout(timeoutMs);
    const ready = this.poll();
    if (ready !== null) return ready;
    const wait = requireWaitAsync();
    const deadline = performance.now() + timeoutMs;
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    try {
      for (;;) {
        const remaining = deadline - performance.now();
        if (remaining <= 0) return 'timeout';
        Atomics.store(this.header, kConsumerWaiting, 1);
        const seen = this.poll();
        if (seen !== null) {
          Atomics.store(this.header, kConsumerWaiting, 0);
          return seen;
        }
        keepAlive ??= setInterval(noop, MAX_TIMER_MS);
        const r = wait(this.header, kConsumerWaiting, 1, remaining);
        if (r.async) await r.value;
        Atomics.store(this.header, kConsumerWaiting, 0);
        const after = this.poll();
        if (after !== null) return after;
      }
    } finally {
      if (keepAlive !== undefined) clearInterval(keepAlive);
    }
  }

  /**
   * Like waitForData but blocks the calling thread (Atomics.wait), after a short spin. For a
   * consumer in a worker: on the main thread it would freeze the event loop.
   */
  waitForDataSync(timeoutMs = Infinity): RingWaitResult {
    checkTimeout(timeoutMs);
    for (let spin = 0; spin < SPIN_BEFORE_SLEEP; spin++) {
      const ready = this.poll();
      if (ready !== null) return ready;
    }
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) return 'timeout';
      Atomics.store(this.header, kConsumerWaiting, 1);
      const seen = this.poll();
      if (seen !== null) {
        Atomics.store(this.header, kConsumerWaiting, 0);
        return seen;
      }
      Atomics.wait(this.header, kConsumerWaiting, 1, remaining);
      Atomics.store(this.header, kConsumerWaiting, 0);
      const after = this.poll();
      if (after !== null) return after;
    }
  }
}

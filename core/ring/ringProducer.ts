/**
 * The producing view of an SPSC ring. The rules of concurrent use are at the top of spscRing.ts:
 * read them before changing anything here.
 */
import { performance } from 'node:perf_hooks';
import { MAX_TIMER_MS, RingView, SPIN_BEFORE_SLEEP, checkCount, checkMax, checkTimeout, kClosed, kConsumerWaiting, kProducerClaim, kProducerWaiting, kReadIndex, kWriteIndex, noop, requireWaitAsync, ringError } from './spscRing.js';
import type { RecordWriter } from './spscRing.js';

/**
 * The producing side of a ring. Construct it in the producing thread from the SAB (send the SAB
 * with workerData / postMessage); at most one per ring.
 */
export class RingProducer extends RingView {
  /** Count of records published (mod 2^32); a copy of kWriteIndex, which only this side writes. */
  private write: number;
  /** The consumer's kReadIndex as last loaded; re-loaded only when the ring looks full. */
  private cachedRead: number;
  private isClosed = false;

  /** Claims the producer role of the ring at `byteOffset`. Allocates views: construct once, not on the hot path. */
  constructor(sab: SharedArrayBuffer, byteOffset = 0) {
    super(sab, byteOffset, kProducerClaim, 'producer');
    this.write = Atomics.load(this.header, kWriteIndex);
    this.cachedRead = Atomics.load(this.header, kReadIndex);
    this.isClosed = Atomics.load(this.header, kClosed) !== 0;
  }

  /** Free slots now (re-loads the consumer's index). */
  get available(): number {
    this.cachedRead = Atomics.load(this.header, kReadIndex);
    return this.capacity - ((this.write - this.cachedRead) >>> 0);
  }

  /** Free slots, re-loading the consumer's index only if fewer than `wanted` are known free. */
  private free(wanted: number): number {
    let free = this.capacity - ((this.write - this.cachedRead) >>> 0);
    if (free < wanted) {
      this.cachedRead = Atomics.load(this.header, kReadIndex);
      free = this.capacity - ((this.write - this.cachedRead) >>> 0);
    }
    return free;
  }

  private checkOpen(): void {
    if (this.isClosed) throw ringError(`cannot push to the ring at byteOffset ${this.byteOffset}: the producer has closed it`, { byteOffset: this.byteOffset, expected: 'an open ring' });
  }

  /** The publish step: one SeqCst store makes every record written so far visible, then a wake-up only if the consumer sleeps. */
  private publish(write: number): void {
    this.write = write;
    Atomics.store(this.header, kWriteIndex, write);
    if (Atomics.load(this.header, kConsumerWaiting) !== 0) this.wakeConsumer();
  }

  private wakeConsumer(): void {
    Atomics.store(this.header, kConsumerWaiting, 0);
    Atomics.notify(this.header, kConsumerWaiting);
  }

  /** Copies one record (exactly recordSize bytes) into the ring and publishes it; false if the ring is full. */
  tryPush(record: Uint8Array): boolean {
    if (record.length !== this.recordSize) {
      throw ringError(`record is ${record.length} bytes, expected exactly recordSize = ${this.recordSize}`, { length: record.length, expected: this.recordSize });
    }
    this.checkOpen();
    if (this.free(1) < 1) return false;
    this.bytes.set(record, (this.write & this.mask) * this.recordSize);
    this.publish((this.write + 1) | 0);
    return true;
  }

  /** Lets `write` fill one record in place and publishes it; false (and `write` is not called) if the ring is full. */
  tryPushWith(write: RecordWriter): boolean {
    this.checkOpen();
    if (this.free(1) < 1) return false;
    write(this.dataView, (this.write & this.mask) * this.recordSize, 0);
    this.publish((this.write + 1) | 0);
    return true;
  }

  /**
   * Writes up to `max` records in place — as many as are free — calling `write(view, offset, i)`
   * for i = 0, 1, …, then publishes them all with one store. Returns how many were written (0 if
   * full). If `write` throws at i, records 0 … i-1 are published and the error propagates.
   */
  pushWith(max: number, write: RecordWriter): number {
    checkMax(max);
    this.checkOpen();
    const n = Math.min(max, this.free(max));
    if (n === 0) return 0;
    const view = this.dataView;
    const mask = this.mask;
    const size = this.recordSize;
    const start = this.write;
    let i = 0;
    try {
      for (; i < n; i++) write(view, ((start + i) & mask) * size, i);
    } finally {
      if (i > 0) this.publish((start + i) | 0);
    }
    return n;
  }

  /**
   * Reserves up to `max` free slots without a callback: returns how many (n); fill record i
   * (0 ≤ i < n) at `offsetOf(i)` in `bytes` / `int32` / `dataView`, then `commit(k)` with k ≤ n.
   * Nothing is visible to the consumer before commit.
   */
  reserve(max: number): number {
    checkMax(max);
    this.checkOpen();
    return Math.min(max, this.free(max));
  }

  /** Byte offset in the record area of the i-th record after the last published one. */
  offsetOf(i: number): number {
    return ((this.write + i) & this.mask) * this.recordSize;
  }

  /** Publishes the first `count` records reserved by the last reserve() (count ≤ what it returned) with one store. */
  commit(count: number): void {
    const free = this.capacity - ((this.write - this.cachedRead) >>> 0);
    if (!(count >= 0 && count <= free && Number.isInteger(count))) checkCount('count', count, free);
    if (count > 0) this.publish((this.write + count) | 0);
  }

  /**
   * Says "no more records": the consumer sees `closed`, and `ended` / waits return 'closed' once
   * it has consumed everything published before. Idempotent. Pushing after close throws.
   */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    Atomics.store(this.header, kClosed, 1);
    if (Atomics.load(this.header, kConsumerWaiting) !== 0) this.wakeConsumer();
  }

  /**
   * Blocks the calling thread (Atomics.wait) until at least `minFree` slots are free or
   * `timeoutMs` passes; true if they are free. Spins briefly first. For a producer in a worker:
   * on the main thread it would freeze the event loop.
   */
  waitForSpaceSync(timeoutMs = Infinity, minFree = 1): boolean {
    checkTimeout(timeoutMs);
    checkCount('minFree', minFree, this.capacity);
    for (let spin = 0; spin < SPIN_BEFORE_SLEEP; spin++) if (this.free(minFree) >= minFree) return true;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const remaining = deadline - performance.now();
      if (remaining <= 0) return false;
      Atomics.store(this.header, kProducerWaiting, 1);
      if (this.available >= minFree) {
        Atomics.store(this.header, kProducerWaiting, 0);
        return true;
      }
      Atomics.wait(this.header, kProducerWaiting, 1, remaining);
      Atomics.store(this.header, kProducerWaiting, 0);
      if (this.available >= minFree) return true;
    }
  }

  /**
   * Waits without blocking the event loop (Atomics.waitAsync) until at least `minFree` slots are
   * free or `timeoutMs` passes; resolves true if they are free. Allocates (a promise, a timer that
   * keeps the event loop alive): not for the hot path — call it after a push returned false/0.
   */
  async waitForSpace(timeoutMs = Infinity, minFree = 1): Promise<boolean> {
    checkTimeout(timeoutMs);
    checkCount('minFree', minFree, this.capacity);
    if (this.available >= minFree) return true;
    const wait = requireWaitAsync();
    const deadline = performance.now() + timeoutMs;
    let keepAlive: ReturnType<typeof setInterval> | undefined;
    try {
      for (;;) {
        const remaining = deadline - performance.now();
        if (remaining <= 0) return false;
        Atomics.store(this.header, kProducerWaiting, 1);
        if (this.available >= minFree) {
          Atomics.store(this.header, kProducerWaiting, 0);
          return true;
        }
        keepAlive ??= setInterval(noop, MAX_TIMER_MS);
        const r = wait(this.header, kProducerWaiting, 1, remaining);
        if (r.async) await r.value;
        Atomics.store(this.header, kProducerWaiting, 0);
        if (this.available >= minFree) return true;
      }
    } finally {
      if (keepAlive !== undefined) clearInterval(keepAlive);
    }
  }
}

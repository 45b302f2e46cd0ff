/**
 * Tests of the SPSC ring (core/ring): geometry validation, an exhaustive single-thread model check
 * (catches off-by-ones at full/empty and at the 2^32 counter wrap), the close flag, waiting
 * without blocking the event loop, and cross-thread stress runs with real workers — millions of
 * records through small rings laid out between canaries, with the slow side on either end.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { isRaError } from '../../core/errors.js';
import { RingConsumer, RingProducer, SpscRing } from '../../core/ring/index.js';
import { Prng, fillRecord, payloadWord, verifyRecord } from '../fixtures/ringPrng.js';
import { ConsumerWorkload, ProducerWorkload, SlowWaits, WAIT_SLICE_MS, type WorkloadOptions, type WorkloadResult } from '../fixtures/ringWorkload.js';

const producerUrl = new URL('../fixtures/ringProducer.js', import.meta.url);
const consumerUrl = new URL('../fixtures/ringConsumer.js', import.meta.url);

/** assert.throws / rejects matcher: an RA_ERR_RING error whose message mentions every fragment. */
function ringError(...fragments: string[]): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(isRaError(err, 'RA_ERR_RING'), `expected an RA_ERR_RING error, got ${String(err)}`);
    for (const f of fragments) assert.ok(err.message.includes(f), `message "${err.message}" should mention "${f}"`);
    return true;
  };
}

const CANARY_BYTES = 64;

/** A ring laid out inside a larger SAB, with canary bytes before and after it. */
function canariedRing(capacity: number, recordSize: number, options: { initialIndex?: number } = {}) {
  const ringBytes = SpscRing.bytesFor(capacity, recordSize);
  const sab = new SharedArrayBuffer(CANARY_BYTES + ringBytes + CANARY_BYTES);
  const all = new Uint8Array(sab);
  const pattern = (i: number): number => (0xa5 ^ Math.imul(i, 31)) & 0xff;
  const tail = CANARY_BYTES + ringBytes;
  for (let i = 0; i < CANARY_BYTES; i++) {
    all[i] = pattern(i);
    all[tail + i] = pattern(i + 1000);
  }
  SpscRing.init(sab, CANARY_BYTES, capacity, recordSize, options);
  const checkCanaries = (): void => {
    for (let i = 0; i < CANARY_BYTES; i++) {
      assert.equal(all[i], pattern(i), `canary byte ${i} before the ring was overwritten`);
      assert.equal(all[tail + i], pattern(i + 1000), `canary byte ${i} after the ring was overwritten`);
    }
  };
  return { sab, byteOffset: CANARY_BYTES, checkCanaries };
}

/** Starts a fixture worker; `result` settles with its last message once it exits with code 0. */
function startWorker<T>(url: URL, workerData: unknown): { worker: Worker; result: Promise<T>; failure: () => unknown } {
  const worker = new Worker(url, { workerData });
  let failed: unknown;
  let last: T | undefined;
  worker.on('message', (m: T) => (last = m));
  const result = new Promise<T>((resolve, reject) => {
    worker.once('error', (err) => {
      failed = err;
      reject(err);
    });
    worker.once('exit', (code) => {
      if (code !== 0) {
        failed ??= new Error(`worker exited with code ${code}`);
        reject(failed);
      } else if (last === undefined) reject(new Error('worker exited without a result'));
      else resolve(last);
    });
  });
  result.catch(() => {}); // observed by the test through `result` or `failure`
  return { worker, result, failure: () => failed };
}

/** Runs `body`; if it fails, stops the worker so that a failing test does not leave a thread running. */
async function settle<T>(worker: Worker, body: () => Promise<T>): Promise<T> {
  try {
    return await body();
  } catch (err) {
    await worker.terminate();
    throw err;
  }
}

/** Runs a ConsumerWorkload on the main thread, waiting with waitForData (never blocking the event loop). */
async function consumeOnMain(work: ConsumerWorkload, failure: () => unknown): Promise<WorkloadResult> {
  const slow = new SlowWaits('consumer: waitForData');
  for (;;) {
    if (work.step() !== 0) continue;
    slow.start();
    const seen = await work.consumer.waitForData(WAIT_SLICE_MS);
    if (failure() !== undefined) throw failure();
    slow.end(work.next);
    if (seen === 'closed') return work.finish();
  }
}

/** Runs a ProducerWorkload on the main thread, waiting with waitForSpace, then closes the ring. */
async function produceOnMain(work: ProducerWorkload, failure: () => unknown): Promise<WorkloadResult> {
  const slow = new SlowWaits('producer: waitForSpace');
  while (!work.done) {
    if (work.step() !== 0) continue;
    slow.start();
    await work.producer.waitForSpace(WAIT_SLICE_MS, work.minFree());
    if (failure() !== undefined) throw failure();
    slow.end(work.next);
  }
  work.producer.close();
  return { records: work.next, blocked: work.blocked };
}

describe('SpscRing geometry and validation', () => {
  it('sizes, lays out and reads back a ring', () => {
    assert.equal(SpscRing.bytesFor(8, 16), SpscRing.headerBytes + 128);
    const sab = SpscRing.create(8, 16);
    assert.equal(sab.byteLength, SpscRing.bytesFor(8, 16));
    assert.deepEqual(SpscRing.geometry(sab), { capacity: 8, recordSize: 16, byteOffset: 0, byteLength: SpscRing.headerBytes + 128 });
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    assert.equal(producer.capacity, 8);
    assert.equal(consumer.recordSize, 16);
    assert.equal(producer.available, 8);
    assert.equal(consumer.size, 0);
    assert.equal(producer.bytes.byteLength, 128);
  });

  it('rejects a capacity that is not a power of two in [2, 2^30], naming it', () => {
    for (const capacity of [0, 1, 3, 100, 2 ** 31, 1.5, -4, Number.NaN]) {
      assert.throws(() => SpscRing.bytesFor(capacity, 16), ringError(`got ${String(capacity)}`, 'power of two'));
    }
  });

  it('rejects a recordSize that is not a multiple of 4 in [4, 65536], naming it', () => {
    for (const recordSize of [0, 2, 6, 65540, 1.5, -8]) {
      assert.throws(() => SpscRing.bytesFor(8, recordSize), ringError(`got ${String(recordSize)}`, 'multiple of 4'));
    }
    assert.throws(() => SpscRing.bytesFor(2 ** 20, 2048), ringError('2^30', `${2 ** 20} × 2048`));
  });

  it('rejects a bad placement: misaligned or negative offset, too small, not shared', () => {
    const need = SpscRing.bytesFor(8, 16);
    const sab = new SharedArrayBuffer(need + 64);
    assert.throws(() => SpscRing.init(sab, 4, 8, 16), ringError('got 4', 'multiple of 8'));
    assert.throws(() => SpscRing.init(sab, -8, 8, 16), ringError('got -8'));
    assert.throws(() => SpscRing.init(sab, 72, 8, 16), ringError(`needs ${need} bytes at byteOffset 72`, `only ${need + 64} bytes`));
    assert.throws(() => SpscRing.init(new ArrayBuffer(need) as unknown as SharedArrayBuffer, 0, 8, 16), ringError('SharedArrayBuffer', 'ArrayBuffer'));
    assert.throws(() => SpscRing.init(sab, 0, 8, 16, { initialIndex: 2 ** 32 }), ringError('initialIndex', `got ${2 ** 32}`));
  });

  it('refuses views over memory that holds no ring, and a second producer or consumer', () => {
    const blank = new SharedArrayBuffer(4096);
    assert.throws(() => new RingConsumer(blank, 0), ringError('no ring at byteOffset 0', 'magic'));
    assert.throws(() => new RingProducer(blank, 8), ringError('no ring at byteOffset 8'));
    const sab = SpscRing.create(4, 8);
    new RingProducer(sab);
    new RingConsumer(sab);
    assert.throws(() => new RingProducer(sab), ringError('already has a producer'));
    assert.throws(() => new RingConsumer(sab), ringError('already has a consumer'));
  });

  it('rejects records, targets and counts that do not fit', async () => {
    const sab = SpscRing.create(4, 8);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    assert.throws(() => producer.tryPush(new Uint8Array(4)), ringError('record is 4 bytes', 'recordSize = 8'));
    assert.throws(() => producer.tryPush(new Uint8Array(12)), ringError('record is 12 bytes'));
    assert.equal(producer.reserve(2), 2);
    assert.throws(() => producer.commit(5), ringError('count', 'got 5'));
    producer.commit(2);
    assert.throws(() => producer.pushWith(-1, () => {}), ringError('max', 'got -1'));
    assert.throws(() => consumer.tryPop(new Uint8Array(7)), ringError('target is 7 bytes', 'recordSize = 8'));
    assert.equal(consumer.peek(10), 2);
    assert.throws(() => consumer.release(3), ringError('count', 'got 3'));
    assert.throws(() => consumer.drain(1.5, () => {}), ringError('max', 'got 1.5'));
    await assert.rejects(consumer.waitForData(-1), ringError('timeoutMs', 'got -1'));
    assert.throws(() => producer.waitForSpaceSync(0, 5), ringError('minFree', 'got 5'));
    assert.equal(consumer.size, 2, 'failed calls consume nothing');
  });
});

describe('SpscRing single-thread model check', () => {
  // Every API on both sides against an array model, with the counters starting at 0, just below
  // the int32 sign flip and just below the 2^32 wrap. Catches any off-by-one at full / empty /
  // wrap: tryPush must fail exactly when the model holds `capacity` records, and so on.
  for (const initialIndex of [0, 2 ** 31 - 5, 2 ** 32 - 7]) {
    for (const capacity of [2, 8]) {
      it(`matches a queue model (capacity ${capacity}, counters from ${initialIndex})`, () => {
        const words = 3;
        const seed = 0xc0ffee;
        const { sab, byteOffset, checkCanaries } = canariedRing(capacity, words * 4, { initialIndex });
        const producer = new RingProducer(sab, byteOffset);
        const consumer = new RingConsumer(sab, byteOffset);
        const rng = new Prng(initialIndex ^ capacity);
        const scratch = new Uint8Array(words * 4);
        const scratchI32 = new Int32Array(scratch.buffer);
        let produced = 0; // next seq to push
        let consumed = 0; // next seq expected
        for (let step = 0; step < 6000; step++) {
          const held = produced - consumed;
          assert.equal(producer.available, capacity - held, `available at step ${step}`);
          assert.equal(consumer.size, held, `size at step ${step}`);
          const want = rng.int(0, capacity + 2);
          const op = rng.int(0, 7);
          if (op === 0) {
            const n = producer.pushWith(want, (_v, off, i) => fillRecord(producer.int32, off >> 2, words, seed, produced + i));
            assert.equal(n, Math.min(want, capacity - held), `pushWith(${want}) at step ${step}`);
            produced += n;
          } else if (op === 1) {
            const n = producer.reserve(want);
            assert.equal(n, Math.min(want, capacity - held), `reserve(${want}) at step ${step}`);
            for (let i = 0; i < n; i++) fillRecord(producer.int32, producer.offsetOf(i) >> 2, words, seed, produced + i);
            const k = rng.int(0, n);
            producer.commit(k);
            produced += k;
          } else if (op === 2) {
            fillRecord(scratchI32, 0, words, seed, produced);
            const ok = producer.tryPush(scratch);
            assert.equal(ok, held < capacity, `tryPush with ${held} held at step ${step}`);
            if (ok) produced++;
          } else if (op === 3) {
            let called = false;
            const ok = producer.tryPushWith((v, off) => {
              called = true;
              // seq through the DataView, payload through int32: both must alias the same slot
              v.setInt32(off, produced, true);
              for (let k = 1; k < words; k++) producer.int32[(off >> 2) + k] = payloadWord(seed, produced, k);
            });
            assert.equal(ok, held < capacity, `tryPushWith with ${held} held at step ${step}`);
            assert.equal(called, ok, 'the writer runs only when there is room');
            if (ok) produced++;
          } else if (op === 4) {
            const n = consumer.drain(want, (_v, off, i) => verifyRecord(consumer.int32, off >> 2, words, seed, consumed + i));
            assert.equal(n, Math.min(want, held), `drain(${want}) at step ${step}`);
            consumed += n;
          } else if (op === 5) {
            const n = consumer.peek(want);
            assert.equal(n, Math.min(want, held), `peek(${want}) at step ${step}`);
            for (let i = 0; i < n; i++) verifyRecord(consumer.int32, consumer.offsetOf(i) >> 2, words, seed, consumed + i);
            const k = rng.int(0, n);
            consumer.release(k);
            consumed += k;
          } else {
            scratch.fill(0xee);
            const ok = consumer.tryPop(scratch);
            assert.equal(ok, held > 0, `tryPop with ${held} held at step ${step}`);
            if (ok) verifyRecord(scratchI32, 0, words, seed, consumed++);
          }
        }
        assert.ok(produced > 10 * capacity, 'the ring wrapped many times');
        checkCanaries();
      });
    }
  }

  it('a reader that throws keeps the failing record and releases the ones before it', () => {
    const sab = SpscRing.create(8, 4);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    assert.equal(producer.pushWith(5, (v, off, i) => v.setInt32(off, i, true)), 5);
    assert.throws(() =>
      consumer.drain(5, (v, off) => {
        if (v.getInt32(off, true) === 2) throw new Error('boom');
      }),
    );
    assert.equal(consumer.size, 3);
    const seen: number[] = [];
    consumer.drain(10, (v, off) => seen.push(v.getInt32(off, true)));
    assert.deepEqual(seen, [2, 3, 4]);
  });
});

describe('SpscRing close flag', () => {
  it('lets the consumer take everything published before close, then reports closed', async () => {
    const sab = SpscRing.create(8, 4);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    assert.equal(producer.pushWith(3, (v, off, i) => v.setInt32(off, 10 + i, true)), 3);
    assert.equal(consumer.closed, false);
    producer.close();
    producer.close(); // idempotent
    assert.equal(consumer.closed, true);
    assert.equal(consumer.ended, false, 'not ended while records remain');
    assert.equal(await consumer.waitForData(0), 'data');
    assert.equal(consumer.waitForDataSync(0), 'data');
    const seen: number[] = [];
    assert.equal(consumer.drain(2, (v, off) => seen.push(v.getInt32(off, true))), 2);
    assert.equal(consumer.ended, false);
    assert.equal(consumer.drain(10, (v, off) => seen.push(v.getInt32(off, true))), 1);
    assert.deepEqual(seen, [10, 11, 12]);
    assert.equal(consumer.ended, true);
    assert.equal(await consumer.waitForData(1000), 'closed');
    assert.equal(consumer.waitForDataSync(1000), 'closed');
    assert.throws(() => producer.tryPush(new Uint8Array(4)), ringError('closed'));
    assert.throws(() => producer.pushWith(1, () => {}), ringError('closed'));
  });
});

describe('SpscRing waiting', { timeout: 20_000 }, () => {
  it('waitForData times out on an empty ring without blocking the event loop', async () => {
    const sab = SpscRing.create(4, 4);
    new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const t0 = performance.now();
      assert.equal(await consumer.waitForData(150), 'timeout');
      const elapsed = performance.now() - t0;
      assert.ok(elapsed >= 140, `waited ${elapsed} ms, expected about 150`);
      assert.ok(ticks >= 3, `the event loop ticked only ${ticks} times during a 150 ms wait (a blocking wait would give 0)`);
    } finally {
      clearInterval(timer);
    }
  });

  it('waitForData resolves when a worker publishes, and the event loop keeps ticking meanwhile', async () => {
    const { sab, byteOffset, checkCanaries } = canariedRing(4, 8);
    const consumer = new RingConsumer(sab, byteOffset);
    const { result } = startWorker<{ records: number }>(producerUrl, { role: 'ring-producer-delayed', sab, byteOffset, delayMs: 200, records: 1, close: false });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const t0 = performance.now();
      assert.equal(await consumer.waitForData(5000), 'data');
      const elapsed = performance.now() - t0;
      assert.ok(elapsed >= 100 && elapsed < 4000, `data arrived after ${elapsed} ms, expected about 200 (worker start-up included)`);
      assert.ok(ticks >= 3, `the event loop ticked only ${ticks} times while waiting (a blocking wait would give 0)`);
    } finally {
      clearInterval(timer);
    }
    const seen: number[] = [];
    assert.equal(consumer.drain(4, (v, off) => seen.push(v.getInt32(off, true))), 1);
    assert.deepEqual(seen, [0]);
    assert.deepEqual(await result, { records: 1 });
    assert.equal(await consumer.waitForData(30), 'timeout', 'not closed: a later wait times out');
    checkCanaries();
  });

  it('close wakes a consumer asleep in waitForData', async () => {
    const sab = SpscRing.create(4, 4);
    const consumer = new RingConsumer(sab);
    const { result } = startWorker(producerUrl, { role: 'ring-producer-delayed', sab, byteOffset: 0, delayMs: 100, records: 0, close: true });
    const t0 = performance.now();
    assert.equal(await consumer.waitForData(5000), 'closed');
    assert.ok(performance.now() - t0 < 4000);
    await result;
  });

  it('waitForSpace / waitForSpaceSync time out on a full ring and wake when the consumer frees a slot', async () => {
    const sab = SpscRing.create(4, 4);
    const producer = new RingProducer(sab);
    const consumer = new RingConsumer(sab);
    assert.equal(producer.pushWith(10, () => {}), 4);
    assert.equal(producer.waitForSpaceSync(20), false);
    assert.equal(await producer.waitForSpace(20), false);
    setTimeout(() => consumer.drain(1, () => {}), 30);
    const t0 = performance.now();
    assert.equal(await producer.waitForSpace(5000), true);
    assert.ok(performance.now() - t0 < 4000);
    assert.equal(producer.available, 1);
    setTimeout(() => consumer.drain(2, () => {}), 30);
    assert.equal(await producer.waitForSpace(5000, 3), true, 'minFree 3 is reached after the second drain');
    assert.equal(producer.available, 3);
  });
});

describe('SpscRing across threads', { timeout: 60_000 }, () => {
  const base = (records: number, side: number, over: Partial<WorkloadOptions>): WorkloadOptions => ({
    records,
    payloadSeed: 0x5eed ^ records,
    rngSeed: 0x1234 + side * 0x9e37,
    maxBatch: 32,
    stallChance: 0,
    stallMicros: 1,
    ...over,
  });

  it('slow consumer: 2M records from a worker through a 64-slot ring to the main thread', async () => {
    const records = 2_000_000;
    const { sab, byteOffset, checkCanaries } = canariedRing(64, 24);
    const consumer = new RingConsumer(sab, byteOffset);
    const producerSide = startWorker<WorkloadResult>(producerUrl, { role: 'ring-producer', sab, byteOffset, workload: base(records, 1, { maxBatch: 100 }) });
    const [got, sent] = await settle(producerSide.worker, async () => [
      await consumeOnMain(new ConsumerWorkload(consumer, base(records, 2, { maxBatch: 48, stallChance: 0.01, stallMicros: 40 })), producerSide.failure),
      await producerSide.result,
    ]);
    assert.equal(got.records, records);
    assert.equal(sent.records, records);
    assert.ok(sent.blocked > 1000, `the producer found the ring full only ${sent.blocked} times`);
    checkCanaries();
  });

  it('slow producer: 400k records from a stalling worker to a main-thread consumer that sleeps in waitForData', async () => {
    const records = 400_000;
    const { sab, byteOffset, checkCanaries } = canariedRing(16, 16);
    const consumer = new RingConsumer(sab, byteOffset);
    const producerSide = startWorker<WorkloadResult>(producerUrl, {
      role: 'ring-producer',
      sab,
      byteOffset,
      workload: base(records, 3, { maxBatch: 24, stallChance: 0.02, stallMicros: 40 }),
    });
    const [got, sent] = await settle(producerSide.worker, async () => [
      await consumeOnMain(new ConsumerWorkload(consumer, base(records, 4, { maxBatch: 64 })), producerSide.failure),
      await producerSide.result,
    ]);
    assert.equal(got.records, records);
    assert.equal(sent.records, records);
    assert.ok(got.blocked > 1000, `the consumer found the ring empty only ${got.blocked} times`);
    checkCanaries();
  });

  it('main-thread producer (waitForSpace) to a worker consumer (waitForDataSync), counters crossing 2^32', async () => {
    const records = 600_000;
    const { sab, byteOffset, checkCanaries } = canariedRing(32, 32, { initialIndex: 2 ** 32 - 250_000 });
    const producer = new RingProducer(sab, byteOffset);
    const consumerSide = startWorker<WorkloadResult>(consumerUrl, {
      role: 'ring-consumer',
      sab,
      byteOffset,
      workload: base(records, 5, { maxBatch: 40, stallChance: 0.01, stallMicros: 40 }),
    });
    const [sent, got] = await settle(consumerSide.worker, async () => [
      await produceOnMain(new ProducerWorkload(producer, base(records, 6, { maxBatch: 48, stallChance: 0.005, stallMicros: 40 })), consumerSide.failure),
      await consumerSide.result,
    ]);
    assert.equal(sent.records, records);
    assert.equal(got.records, records);
    assert.ok(sent.blocked > 100, `the producer found the ring full only ${sent.blocked} times`);
    assert.ok(got.blocked > 100, `the consumer found the ring empty only ${got.blocked} times`);
    checkCanaries();
  });
});

/**
 * Records/s from a worker to the main thread: through an SPSC ring over a SharedArrayBuffer vs the
 * same records sent one per `postMessage` (the baseline), and, for context, postMessage of
 * batches and the ring with one publishing store per record (tryPushWith). The main thread reads and checks every record's sequence number and a check word, and
 * fails if any record is lost, duplicated, reordered or corrupted.
 *
 * Run: npm run bench:ring   (env RING_BENCH_RECORDS / RING_BENCH_PM_RECORDS / RING_BENCH_REPEAT
 * override the counts). This one file is both the main script and the worker.
 */
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { RingConsumer, RingProducer, SpscRing } from '../core/ring/index.js';
import { report, type BenchRow } from './lib/report.js';

type Mode = 'ring' | 'postMessage' | 'postMessageBatch';

interface WorkerInput {
  mode: Mode;
  records: number;
  recordSize: number;
  batch: number;
  sab?: SharedArrayBuffer;
}

/** The check word stored in the last word of every record: a cheap function of the sequence number. */
function checkWord(seq: number): number {
  return Math.imul(seq ^ 0x5bd1e995, 0x9e3779b1) | 0;
}

// ---------------------------------------------------------------- worker side (the producer)

function produce(input: WorkerInput): void {
  const port = parentPort!;
  const words = input.recordSize >> 2;
  const last = words - 1;
  if (input.mode === 'ring') {
    const producer = new RingProducer(input.sab!, 0);
    const i32 = producer.int32;
    let seq = 0;
    const write = (_view: DataView, offset: number, i: number): void => {
      const w = offset >> 2;
      const s = seq + i;
      i32[w] = s;
      for (let k = 1; k < last; k++) i32[w + k] = s + k;
      i32[w + last] = checkWord(s);
    };
    const writeOne = (view: DataView, offset: number): void => write(view, offset, 0);
    port.once('message', () => {
      const total = input.records;
      if (input.batch === 1) {
        // One record per publishing store, through the single-record API.
        while (seq < total) {
          if (producer.tryPushWith(writeOne)) seq++;
          else producer.waitForSpaceSync();
        }
      } else {
        while (seq < total) {
          const n = producer.pushWith(Math.min(input.batch, total - seq), write);
          if (n === 0) producer.waitForSpaceSync();
          else seq += n;
        }
      }
      producer.close();
    });
  } else if (input.mode === 'postMessage') {
    port.once('message', () => {
      for (let s = 0; s < input.records; s++) port.postMessage({ seq: s, a: s + 1, b: s + 2, check: checkWord(s) });
    });
  } else {
    port.once('message', () => {
      for (let s = 0; s < input.records; ) {
        const n = Math.min(input.batch, input.records - s);
        const arr = new Int32Array(n * words);
        for (let r = 0; r < n; r++, s++) {
          const w = r * words;
          arr[w] = s;
          for (let k = 1; k < last; k++) arr[w + k] = s + k;
          arr[w + last] = checkWord(s);
        }
        port.postMessage(arr, [arr.buffer]);
      }
    });
  }
  port.postMessage('ready');
}

// ---------------------------------------------------------------- main side (the consumer)

interface RunResult {
  seconds: number;
  records: number;
}

function startWorker(input: WorkerInput): Promise<Worker> {
  const worker = new Worker(new URL(import.meta.url), { workerData: input });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m) => (m === 'ready' ? resolve(worker) : reject(new Error(`unexpected first message ${String(m)}`))));
  });
}

function finished(worker: Worker): Promise<void> {
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker exited with ${code}`))));
  });
}

async function runRing(records: number, recordSize: number, capacity: number, batch: number): Promise<RunResult> {
  const sab = SpscRing.create(capacity, recordSize);
  const consumer = new RingConsumer(sab, 0);
  const worker = await startWorker({ mode: 'ring', records, recordSize, batch, sab });
  const done = finished(worker);
  const i32 = consumer.int32;
  const last = (recordSize >> 2) - 1;
  let expected = 0;
  let bad = -1;
  const read = (_view: DataView, offset: number): void => {
    const w = offset >> 2;
    if (i32[w] !== expected || i32[w + last] !== checkWord(expected)) {
      if (bad < 0) bad = expected;
    }
    expected++;
  };
  const t0 = performance.now();
  worker.postMessage('go');
  for (;;) {
    if (consumer.drain(capacity, read) === 0 && (await consumer.waitForData()) === 'closed') break;
  }
  const seconds = (performance.now() - t0) / 1000;
  await done;
  if (bad >= 0) throw new Error(`ring: record ${bad} was wrong (lost, duplicated, reordered or corrupted)`);
  if (expected !== records) throw new Error(`ring: consumed ${expected} records, expected ${records}`);
  return { seconds, records };
}

async function runPostMessage(records: number): Promise<RunResult> {
  const worker = await startWorker({ mode: 'postMessage', records, recordSize: 16, batch: 1 });
  const done = finished(worker);
  let expected = 0;
  let bad = -1;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    worker.on('message', (m: { seq: number; a: number; b: number; check: number }) => {
      if (m.seq !== expected || m.check !== checkWord(expected)) {
        if (bad < 0) bad = expected;
      }
      if (++expected === records) resolve();
    });
    worker.postMessage('go');
  });
  const seconds = (performance.now() - t0) / 1000;
  await done;
  if (bad >= 0) throw new Error(`postMessage: record ${bad} was wrong`);
  return { seconds, records };
}

async function runPostMessageBatch(records: number, recordSize: number, batch: number): Promise<RunResult> {
  const worker = await startWorker({ mode: 'postMessageBatch', records, recordSize, batch });
  const done = finished(worker);
  const words = recordSize >> 2;
  const last = words - 1;
  let expected = 0;
  let bad = -1;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    worker.on('message', (arr: Int32Array) => {
      for (let w = 0; w < arr.length; w += words) {
        if (arr[w] !== expected || arr[w + last] !== checkWord(expected)) {
          if (bad < 0) bad = expected;
        }
        expected++;
      }
      if (expected >= records) resolve();
    });
    worker.postMessage('go');
  });
  const seconds = (performance.now() - t0) / 1000;
  await done;
  if (bad >= 0) throw new Error(`postMessage batch: record ${bad} was wrong`);
  if (expected !== records) throw new Error(`postMessage batch: got ${expected} records, expected ${records}`);
  return { seconds, records };
}

async function best(repeat: number, run: () => Promise<RunResult>): Promise<RunResult> {
  let top: RunResult | undefined;
  for (let i = 0; i < repeat; i++) {
    const r = await run();
    if (top === undefined || r.seconds < top.seconds) top = r;
  }
  return top!;
}

function envInt(name: string, fallback: number): number {
  const v = process.env[name];
  return v === undefined || v === '' ? fallback : Number.parseInt(v, 10);
}

async function main(): Promise<void> {
  const ringRecords = envInt('RING_BENCH_RECORDS', 10_000_000);
  const pmRecords = envInt('RING_BENCH_PM_RECORDS', 500_000);
  const repeat = envInt('RING_BENCH_REPEAT', 3);
  const capacity = 4096;
  const pushBatch = 256;
  const pmBatch = 1024;

  const rows: BenchRow[] = [];
  const add = (name: string, r: RunResult, extra: Record<string, number | string> = {}): void => {
    rows.push({ name, value: r.records / r.seconds, unit: 'records/s', extra: { records: r.records, seconds: r.seconds, ...extra } });
  };
  add('postMessage', await best(repeat, () => runPostMessage(pmRecords)), { record: '{seq,a,b,check}' });
  add(`postMessage batch×${pmBatch}`, await best(repeat, () => runPostMessageBatch(pmRecords * 4, 32, pmBatch)), { record: '32 B' });
  const ring32 = await best(repeat, () => runRing(ringRecords, 32, capacity, pushBatch));
  add('ring 32 B', ring32, { record: '32 B', capacity: String(capacity), pushBatch: String(pushBatch) });
  const ring16 = await best(repeat, () => runRing(ringRecords, 16, capacity, pushBatch));
  add('ring 16 B', ring16, { record: '16 B', capacity: String(capacity), pushBatch: String(pushBatch) });
  add('ring 32 B tryPushWith', await best(repeat, () => runRing(ringRecords / 2, 32, capacity, 1)), { record: '32 B', capacity: String(capacity), pushBatch: '1' });

  const base = rows[0].value;
  const met = Math.min(ring32.records / ring32.seconds, ring16.records / ring16.seconds) >= 15 * base;
  report({
    bench: 'ring',
    baseline: 'postMessage',
    rows,
    goal: { description: 'ring ≥ 15× postMessage (both record sizes)', met },
    params: { ringRecords, pmRecords, repeat, capacity, pushBatch, pmBatch },
  });
}

if (isMainThread) {
  await main();
} else {
  produce(workerData as WorkerInput);
}

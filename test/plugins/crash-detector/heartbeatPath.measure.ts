/**
 * Is feeding UDP heartbeats to the detector through a worker and an SPSC ring (core/ring) any
 * faster than handling each datagram on the main thread? Measures both, side by side in one
 * run, with the same sender (a child process):
 *
 * - latency from send to "heartbeat recorded" on the main thread (p50, p99), at a steady rate;
 * - main-thread busy time per datagram (event-loop utilisation × wall time / datagrams), at the
 *   steady rate and in a flood — the cost the detector's other work would feel;
 * - datagrams received in the flood (the kernel drops what a busy receiver does not read).
 *
 *   npm run build:ts && node dist/test/plugins/crash-detector/heartbeatPath.measure.js [--json]
 *
 * Not a *.test.ts file: it measures, it does not assert. The decision it informs is written up
 * in plugins/crash-detector/README.md.
 */
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { RingConsumer, SpscRing } from '../../../core/ring/index.js';
import { kIndexOffset, kSentOffset, RECORD_SIZE, type HeartbeatWorkerData } from '../../fixtures/crash-detector-heartbeat-worker.js';
import { fixture } from '../../helpers/paths.js';

const PROCESSES = 64;
const tokens = Array.from({ length: PROCESSES }, (_, i) => `token-${i.toString(16).padStart(28, '0')}`);

interface Receiver {
  port: number;
  /** Per-process last heartbeat (the detector's state). */
  last: Float64Array;
  latenciesNs: number[];
  received: number;
  close(): Promise<{ dropped: number }>;
}

function record(r: Receiver, i: number, sentNs: bigint): void {
  r.last[i] = performance.now();
  r.received++;
  r.latenciesNs.push(Number(process.hrtime.bigint() - sentNs));
}

async function directReceiver(): Promise<Receiver> {
  const index = new Map(tokens.map((t, i) => [t, i]));
  const socket = dgram.createSocket('udp4');
  const r: Receiver = { port: 0, last: new Float64Array(PROCESSES), latenciesNs: [], received: 0, close: async () => {
    socket.close();
    return { dropped: 0 };
  } };
  socket.on('message', (msg) => {
    const colon = msg.indexOf(0x3a);
    const i = index.get(msg.toString('latin1', 0, colon));
    if (i !== undefined) record(r, i, BigInt(msg.toString('latin1', colon + 1)));
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  r.port = socket.address().port;
  return r;
}

async function ringReceiver(): Promise<Receiver> {
  const sab = SpscRing.create(4096, RECORD_SIZE);
  const consumer = new RingConsumer(sab);
  const worker = new Worker(fixture('crash-detector-heartbeat-worker.js'), { workerData: { sab, tokens } satisfies HeartbeatWorkerData });
  const [ready] = (await once(worker, 'message')) as [{ port: number }];
  const r: Receiver = { port: ready.port, last: new Float64Array(PROCESSES), latenciesNs: [], received: 0, close: async () => {
    worker.postMessage('close');
    const [m] = (await once(worker, 'message')) as [{ dropped: number }];
    await loop;
    await worker.terminate();
    return m;
  } };
  const loop = (async () => {
    for (;;) {
      const n = consumer.drain(256, (view, off) => record(r, view.getInt32(off + kIndexOffset, true), view.getBigInt64(off + kSentOffset, true)));
      if (n === 0 && (await consumer.waitForData()) === 'closed') return;
    }
  })();
  return r;
}

async function run(make: () => Promise<Receiver>, sender: { rate: number; seconds?: number; count?: number }) {
  const r = await make();
  const elu0 = performance.eventLoopUtilization();
  const child = spawn(process.execPath, [fixture('crash-detector-heartbeat-sender.js'), JSON.stringify({ port: r.port, tokens, ...sender })], { stdio: 'inherit' });
  await once(child, 'exit');
  await new Promise((res) => setTimeout(res, 100)); // let the last datagrams arrive
  const elu = performance.eventLoopUtilization(elu0);
  const { dropped } = await r.close();
  const sorted = r.latenciesNs.sort((a, b) => a - b);
  const pct = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! / 1000 : NaN);
  return {
    received: r.received,
    ringDropped: dropped,
    p50Us: Math.round(pct(0.5)),
    p99Us: Math.round(pct(0.99)),
    mainBusyUsPerDatagram: r.received ? Math.round(((elu.active * 1000) / r.received) * 100) / 100 : NaN,
  };
}

const rounds = 3;
const results: Record<string, Array<Awaited<ReturnType<typeof run>>>> = {};
for (let round = 0; round < rounds; round++) {
  for (const [name, make] of [['direct', directReceiver], ['ring', ringReceiver]] as const) {
    (results[`${name} @2000/s`] ??= []).push(await run(make, { rate: 2000, seconds: 2 }));
    (results[`${name} flood 100k`] ??= []).push(await run(make, { rate: 0, count: 100_000 }));
  }
}
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const table = Object.entries(results).map(([name, rs]) => ({
  path: name,
  received: median(rs.map((x) => x.received)),
  'p50 µs': median(rs.map((x) => x.p50Us)),
  'p99 µs': median(rs.map((x) => x.p99Us)),
  'main busy µs/datagram': median(rs.map((x) => x.mainBusyUsPerDatagram)),
}));
if (process.argv.includes('--json')) process.stdout.write(JSON.stringify({ rounds, processes: PROCESSES, table, results }, null, 2) + '\n');
else console.table(table);

/**
 * The writer of the fault tests and `bench/failover.ts`, run by each agent as its supervised
 * application (`--control`: a fenced primary takes its lease grants over the control socket).
 * It is `ackWriter.ts --resume` plus what the overlapping-epoch checker needs: each line goes to
 * `--record FILE` (appended with a synchronous write, so a SIGKILL loses no line already
 * acknowledged, and the agent's 8 MiB output-file rotation cannot drop any), and each
 * acknowledgement carries the epoch the owner acknowledged it under and a CLOCK_MONOTONIC stamp
 * (`process.hrtime.bigint()`: one clock for every process of the host, so stamps of different
 * nodes and of the test compare).
 *
 *   node faultWriter.js --store DIR --record FILE [--concurrency 4]
 *
 * Lines:  `run <pid> <node>` · `start <page> <value>` (every page as the store opened, after its
 * recovery, before this run wrote) · `opened <ns> <epoch>` · `acked <seq> <page> <epoch> <ns>`
 * (stamped once `commit()` resolved) · `refused <seq> <code> <ns>` (a commit that failed: its
 * outcome is unknown, so it is no acknowledgement; the writer goes on after 100 ms).
 *
 * Transaction `seq` writes seq as a u64 at offset 0 of page 1 + seq mod (pages - 1), numbered
 * from the highest value found + 1: with fewer in flight than pages, a page's value only grows,
 * so a page holding less than the highest acknowledged seq for it lost an acknowledged commit.
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { PAGE_HEADER_SIZE } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const dir = arg('store')!;
const fd = fs.openSync(arg('record')!, 'a');
const concurrency = Number(arg('concurrency') ?? 4);
const record = (line: string): void => void fs.writeSync(fd, `${line}\n`);

record(`run ${process.pid} ${arg('node') ?? '-'}`);
const store = await PageStore.open(dir, { controlSocket: process.argv.includes('--control') });
const slots = store.pageCount - 1;
if (concurrency >= slots) throw new Error('more writers than pages: a page value would not only grow');
/** The epoch this owner acknowledges under: its fence's (a fenced primary), else its log's. */
const epoch = (): number => {
  const s = store.status();
  return s.fence?.enabled ? s.fence.epoch : (s.replication?.epoch ?? 0);
};
const openedNs = process.hrtime.bigint();
let next = 1;
const lines: string[] = [];
for (let page = 1; page <= slots; page++) {
  const v = Number((await store.readPage(page)).image.readBigUInt64LE(PAGE_HEADER_SIZE));
  lines.push(`start ${page} ${v}`);
  next = Math.max(next, v + 1);
}
record(`${lines.join('\n')}\nopened ${openedNs} ${epoch()}`);

let stopping = false;
process.on('SIGTERM', () => (stopping = true));

async function one(seq: number): Promise<void> {
  const page = 1 + (seq % slots);
  const v = Buffer.alloc(8);
  v.writeBigUInt64LE(BigInt(seq));
  try {
    const tx = store.begin();
    await tx.write(page, 0, v);
    await tx.commit();
  } catch (err) {
    record(`refused ${seq} ${(err as { code?: string }).code ?? 'error'} ${process.hrtime.bigint()}`);
    await sleep(100);
    return;
  }
  record(`acked ${seq} ${page} ${epoch()} ${process.hrtime.bigint()}`);
}

await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (!stopping) await one(next++);
  }),
);
await store.close();
record('done');

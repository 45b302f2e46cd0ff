/**
 * A writer for the replication end-to-end tests, run by a primary agent as a supervised process:
 * it commits transactions on `--store` as fast as `--concurrency` lets it and prints each one on
 * stdout only once `commit()` has resolved — "acked <seq> <page>" — so the lines are the
 * acknowledged commits (stdout is a file under the agent's data dir; Node writes it
 * synchronously). Transaction `seq` writes seq as a u64 at offset 0 of page 1 + seq mod
 * (pages - 1); with fewer transactions in flight than pages, a page's value only grows, so a
 * page holding less than the highest acknowledged seq for it lost an acknowledged commit.
 *
 *   node ackWriter.js --store DIR [--concurrency 4] [--mixed] [--control] [--idle]
 *
 * --control: serve the store's control socket (a fenced primary needs it for its lease grants).
 * --idle: open the store (its recovery runs), print "ready", write nothing, close on SIGTERM.
 * --resume: after the open (recovery done), print every page's value as "start <page> <value>",
 * then number transactions from the highest value + 1, so values still only grow when a new
 * primary's writer takes over a store; the "start" lines are the store as the new primary
 * opened it, before its writer changed anything (what a failover test checks acks against).
 *
 * --mixed: also aborts every fifth transaction after its write, and writes a second random-length
 * run of bytes (derived from seq) at a later offset, so the log holds aborts, compensation
 * records and changes of several sizes.
 */
import { PAGE_HEADER_SIZE } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const dir = arg('store')!;
const concurrency = Number(arg('concurrency') ?? 4);
const mixed = process.argv.includes('--mixed');
const limit = Number(arg('limit') ?? Infinity);

const idle = process.argv.includes('--idle');
const store = await PageStore.open(dir, { controlSocket: process.argv.includes('--control') });
const slots = store.pageCount - 1;
if (concurrency >= slots) throw new Error('more writers than pages: a page value would not only grow');
let next = 1;
if (process.argv.includes('--resume')) {
  const lines: string[] = [];
  for (let page = 1; page <= slots; page++) {
    const v = Number((await store.readPage(page)).image.readBigUInt64LE(PAGE_HEADER_SIZE));
    lines.push(`start ${page} ${v}\n`);
    next = Math.max(next, v + 1);
  }
  process.stdout.write(lines.join(''));
}
process.stdout.write(`ready ${process.pid}\n`);

let stopping = false;
let wake = (): void => undefined;
process.on('SIGTERM', () => {
  stopping = true;
  wake();
});
if (idle) await new Promise<void>((r) => (wake = r));

async function one(seq: number): Promise<void> {
  const page = 1 + (seq % slots);
  const tx = store.begin();
  const v = Buffer.alloc(8);
  v.writeBigUInt64LE(BigInt(seq));
  await tx.write(page, 0, v);
  if (mixed) {
    const len = 16 + ((seq * 7919) % 600);
    await tx.write(page, 64 + ((seq * 31) % 1024), Buffer.alloc(len, seq & 0xff));
    if (seq % 5 === 0) {
      await tx.abort();
      return;
    }
  }
  await tx.commit();
  process.stdout.write(`acked ${seq} ${page}\n`);
}

await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (!stopping && next <= limit) await one(next++);
  }),
);
await store.close();
process.stdout.write('done\n');

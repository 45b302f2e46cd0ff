/**
 * The chaos harness's application (bench/chaos/, test/chaos/chaos.test.ts): a writer the agent
 * supervises, that tells the harness what it does by appending JSON lines to `--record FILE`.
 * It speaks the crash harness's messages (test/crash/pattern.ts `WriterMessage`: `commit-req`
 * before commit() is called, `ack` after it resolved, `abort`), so the crash harness's model
 * (`CrashModel`) judges the history; plus one line of its own after each open:
 *
 *   { t: 'opened', runId, pid, stamps }   stamps[p]: the stamp page p held as this run opened the
 *                                         store (after its recovery), null for a mixed payload
 *
 * which lets the harness check every recovery along the way, not only the last one.
 *
 * Lines are written with fs.writeSync to a file opened for append: a line is in the kernel
 * before whatever the writer did next, so a SIGKILL loses no line, and the agent restarting the
 * writer (a new run) only appends. The run id is one more than the `opened` lines already in the
 * file, so stamps (pattern.ts `makeStamp(run, counter)`) never repeat across runs.
 *
 * Transactions: 1–3 distinct pages, each given its whole pattern for the transaction's stamp in
 * one write; about 10 % abort. The last `--cold N` pages get 1 % of the writes: they hold data
 * and have a WAL history, but their copy on disk stays put for seconds, so damage the harness
 * does to one is not overwritten by the writer's next checkpoint before a scrub can see it. A page the store refuses as corrupt (RA_ERR_PAGE_CORRUPT: the agent
 * repairs it) aborts the transaction before its commit-req, as does a deadlock. The store is
 * opened with the WAL archiver (the store's snapshots dir) and the control socket, so the agent
 * can checkpoint, snapshot and repair it while it runs; it sends UDP heartbeats when the agent
 * gives it RECOVERY_AGENT_HEARTBEAT. Faults the harness arms in the writer itself (a leak, a
 * deadlock drill, a work loop stuck while the heartbeat goes on) are writerFaults.ts's. SIGTERM: the workers stop, the store is closed, `closed`.
 *
 *   node dist/test/chaos/chaosWriter.js --store DIR --archive SNAPDIR --record FILE
 *        [--seed S] [--pages 64] [--concurrency 3] [--checkpoint-every-ms 300] [--pause-ms 3] [--cold 0]
 */
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { describeError, isRaError } from '../../core/errors.js';
import { PageStore } from '../../plugins/pagestore/pageStore.js';
import { startHeartbeat } from '../../plugins/crash-detector/heartbeatClient.js';
import { walArchiver } from '../../plugins/snapshot-manager/walArchive.js';
import { Prng, decodePayload, makeStamp, pagePattern } from '../crash/pattern.js';
import { pagestore } from '../helpers/engine.js';
import { chaosStoreOptions, type ChaosMessage } from './protocol.js';
import { watchWriterFaults } from './writerFaults.js';

async function main(): Promise<void> {
  const { values: args } = parseArgs({
    options: {
      store: { type: 'string' },
      archive: { type: 'string' },
      record: { type: 'string' },
      seed: { type: 'string', default: '1' },
      pages: { type: 'string', default: '64' },
      concurrency: { type: 'string', default: '3' },
      'checkpoint-every-ms': { type: 'string', default: '300' },
      'pause-ms': { type: 'string', default: '3' },
      cold: { type: 'string', default: '0' },
    },
    strict: true,
  });
  if (!args.store || !args.archive || !args.record) {
    process.stderr.write('usage: chaosWriter --store DIR --archive SNAPDIR --record FILE [...]\n');
    process.exit(64);
  }
  const pauseMs = Number(args['pause-ms']);
  const cold = Number(args.cold);
  const existing = fs.existsSync(args.record) ? fs.readFileSync(args.record, 'utf8') : '';
  const runId = (existing.match(/^\{"t":"opened"/gm)?.length ?? 0) + 1;
  const fd = fs.openSync(args.record, 'a');
  const send = (msg: ChaosMessage): void => void fs.writeSync(fd, `${JSON.stringify(msg)}\n`);
  const fatal = (err: unknown): never => {
    send({ t: 'fatal', error: describeError(err) + (err instanceof Error && err.stack ? `\n${err.stack}` : '') });
    process.exit(2);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);

  const heartbeat = startHeartbeat({ intervalMs: 200 });
  const store = await PageStore.open(args.store, { ...chaosStoreOptions(Number(args.pages)), archiver: walArchiver(pagestore, args.archive), controlSocket: true });
  const pageCount = store.pageCount;
  const payloadSize = store.payloadSize;

  // What each page holds after this open's recovery. A page refused as corrupt is read again
  // until the agent has repaired it (through the control socket this store now serves).
  const stamps: Array<number | null> = [0];
  for (let p = 1; p < pageCount; p++) {
    for (let attempt = 0; ; attempt++) {
      const tx = store.begin();
      try {
        stamps.push(decodePayload(await tx.read(p), p).stamp);
        await tx.commit();
        break;
      } catch (err) {
        if (tx.state === 'active') await tx.abort();
        if (!isRaError(err, 'RA_ERR_PAGE_CORRUPT') || attempt >= 600) throw err;
        await sleep(50);
      }
    }
  }
  send({ t: 'opened', runId, pid: process.pid, stamps });

  let stopping = false;
  let counter = 0;
  /** Set by the `hang-work` fault: transactions stop short of their commit, forever (writerFaults.ts). */
  let workHung = false;
  async function transaction(rng: Prng): Promise<void> {
    const stamp = makeStamp(runId, ++counter);
    const n = rng.int(1, 3);
    const pages = new Set<number>();
    const hot = pageCount - 1 - cold;
    while (pages.size < n) pages.add(cold > 0 && rng.chance(0.01) ? rng.int(hot + 1, pageCount - 1) : rng.int(1, hot));
    const tx = store.begin();
    try {
      for (const p of pages) await tx.write(p, 0, pagePattern(payloadSize, stamp, p));
      // Stuck with the transaction open and its locks held; the heartbeat timer goes on.
      if (workHung) await new Promise<never>(() => {});
      if (rng.chance(0.1)) {
        await tx.abort();
        send({ t: 'abort', stamp });
        return;
      }
    } catch (err) {
      // Before the commit-req: a deadlock victim, or a page refused as corrupt (being repaired).
      if (isRaError(err, 'RA_ERR_DEADLOCK') || isRaError(err, 'RA_ERR_PAGE_CORRUPT')) {
        if (tx.state === 'active') await tx.abort();
        send({ t: 'abort', stamp, deadlock: isRaError(err, 'RA_ERR_DEADLOCK') });
        return;
      }
      throw err;
    }
    send({ t: 'commit-req', stamp, pages: [...pages] });
    await tx.commit();
    send({ t: 'ack', stamp });
  }

  const seed = Number(args.seed);
  const workers = Array.from({ length: Number(args.concurrency) }, async (_, i) => {
    const rng = new Prng((seed ^ Math.imul(runId, 0x85ebca6b) ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0);
    while (!stopping) {
      await transaction(rng);
      if (pauseMs > 0) await sleep(rng.int(0, pauseMs * 2));
    }
  });
  const checkpoints = setInterval(() => {
    store.checkpoint().catch((err: unknown) => {
      // The agent's own checkpoint may be running: only a broken store is fatal.
      if (isRaError(err, 'RA_ERR_WAL_WRITE')) fatal(err);
    });
  }, Number(args['checkpoint-every-ms']));
  const stopFaults = watchWriterFaults(args.store, { store, nextStamp: () => makeStamp(runId, ++counter), hot: pageCount - 1 - cold, rng: new Prng(seed ^ runId), send, fatal, hangWork: () => (workHung = true) });
  process.on('SIGTERM', () => (stopping = true));
  await Promise.all(workers);
  stopFaults();
  clearInterval(checkpoints);
  heartbeat?.stop();
  await store.close();
  send({ t: 'closed', runId });
  process.exit(0);
}

await main();

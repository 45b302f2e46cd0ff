/**
 * Faults the chaos writer (chaosWriter.ts) does to itself when the harness arms them: the
 * application misbehaving, which no signal or damaged file can make it do. The harness writes one
 * line to the trial's `writer-fault` file (`armWriterFault`); the writer polls for it every
 * 100 ms, deletes it (so the instance the agent starts next runs clean) and acts:
 *
 *   leak RATE_MIB LIMIT_MIB   its RSS grows by RATE_MIB MiB a second (filled buffers, kept); at
 *                             LIMIT_MIB it does what the OOM killer would make of it: a `fatal`
 *                             line, exit 137
 *   hang-work                 its work loop gets stuck: every worker's next transaction, its pages
 *                             written, waits forever before its commit — while the heartbeat, the
 *                             checkpoints and the control socket go on (a hung application that
 *                             still answers its heartbeat; the agent must see that nothing commits)
 *   deadlock                  two transactions take two pages' locks in opposite orders; the
 *                             store's deadlock detector must abort one (RA_ERR_DEADLOCK) and the
 *                             other commits; a `deadlock-drill` line says after how long
 *
 * Both transactions of the drill speak the history's messages (`abort` with `deadlock: true` for
 * the victim, `commit-req` / `ack` for the other), so the crash model judges them like any other.
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { describeError, isRaError } from '../../core/errors.js';
import type { PageStore } from '../../plugins/pagestore/pageStore.js';
import { pagePattern, type Prng } from '../crash/pattern.js';

/** The writer's own line about a deadlock drill. */
export interface DeadlockDrillMessage {
  t: 'deadlock-drill';
  pages: [number, number];
  /** Both lock requests made → the victim's RA_ERR_DEADLOCK, in ms (null: no victim). */
  victimMs: number | null;
  /** The stamp that committed, or null when neither did. */
  committed: number | null;
  error?: string;
}

/** The file the harness arms a writer fault with: next to the store, in the trial's directory. */
export function writerFaultFile(store: string): string {
  return path.join(path.dirname(store), 'writer-fault');
}

/** Arms a fault (atomically: the writer never reads half a line). */
export function armWriterFault(store: string, line: string): void {
  const file = writerFaultFile(store);
  fs.writeFileSync(`${file}.tmp`, `${line}\n`);
  fs.renameSync(`${file}.tmp`, file);
}

export interface WriterHooks {
  store: PageStore;
  /** The writer's next transaction stamp (unique across runs). */
  nextStamp(): number;
  /** Pages the drill may lock: 1..hot. */
  hot: number;
  rng: Prng;
  send(msg: object): void;
  fatal(err: unknown): never;
  /** From now on the writer's transactions never reach their commit (`hang-work`). */
  hangWork(): void;
}

/** Polls the fault file; returns a stop function. */
export function watchWriterFaults(storeDir: string, h: WriterHooks): () => void {
  const file = writerFaultFile(storeDir);
  const leaked: Buffer[] = [];
  let leak: NodeJS.Timeout | null = null;
  const poll = setInterval(() => {
    let line: string;
    try {
      line = fs.readFileSync(file, 'utf8').trim();
      fs.unlinkSync(file);
    } catch {
      return;
    }
    const [mode, ...args] = line.split(/\s+/);
    if (mode === 'leak') {
      const [rate, limit] = args.map(Number) as [number, number];
      const chunk = Math.round((rate * 2 ** 20) / 10);
      leak ??= setInterval(() => {
        // allocUnsafe + fill: pages really touched (Buffer.alloc's zeroed memory may stay unmapped).
        leaked.push(Buffer.allocUnsafe(chunk).fill(0xa5));
        if (process.memoryUsage.rss() >= limit * 2 ** 20) {
          h.send({ t: 'fatal', error: `out of memory: RSS ${process.memoryUsage.rss()} bytes reached the ${limit} MiB limit (exit 137, as the OOM killer would)` });
          process.exit(137);
        }
      }, 100);
    } else if (mode === 'hang-work') {
      h.hangWork();
    } else if (mode === 'deadlock') {
      deadlockDrill(h).then(h.send, h.fatal);
    } else {
      h.fatal(new Error(`unknown writer fault ${JSON.stringify(line)}`));
    }
  }, 100);
  return () => {
    clearInterval(poll);
    if (leak) clearInterval(leak);
  };
}

/** Two transactions, pages a then b and b then a: one must be the victim, the other commit. */
async function deadlockDrill(h: WriterHooks): Promise<DeadlockDrillMessage> {
  const a = h.rng.int(1, h.hot);
  let b = h.rng.int(1, h.hot - 1);
  if (b >= a) b++;
  const payload = h.store.payloadSize;
  const txs = [
    { tx: h.store.begin(), stamp: h.nextStamp(), first: a, second: b },
    { tx: h.store.begin(), stamp: h.nextStamp(), first: b, second: a },
  ];
  for (const t of txs) await t.tx.write(t.first, 0, pagePattern(payload, t.stamp, t.first));
  const formed = performance.now();
  let victimMs: number | null = null;
  const second = await Promise.all(
    txs.map((t) =>
      t.tx.write(t.second, 0, pagePattern(payload, t.stamp, t.second)).then(
        () => null,
        (err: unknown) => {
          if (isRaError(err, 'RA_ERR_DEADLOCK')) victimMs ??= performance.now() - formed;
          return err;
        },
      ),
    ),
  );
  let committed: number | null = null;
  const errors: string[] = [];
  for (const [i, t] of txs.entries()) {
    const err = second[i];
    if (err) {
      if (t.tx.state === 'active') await t.tx.abort();
      h.send({ t: 'abort', stamp: t.stamp, deadlock: isRaError(err, 'RA_ERR_DEADLOCK') });
      if (!isRaError(err, 'RA_ERR_DEADLOCK')) errors.push(describeError(err));
      continue;
    }
    h.send({ t: 'commit-req', stamp: t.stamp, pages: [t.first, t.second] });
    await t.tx.commit();
    h.send({ t: 'ack', stamp: t.stamp });
    committed = t.stamp;
  }
  return { t: 'deadlock-drill', pages: [a, b], victimMs: victimMs === null ? null : Math.round(victimMs * 10) / 10, committed, ...(errors.length ? { error: errors.join('; ') } : {}) };
}

/**
 * The demo writer: an application that runs transactions against a page store at a steady
 * rate, for `npm start` and for trying the agent by hand (kill it with -9 and watch what the
 * agent does).
 *
 *   node dist/examples/demo-writer.js --store ./var/demo/store [--archive ./var/demo/snapshots] [--rate 50] [--pages 1024]
 *
 * `--archive DIR` hands each WAL segment its checkpoints retire to the snapshot directory's
 * archive (the agent's `snapshots.dir` for the store), for point-in-time restore and page repair:
 * once the agent has recovered a store with an archiver, the store remembers its archive, and an
 * owner opened without one keeps every segment (RA_ERR_WAL_NOT_ARCHIVED) instead.
 *
 * Each transaction moves "money" between two accounts (one per page): the total never changes,
 * so after any crash and recovery the sum of all balances is the same — the writer checks it
 * when it starts.
 *
 * Its store is RECOVERY_AGENT_STORE_PATH when the agent sets it (a store moved to its spare path
 * after a disk failure), else --store.
 *
 * Heartbeats: when the environment holds RECOVERY_AGENT_HEARTBEAT=udp://host:port/token (the
 * agent sets it for a process it supervises with `heartbeat: { udp: … }`), the writer sends the
 * token to host:port as a UDP datagram every 500 ms, from its event loop: a writer that hangs
 * (try `kill -STOP`) falls silent and the agent reports a process-hang.
 */
import { Command } from 'commander';
import { PageStore } from '../plugins/pagestore/pageStore.js';
import { createLogger } from '../core/logger.js';
import { describeError, isRaError } from '../core/errors.js';
import { startHeartbeat } from '../plugins/crash-detector/heartbeatClient.js';
import { makePageStoreEngine } from '../plugins/pagestore/face.js';
import { walArchiver } from '../plugins/snapshot-manager/walArchive.js';

const INITIAL_BALANCE = 1000n;

const program = new Command('demo-writer')
  .description('runs transfer transactions against a page store at a steady rate')
  .requiredOption('-s, --store <dir>', 'store directory (created if missing)')
  .option('-a, --archive <dir>', "archive retired WAL segments into this snapshot directory (the agent's snapshots.dir)")
  .option('-r, --rate <tps>', 'transactions per second', (v) => Number(v), 50)
  .option('-p, --pages <n>', 'pages when creating the store', (v) => Number(v), 1024)
  .option('-c, --concurrency <n>', 'concurrent transactions', (v) => Number(v), 4)
  .parse();
const opts = program.opts<{ store: string; archive?: string; rate: number; pages: number; concurrency: number }>();
const log = createLogger({ level: 'info' }).child({ component: 'demo-writer' });
const heartbeat = startHeartbeat({ intervalMs: 500 });
if (heartbeat) log.info({ target: heartbeat.target }, 'sending heartbeats');

// The agent names the store's current path (it may have moved it off a failed disk).
const storeDir = process.env.RECOVERY_AGENT_STORE_PATH || opts.store;
const archiver = opts.archive !== undefined ? walArchiver(makePageStoreEngine(), opts.archive) : undefined;
const store = await PageStore.open(storeDir, { create: true, pageCount: opts.pages, log, ...(archiver ? { archiver } : {}) });
const accounts = store.pageCount - 1;
log.info({ store: storeDir, pages: store.pageCount, recoveryMs: store.recovery.durationMs }, 'store open');

// The invariant: every account starts at INITIAL_BALANCE, and transfers conserve the total.
{
  const tx = store.begin();
  let total = 0n;
  let opened = 0;
  for (let page = 1; page <= accounts; page++) {
    const payload = await tx.read(page);
    if (payload.readUInt32LE(0) === 0x41434354) {
      total += payload.readBigInt64LE(8);
      opened++;
    }
  }
  await tx.commit();
  if (opened === 0) {
    const init = store.begin();
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(0x41434354, 0); // "TCCA": an account record
    rec.writeBigInt64LE(INITIAL_BALANCE, 8);
    for (let page = 1; page <= accounts; page++) await init.write(page, 0, rec);
    await init.commit();
    log.info({ accounts }, 'accounts created');
  } else if (opened !== accounts || total !== INITIAL_BALANCE * BigInt(accounts)) {
    log.fatal({ opened, accounts, total: total.toString(), expected: (INITIAL_BALANCE * BigInt(accounts)).toString() }, 'invariant broken: balances do not add up');
    process.exit(3);
  } else {
    log.info({ accounts, total: total.toString() }, 'invariant holds after restart');
  }
}

let running = true;
let commits = 0;
let deadlocks = 0;
let corruptReads = 0;
const started = Date.now();

async function transfer(): Promise<void> {
  const from = 1 + Math.floor(Math.random() * accounts);
  const to = 1 + ((from - 1 + 1 + Math.floor(Math.random() * (accounts - 1))) % accounts);
  const amount = BigInt(1 + Math.floor(Math.random() * 50));
  const tx = store.begin();
  try {
    const a = await tx.read(from);
    const b = await tx.read(to);
    const bal = (p: Buffer) => p.readBigInt64LE(8);
    const put = (v: bigint) => {
      const buf = Buffer.alloc(8);
      buf.writeBigInt64LE(v);
      return buf;
    };
    await tx.write(from, 8, put(bal(a) - amount));
    await tx.write(to, 8, put(bal(b) + amount));
    await tx.commit();
    commits++;
  } catch (err) {
    if (isRaError(err, 'RA_ERR_DEADLOCK')) {
      deadlocks++;
    } else if (isRaError(err, 'RA_ERR_PAGE_CORRUPT')) {
      // The store refuses a page that fails its checksum; the agent repairs it (repair-page)
      // and this transfer is simply not made. Nothing bad was read.
      corruptReads++;
      if (tx.state === 'active') await tx.abort();
      log.warn({ err: describeError(err) }, 'page refused as corrupt; transfer skipped');
    } else {
      throw err;
    }
  }
}

async function worker(interval: number): Promise<void> {
  let next = Date.now();
  while (running) {
    await transfer();
    next += interval;
    const wait = next - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

const progress = setInterval(() => {
  const secs = (Date.now() - started) / 1000;
  log.info({ commits, deadlocks, corruptReads, tps: Math.round(commits / secs), walSinceCheckpoint: store.walSinceCheckpoint }, 'progress');
}, 5000);

async function stop(signal: string): Promise<void> {
  if (!running) return;
  running = false;
  log.info({ signal }, 'stopping');
}
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));

const interval = (1000 * opts.concurrency) / Math.max(0.1, opts.rate);
try {
  await Promise.all(Array.from({ length: opts.concurrency }, () => worker(interval)));
} catch (err) {
  log.error({ err: describeError(err) }, 'transaction failed');
  process.exitCode = 1;
} finally {
  clearInterval(progress);
  heartbeat?.stop();
  await store.close();
  log.info({ commits, deadlocks }, 'closed');
}

/**
 * One corrupt page of a replication primary repaired from its replica (#14 item 5) against the
 * snapshot-plus-WAL rebuild of the same page, in the same run.
 *
 * A primary store of `--pages-total` 4 KiB pages (default 2048) gets a full snapshot, then
 * `--wal-mib` MiB of WAL (default 16) from transactions over random pages, with checkpoints; a
 * replica (the agent's ReplicaSession over loopback TCP, this process) streams and applies it.
 * Then `--pages` pages (default 200), each not in the owner's cache, get one bit flipped on disk
 * and are repaired online through the owner's control socket: first from the replica (the owner
 * asks it for the page as of its flushed LSN, verifies, the repairer installs it), then — flipped
 * again — from the snapshot + WAL (the baseline). Goal: p99 of a replica repair ≤ 10 ms. The
 * repairs keep one connection to the owner between them, as the data-repairer does (owners.ts).
 * Then a burst (`--burst`, default 1000): that many pages, none in the owner's cache, damaged at
 * once, then repaired from the replica as the data-repairer repairs one scan's finds: as one
 * batch (batch.ts: page-states, replica-pages, write-pages). Goal: 1000 pages in ≤ 1 s. For
 * comparison, the same burst damaged again and repaired one page after the other. The machine is
 * shared: the CPU time of this process (owner, replica and repairer all run in it) per page is
 * given beside the wall times, and the load average at start and end.
 *
 * Run: npm run bench:replica-repair   (options after --: --pages-total N, --wal-mib W, --pages N, --burst N)
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { WorkerPool } from '../core/workerPool.js';
import { repairPages } from '../plugins/data-repairer/batch.js';
import { OwnerConnections } from '../plugins/data-repairer/owners.js';
import { repairPage, type PageRepairOutcome } from '../plugins/data-repairer/repair.js';
import { makePageStoreEngine } from '../plugins/pagestore/face.js';
import { PageStore } from '../plugins/pagestore/pageStore.js';
import { dataFileOf } from '../plugins/pagestore/storeFiles.js';
import { replicaPageSource } from '../plugins/replication/pageSource.js';
import { ReplicaSession } from '../plugins/replication/replicaSession.js';
import { createSnapshot } from '../plugins/snapshot-manager/createSnapshot.js';
import { snapshotPageSource } from '../plugins/snapshot-manager/pageSource.js';
import { walArchiver } from '../plugins/snapshot-manager/walArchive.js';
import { prng } from '../test/helpers/prng.js';
import { copyStoreDir } from '../test/helpers/store.js';
import { numArg } from './lib/args.js';
import { report } from './lib/report.js';

const pagestore = makePageStoreEngine();
const PAGE = 4096;
const PAGES = numArg('pages-total', 2048);
const WAL_MIB = numArg('wal-mib', 16);
const TRIED = numArg('pages', 200);
const BURST = numArg('burst', 1000);
const SECRET = 'bench-replica-repair-secret-0123456789';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

function flipBit(dir: string, id: number, at: number): void {
  const fd = openSync(dataFileOf(dir), 'r+');
  try {
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, id * PAGE + at);
    b[0]! ^= 1;
    writeSync(fd, b, 0, 1, id * PAGE + at);
  } finally {
    closeSync(fd);
  }
}

const loadStart = os.loadavg().map((v) => v.toFixed(2)).join(' ');
console.log(`load average at start: ${loadStart} (${os.cpus().length} CPUs, shared)`);
const root = mkdtempSync(path.join(os.tmpdir(), 'ra-bench-replrepair-'));
const pool = new WorkerPool({ threads: 1 });
const primaryDir = path.join(root, 'primary');
const replicaDir = path.join(root, 'replica');
const snaps = path.join(root, 'snaps');
let store: PageStore | null = null;
let session: ReplicaSession | null = null;
const owners = new OwnerConnections();
/** CPU ms of this process per page while `fn` runs. */
const cpuPerPage = async <T>(pages: (v: T) => number, fn: () => Promise<T>): Promise<{ v: T; cpuMs: number }> => {
  const c0 = process.cpuUsage();
  const v = await fn();
  const c = process.cpuUsage(c0);
  return { v, cpuMs: Math.round(((c.user + c.system) / 1e3 / Math.max(1, pages(v))) * 100) / 100 };
};
try {
  await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 4 * 2 ** 20, controlSocket: false })).close();
  copyStoreDir(primaryDir, replicaDir);
  writeFileSync(path.join(primaryDir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET }), { mode: 0o600 });
  store = await PageStore.open(primaryDir, { checkpointIntervalMs: 0, cacheBytes: 0, archiver: walArchiver(pagestore, snaps) });
  session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port: store.replicationAddress!.port, secret: SECRET, id: 'r1', pool, log: pino({ level: 'silent' }), onRefused: () => undefined });
  await session.start();
  await createSnapshot({ engine: pagestore, store: primaryDir, dir: snaps, pool });
  const rnd = prng(7);
  const payload = Buffer.alloc(1024, 0x5a);
  const walStart = store.status().flushedLsn;
  for (let i = 0; store.status().flushedLsn - walStart < WAL_MIB * 2 ** 20; i++) {
    const tx = store.begin();
    for (let k = 0; k < 4; k++) await tx.write(1 + (rnd() % (PAGES - 1)), 64, payload);
    await tx.commit();
    if (i % 2000 === 1999) await store.checkpoint();
  }
  await store.checkpoint();
  const flushed = store.status().flushedLsn;
  while (session.status().appliedLsn < flushed) await new Promise((r) => setTimeout(r, 20));

  const pages = Array.from({ length: TRIED }, (_, i) => 1 + ((i * 7919) % (PAGES - 1)));
  const replica = replicaPageSource(() => true);
  const snapshot = snapshotPageSource(() => snaps);
  const run = async (sources: Parameters<typeof repairPage>[1]['sources']): Promise<PageRepairOutcome[]> => {
    const out: PageRepairOutcome[] = [];
    for (const [i, p] of pages.entries()) {
      if ((await store!.readPage(p)).cached) continue;
      flipBit(primaryDir, p, 200 + (i % 3000));
      const o = await repairPage(pagestore, { id: 'p', store: primaryDir, sources, owners }, p);
      if (o.result !== 'repaired') throw new Error(`page ${p}: ${o.result}`);
      out.push(o);
    }
    return out;
  };
  const { v: fromReplica, cpuMs: replicaCpu } = await cpuPerPage((v) => v.length, () => run([replica]));
  const fromSnapshot = await run([snapshot]);
  if (fromReplica.some((o) => !o.source?.startsWith('replica:'))) throw new Error('a repair did not come from the replica');
  // The burst: damaged all at once, then repaired one after the other.
  const burst: number[] = [];
  for (let i = 0; burst.length < Math.min(BURST, PAGES - 1) && i < PAGES - 1; i++) {
    const p = 1 + ((i * 1103) % (PAGES - 1));
    if (!(await store.readPage(p)).cached) burst.push(p);
  }
  if (burst.length < BURST) throw new Error(`only ${burst.length} pages for a burst of ${BURST} (raise --pages-total)`);
  for (const [i, p] of burst.entries()) flipBit(primaryDir, p, 300 + (i % 3000));
  const tb = performance.now();
  const { cpuMs: batchCpu } = await cpuPerPage(() => burst.length, async () => {
    for (const e of await repairPages(pagestore, { id: 'p', store: primaryDir, sources: [replica], owners }, burst)) {
      if (e.error || e.outcome.result !== 'repaired' || !e.outcome.source?.startsWith('replica:')) throw new Error(`burst page ${e.pageId}: ${e.error ? String(e.error) : `${e.outcome.result} from ${e.outcome.source}`}`);
    }
  });
  const burstS = (performance.now() - tb) / 1e3;
  // The same burst again, one page after the other (what the repairer did before batches).
  for (const [i, p] of burst.entries()) flipBit(primaryDir, p, 700 + (i % 3000));
  const ts = performance.now();
  const { cpuMs: serialCpu } = await cpuPerPage(() => burst.length, async () => {
    for (const p of burst) {
      const o = await repairPage(pagestore, { id: 'p', store: primaryDir, sources: [replica], owners }, p);
      if (o.result !== 'repaired' || !o.source?.startsWith('replica:')) throw new Error(`burst page ${p}: ${o.result} from ${o.source}`);
    }
  });
  const serialS = (performance.now() - ts) / 1e3;
  const ms = (xs: PageRepairOutcome[]) => xs.map((o) => o.durationMs);
  const r = { p50: pct(ms(fromReplica), 50), p99: pct(ms(fromReplica), 99) };
  const s = { p50: pct(ms(fromSnapshot), 50), p99: pct(ms(fromSnapshot), 99) };
  report({
    bench: 'replicaRepair',
    baseline: 'repair one page from snapshot + WAL, p50',
    rows: [
      { name: 'repair one page from snapshot + WAL, p50', value: s.p50, unit: 'ms', extra: { p99: s.p99, pages: fromSnapshot.length } },
      { name: 'repair one page from the replica, p50', value: r.p50, unit: 'ms', extra: { p99: r.p99, pages: fromReplica.length, cpuMsPerPage: replicaCpu } },
      { name: 'repair one page from the replica, p99', value: r.p99, unit: 'ms', baseline: 'repair one page from snapshot + WAL, p50' },
      { name: `repair ${burst.length} corrupt pages from the replica, one after the other`, value: serialS, unit: 's', baseline: `repair ${burst.length} corrupt pages from the replica, one after the other`, extra: { pagesPerS: Math.round(burst.length / serialS), cpuMsPerPage: serialCpu } },
      { name: `repair ${burst.length} corrupt pages from the replica as one batch`, value: burstS, unit: 's', baseline: `repair ${burst.length} corrupt pages from the replica, one after the other`, extra: { pagesPerS: Math.round(burst.length / burstS), cpuMsPerPage: batchCpu } },
    ],
    params: { pageSize: PAGE, pages: PAGES, walBytesAfterSnapshot: flushed - walStart, pagesTried: TRIED, burst: burst.length, loadAverage: { start: loadStart, end: os.loadavg().map((v) => v.toFixed(2)).join(' ') } },
    goal: {
      description: `one page from a replica: p99 ≤ 10 ms (p99 ${r.p99} ms, p50 ${r.p50} ms; snapshot + WAL p50 ${s.p50} ms, p99 ${s.p99} ms); ${burst.length} corrupt pages in ≤ 1 s (${burstS.toFixed(2)} s as one batch, ${batchCpu} ms CPU a page; ${serialS.toFixed(2)} s one after the other)`,
      met: r.p99 <= 10 && burstS <= 1,
    },
  });
} finally {
  owners.closeAll();
  await session?.stop();
  await store?.close();
  await pool.close();
  rmSync(root, { recursive: true, force: true });
}

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import path from 'node:path';
import { WorkerPool } from '../../../core/workerPool.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { snapshotPath, type Manifest } from '../../../plugins/snapshot-manager/manifest.js';
import { listArchive } from '../../../plugins/snapshot-manager/walArchive.js';
import { restoreSnapshot } from '../../../plugins/snapshot-manager/restore.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { balancesAfter } from '../../helpers/transfers.js';
import { lz4DecodeOracle } from '../../helpers/oracles.js';
import { pagestore } from '../../helpers/engine.js';

const PAGES = 48;
const PAGE = 4096;

/** The writer's state as a restored data file holds it: sequence number and balances. */
function stateOf(dir: string): { seq: number; balances: Map<number, bigint> } {
  const data = readFileSync(path.join(dir, 'pages.db'));
  const payload = (id: number) => data.subarray(id * PAGE + 32, (id + 1) * PAGE);
  for (let id = 0; id < PAGES; id++) assert.equal(verifyPage(data.subarray(id * PAGE, (id + 1) * PAGE), id), null, `page ${id} verifies`);
  const balances = new Map<number, bigint>();
  for (let id = 2; id < PAGES; id++) balances.set(id, payload(id).readUInt32LE(0) === 1 ? payload(id).readBigInt64LE(8) : 1000n);
  return { seq: Number(payload(1).readBigUInt64LE(0)), balances };
}

function startWriter(dir: string, archive: string): { child: ChildProcess; commits: Array<[number, number]>; ready: Promise<void> } {
  const child = spawn(process.execPath, [fixture('snapshotWriter.js'), JSON.stringify({ dir, archive, pages: PAGES })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const commits: Array<[number, number]> = [];
  let buf = '';
  let readyResolve: () => void;
  const ready = new Promise<void>((r) => (readyResolve = r));
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) {
      if (l === 'ready') readyResolve();
      const m = /^(\d+) (\d+)$/.exec(l);
      if (m) commits.push([Number(m[1]), Number(m[2])]);
    }
  });
  return { child, commits, ready };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('snapshot round trip under a running writer', () => {
  const root = path.dirname(tmpStoreDir('ra-snap-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  let full: Manifest;
  let inc: Manifest;
  let commits: Array<[number, number]>;

  before(async () => {
    const w = startWriter(store, snaps);
    await w.ready;
    await sleep(400);
    full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await sleep(400);
    inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
    await sleep(300);
    w.child.kill('SIGTERM');
    await new Promise((r) => w.child.once('exit', r));
    commits = w.commits;
  });
  after(() => pool.close());

  it('took a full and an incremental snapshot while commits went on, and archived retired WAL', async () => {
    assert.equal(full.kind, 'full');
    assert.equal(inc.kind, 'incremental');
    assert.equal(inc.baseId, full.id);
    assert.ok(inc.pagesCopied < full.pagesCopied, `incremental copied ${inc.pagesCopied} pages, full ${full.pagesCopied}`);
    assert.ok(full.endLsn > full.startLsn && inc.startLsn >= full.startLsn);
    assert.ok(commits.length > 100, `writer committed ${commits.length} transactions`);
    assert.ok((await listArchive(snaps)).length >= 2, 'segments were archived');
  });

  it('restores to the latest archived state: every page verifies, balances are exactly those of a committed prefix', async () => {
    const to = path.join(root, 'restored-latest');
    const r = await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, pool });
    assert.deepEqual(r.snapshots, [full.id, inc.id]);
    const s = stateOf(to);
    assert.deepEqual(s.balances, balancesAfter(s.seq, PAGES));
    const committedByInc = Math.max(0, ...commits.filter(([, lsn]) => lsn <= inc.endLsn).map(([seq]) => seq));
    assert.ok(s.seq >= committedByInc, `restored seq ${s.seq} holds every commit acknowledged before the incremental's end (${committedByInc})`);
    assert.ok(s.seq <= commits[commits.length - 1]![0]);
  });

  it('restores to a past LSN between the snapshots: exactly the commits acknowledged by then, at least', async () => {
    const to = path.join(root, 'restored-lsn');
    const mid = commits.find(([, lsn]) => lsn > full.endLsn && lsn < inc.endLsn);
    assert.ok(mid, 'a commit between the snapshots');
    const r = await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, lsn: mid[1], pool });
    assert.deepEqual(r.snapshots, [full.id]);
    const s = stateOf(to);
    assert.deepEqual(s.balances, balancesAfter(s.seq, PAGES));
    assert.ok(s.seq >= mid[0], `seq ${s.seq} includes commit ${mid[0]} acknowledged at LSN ${mid[1]}`);
    const next = commits.find(([, lsn]) => lsn > mid[1] + 4096);
    if (next) assert.ok(s.seq < next[0], `seq ${s.seq} excludes commit ${next[0]} written after the target`);
  });

  it('writes chunks that the lz4 CLI (or lz4js) decodes to verified page images', (t) => {
    const chunk = full.chunks[0]!;
    const oracle = lz4DecodeOracle();
    t.diagnostic(`oracle: ${oracle.name}`);
    const raw = oracle.fn(readFileSync(path.join(snapshotPath(snaps, full.id), chunk.file)));
    assert.equal(raw.byteLength, chunk.rawBytes);
    let at = 0;
    for (const [first, count] of chunk.pages) {
      for (let id = first; id < first + count; id++, at += PAGE) assert.equal(verifyPage(raw.subarray(at, at + PAGE), id), null);
    }
  });
});

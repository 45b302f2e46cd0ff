// Point-in-time restore to the exact commit (#16 item 3): snapshot, commits, time T, commits,
// snapshot, `restore --time T` gives every page as the store had it at T (read through the
// engine then); --exclusive at a commit's exact time, --lsn, a T before any commit, a T before
// the oldest snapshot, and a log written before commit records carried their time.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import type { RecordFields } from '../../../plugins/pagestore/walRecord.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { cli } from '../../helpers/cli.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';

const PAGES = 64;
const PAGE = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Stopped { lsn: number; endLsn: number; txId: number; time: number | null }

/** Every data page's payload as the store sees it now, read through the engine. */
async function pagesNow(s: PageStore): Promise<Buffer[]> {
  const tx = s.begin();
  const out: Buffer[] = [Buffer.alloc(0)];
  for (let id = 1; id < PAGES; id++) out.push(Buffer.from(await tx.read(id)));
  await tx.commit();
  return out;
}

/** Pages of a restored store that differ from `ref` (payloads). */
function differing(dir: string, ref: Buffer[]): number[] {
  const data = readFileSync(path.join(dir, 'pages.db'));
  const bad: number[] = [];
  for (let id = 1; id < PAGES; id++) if (!data.subarray(id * PAGE + 32, (id + 1) * PAGE).equals(ref[id]!)) bad.push(id);
  return bad;
}

/** `n` one-page transactions; returns the last one's id and its commit record's end. */
async function commits(s: PageStore, n: number, tag: string): Promise<{ txId: number; end: number }> {
  let last = { txId: 0, end: 0 };
  for (let i = 0; i < n; i++) {
    const tx = s.begin();
    await tx.write(1 + ((i * 7) % (PAGES - 1)), (i * 13) % 2000, Buffer.from(`${tag}-${i};`.repeat(8)));
    await tx.commit();
    last = { txId: tx.id, end: s.endLsn };
  }
  return last;
}

function restore(snaps: string, to: string, ...args: string[]): { status: number | null; stderr: string; stdout: string; json?: { stoppedAt: Stopped | null; targetLsn: number | null } } {
  const r = cli(['restore', '--snapshot-dir', snaps, '--to', to, '--no-progress', ...args]);
  return { ...r, ...(r.status === 0 && args.includes('--json') ? { json: JSON.parse(r.stdout) as { stoppedAt: Stopped | null; targetLsn: number | null } } : {}) };
}

describe('restore to the exact commit by time and by LSN', () => {
  const root = path.dirname(tmpStoreDir('ra-pitr-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  let firstSnapshotDone = 0;
  let beforeAnyCommit = 0;
  let x = { txId: 0, end: 0 };
  let lastA = { txId: 0, end: 0 };
  let t = 0;
  let refBeforeX: Buffer[] = [];
  let refAtT: Buffer[] = [];
  let refEmpty: Buffer[] = [];

  before(async () => {
    const s = await PageStore.open(store, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 65536, checkpointWalBytes: 80 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    const first = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    firstSnapshotDone = first.finishedAt;
    refEmpty = await pagesNow(s);
    await sleep(5);
    beforeAnyCommit = Date.now();
    await sleep(5);
    lastA = await commits(s, 300, 'a'); // several segments, archived as checkpoints retire them
    refBeforeX = await pagesNow(s);
    await sleep(5);
    x = await commits(s, 1, 'x'); // alone in its millisecond
    await sleep(5);
    t = Date.now();
    refAtT = await pagesNow(s);
    await sleep(5);
    await commits(s, 300, 'c');
    await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
    await commits(s, 50, 'd');
    await s.close();
  });
  after(() => pool.close());

  it('--time T: every page equal to the store at T, stopped at the last commit before T', () => {
    const to = path.join(root, 'r-time');
    const r = restore(snaps, to, '--time', new Date(t).toISOString(), '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.stoppedAt!.txId, x.txId);
    assert.equal(r.json!.stoppedAt!.endLsn, x.end);
    assert.equal(r.json!.stoppedAt!.lsn, x.end - 72, 'a commit record is 72 bytes: header, its time, checksum');
    assert.ok(r.json!.stoppedAt!.time! <= t && r.json!.stoppedAt!.time! > t - 1000, `time ${r.json!.stoppedAt!.time} vs T ${t}`);
    assert.deepEqual(differing(to, refAtT), []);
    const text = restore(snaps, path.join(root, 'r-time-text'), '--time', String(t));
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`stopped at +commit at LSN ${x.end - 72} \\(transaction ${x.txId}, ${new Date(r.json!.stoppedAt!.time!).toISOString()}\\)`));
  });

  it('--time at a commit\'s exact time: inclusive keeps it, --exclusive stops before it', () => {
    const at = restore(snaps, path.join(root, 'r-inc'), '--time', String(t), '--json').json!.stoppedAt!.time!;
    const inc = restore(snaps, path.join(root, 'r-exact'), '--time', String(at), '--json');
    assert.equal(inc.status, 0, inc.stderr);
    assert.equal(inc.json!.stoppedAt!.txId, x.txId);
    assert.deepEqual(differing(path.join(root, 'r-exact'), refAtT), []);
    const exc = restore(snaps, path.join(root, 'r-exclusive'), '--time', String(at), '--exclusive', '--json');
    assert.equal(exc.status, 0, exc.stderr);
    assert.equal(exc.json!.stoppedAt!.txId, lastA.txId);
    assert.deepEqual(differing(path.join(root, 'r-exclusive'), refBeforeX), []);
  });

  it('--lsn N: the last commit whose record ends at or before N (--exclusive: before N)', () => {
    const r = restore(snaps, path.join(root, 'r-lsn'), '--lsn', String(x.end), '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.stoppedAt!.txId, x.txId);
    assert.equal(r.json!.targetLsn, x.end);
    assert.deepEqual(differing(path.join(root, 'r-lsn'), refAtT), []);
    const mid = restore(snaps, path.join(root, 'r-lsn-mid'), '--lsn', String(x.end - 8), '--json');
    assert.equal(mid.status, 0, mid.stderr);
    assert.equal(mid.json!.stoppedAt!.txId, lastA.txId);
    assert.deepEqual(differing(path.join(root, 'r-lsn-mid'), refBeforeX), []);
    const exc = restore(snaps, path.join(root, 'r-lsn-exc'), '--lsn', String(x.end), '--exclusive', '--json');
    assert.equal(exc.json!.stoppedAt!.txId, lastA.txId);
    assert.deepEqual(differing(path.join(root, 'r-lsn-exc'), refBeforeX), []);
  });

  it('snapshot list shows each snapshot\'s time range and the commit times of its WAL', () => {
    const r = cli(['snapshot', 'list', snaps, '--json']);
    assert.equal(r.status, 0, r.stderr);
    type Row = { startedAt: string; finishedAt: string; firstCommit: Stopped | null; lastCommit: { time: string } | null; commitsWithoutTime: number };
    const rows = JSON.parse(r.stdout) as Row[];
    assert.equal(rows.length, 2);
    assert.equal(rows[0]!.firstCommit, null, 'the first snapshot was taken before any commit');
    assert.equal(Date.parse(rows[0]!.finishedAt), firstSnapshotDone);
    // The second copied the WAL from the checkpoint in force when it started: commits of phase c.
    const first = Date.parse(rows[1]!.firstCommit!.time as unknown as string);
    const last = Date.parse(rows[1]!.lastCommit!.time);
    assert.ok(t < last && first <= last && last <= Date.parse(rows[1]!.finishedAt), JSON.stringify(rows[1]));
    assert.ok(Date.parse(rows[1]!.startedAt) <= Date.parse(rows[1]!.finishedAt));
    assert.equal(rows[1]!.commitsWithoutTime, 0);
    const text = cli(['snapshot', 'list', snaps]);
    assert.match(text.stdout, new RegExp(`${rows[1]!.startedAt} \\.\\. ${rows[1]!.finishedAt}  commits ${rows[1]!.firstCommit!.time as unknown as string} \\.\\. ${rows[1]!.lastCommit!.time} `));
    assert.match(text.stdout, /no commit in its WAL/);
  });

  it('a T before any commit restores the first snapshot; before the oldest snapshot is a clear error (exit 2)', () => {
    assert.ok(beforeAnyCommit > firstSnapshotDone);
    // Quiet from the first snapshot to T: that snapshot is the store at T.
    const none = restore(snaps, path.join(root, 'r-none'), '--time', String(beforeAnyCommit), '--json');
    assert.equal(none.status, 0, none.stderr);
    assert.equal(none.json!.stoppedAt, null);
    assert.deepEqual(differing(path.join(root, 'r-none'), refEmpty), []);
    assert.match(none.stderr, /stopped at snapshot .*'s consistency point \(LSN \d+\); the last commit before it is not known/);
    const old = restore(snaps, path.join(root, 'r-old'), '--time', '2000-01-01T00:00:00Z');
    assert.equal(old.status, 2, old.stderr);
    assert.match(old.stderr, /2000-01-01T00:00:00.000Z is before the oldest snapshot finished/);
  });
});

describe('a log written before commit records carried their time', () => {
  const root = path.dirname(tmpStoreDir('ra-pitr-old-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  let mid = { txId: 0, end: 0 };
  let refMid: Buffer[] = [];
  let tMid = 0;

  before(async () => {
    const s = await PageStore.open(store, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 65536, checkpointWalBytes: 80 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    // The writer as it was: commit records with no body (length 0), byte for byte the old format.
    const wal = (s as unknown as { wal: { append(f: RecordFields): { lsn: number; end: number } } }).wal;
    const append = wal.append.bind(wal);
    wal.append = (f) => append({ ...f, commitTime: undefined });
    await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    mid = await commits(s, 200, 'a');
    refMid = await pagesNow(s);
    await sleep(5);
    tMid = Date.now();
    await sleep(5);
    await commits(s, 200, 'b');
    await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
    await s.close();
  });
  after(() => pool.close());

  it('restores by --lsn, saying the commit\'s time is unknown; --time says times are unknown (exit 2)', () => {
    const to = path.join(root, 'r-lsn');
    const r = restore(snaps, to, '--lsn', String(mid.end), '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json!.stoppedAt, { lsn: mid.end - 64, endLsn: mid.end, txId: mid.txId, time: null });
    assert.deepEqual(differing(to, refMid), []);
    const text = restore(snaps, path.join(root, 'r-lsn-text'), '--lsn', String(mid.end));
    assert.match(text.stdout, /time unknown: the log predates commit times/);
    const byTime = restore(snaps, path.join(root, 'r-time'), '--time', String(tMid));
    assert.equal(byTime.status, 2, byTime.stderr);
    const list = cli(['snapshot', 'list', snaps]);
    assert.match(list.stdout, /commits time unknown \.\. time unknown/);
    assert.match(byTime.stderr, /commit times are unknown: the commit at LSN \d+ \(transaction \d+\) carries no time.*restore by --lsn/);
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { decompressFrameSync } from 'lz4-napi';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { kPageLsn, readU64, verifyPage } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { SEGMENT_HEADER_SIZE, segmentName, segmentStartOf } from '../../../plugins/pagestore/walSegments.js';
import { createSnapshot, type SnapshotReport } from '../../../plugins/snapshot-manager/createSnapshot.js';
import type { Manifest } from '../../../plugins/snapshot-manager/manifest.js';
import { restoreSnapshot } from '../../../plugins/snapshot-manager/restore.js';
import { archiveSegment, listArchive, walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { scanRecords } from '../../../plugins/pagestore/walPages.js';
import { fixture } from '../../helpers/paths.js';
import { prng } from '../../helpers/prng.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { balancesAfter } from '../../helpers/transfers.js';
import { pagestore } from '../../helpers/engine.js';

const PAGE = 4096;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const SEGMENT = 65536;

/** Commits `n` transactions, each writing 1–3 pages picked by `rnd`. */
async function commitRandom(store: PageStore, n: number, rnd: () => number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    for (let k = 0, pages = 1 + (rnd() % 3); k < pages; k++) await tx.write(1 + (rnd() % (store.pageCount - 1)), 64 + (rnd() % 512), Buffer.from(`${tag}-${i}-${k};`));
    await tx.commit();
  }
}

/** Page ids in a snapshot's chunks, ascending. */
function pagesIn(m: Manifest): number[] {
  return m.chunks.flatMap((c) => c.pages.flatMap(([first, count]) => Array.from({ length: count }, (_, k) => first + k))).sort((a, b) => a - b);
}

/** Ids of the pages of a data file whose LSN is at or after `lsn` (page 0 aside). */
function pagesSince(dataFile: string, lsn: number): number[] {
  const data = readFileSync(dataFile);
  const out: number[] = [];
  for (let id = 1; id < data.byteLength / PAGE; id++) if (readU64(data, id * PAGE + kPageLsn) >= lsn) out.push(id);
  return out;
}

/** Asserts two data files hold the same pages, naming the first that differs. */
function assertSamePages(restored: string, store: string): void {
  const a = readFileSync(restored);
  const b = readFileSync(store);
  assert.equal(a.byteLength, b.byteLength);
  for (let id = 0; id < a.byteLength / PAGE; id++) {
    if (!a.subarray(id * PAGE, (id + 1) * PAGE).equals(b.subarray(id * PAGE, (id + 1) * PAGE))) assert.fail(`page ${id} of the restored store differs from the store's`);
  }
}

describe('incremental snapshots that choose their pages from the WAL', () => {
  const root = path.dirname(tmpStoreDir('ra-snapinc-'));
  const pool = new WorkerPool({ threads: 2 });
  after(() => pool.close());

  it('reads only the pages the WAL names, including WAL already recycled into the archive, and restores to the store page by page', async () => {
    const store = path.join(root, 'archived');
    const snaps = path.join(root, 'archived-snaps');
    // 2048 pages of 4 KiB: the WAL path serves up to 2 MiB of WAL since the base.
    const s = await PageStore.open(store, { create: true, pageCount: 2048, pageSize: PAGE, segmentSize: SEGMENT, checkpointWalBytes: 96 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    const rnd = prng(11);
    await commitRandom(s, 60, rnd, 'a');
    const full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await commitRandom(s, 150, rnd, 'b');
    const report: Partial<SnapshotReport> = {};
    const inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true, report });
    // The store is idle: its data file now holds exactly what the incremental saw.
    const expected = pagesSince(path.join(store, 'pages.db'), full.startLsn);
    await s.close();

    assert.equal(report.selection, 'wal-summary', report.fallback);
    assert.ok(report.summaryArchivedSegments! > 0, 'some WAL since the base came from the archive');
    const archived = (await listArchive(snaps)).map((a) => a.startLsn);
    assert.ok(archived.includes(segmentStartOf(full.startLsn, SEGMENT)), 'the base start segment was archived');
    assert.equal(existsSync(path.join(store, 'wal', segmentName(segmentStartOf(full.startLsn, SEGMENT)))), false, 'and recycled');
    assert.ok(report.pagesRead! < 2048 / 2, `read ${report.pagesRead} of 2048 pages`);
    assert.ok(expected.length > 100, `${expected.length} pages changed since the base`);
    assert.deepEqual(pagesIn(inc), expected, 'exactly the pages a read of every page would keep');
    assert.equal(inc.pagesCopied, expected.length);

    const to = path.join(root, 'archived-restored');
    const r = await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, pool });
    assert.deepEqual(r.snapshots, [full.id, inc.id]);
    assertSamePages(path.join(to, 'pages.db'), path.join(store, 'pages.db'));
  });

  it('falls back to reading every page when WAL since the base was recycled unarchived, and still restores to the store', async () => {
    const store = path.join(root, 'unarchived');
    const snaps = path.join(root, 'unarchived-snaps');
    const s = await PageStore.open(store, { create: true, pageCount: 2048, pageSize: PAGE, segmentSize: SEGMENT, checkpointWalBytes: 96 * 1024, checkpointIntervalMs: 0 });
    const rnd = prng(12);
    await commitRandom(s, 60, rnd, 'a');
    const full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await commitRandom(s, 150, rnd, 'b');
    const report: Partial<SnapshotReport> = {};
    const inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true, report });
    const expected = pagesSince(path.join(store, 'pages.db'), full.startLsn);
    await s.close();

    assert.equal(report.selection, 'all-pages');
    assert.match(report.fallback!, /WAL segment at LSN \d+ is recycled and in neither the archive nor a snapshot's WAL copy/);
    assert.equal(report.pagesRead, 2048);
    assert.deepEqual(pagesIn(inc), expected);
    const to = path.join(root, 'unarchived-restored');
    await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, pool });
    assertSamePages(path.join(to, 'pages.db'), path.join(store, 'pages.db'));
  });

  it('notices an archived segment cut short (its records end before the next segment\'s first would have fit) and reads every page instead', async () => {
    const store = path.join(root, 'cut');
    const snaps = path.join(root, 'cut-snaps');
    const s = await PageStore.open(store, { create: true, pageCount: 2048, pageSize: PAGE, segmentSize: SEGMENT, checkpointWalBytes: 96 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    const rnd = prng(14);
    await commitRandom(s, 60, rnd, 'a');
    const full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await commitRandom(s, 150, rnd, 'b');
    // An archived segment after the base's, re-archived cut at a record boundary halfway.
    const archived = (await listArchive(snaps)).filter((a) => a.startLsn > segmentStartOf(full.startLsn, SEGMENT));
    const victim = archived[Math.floor(archived.length / 2)]!;
    const raw = decompressFrameSync(readFileSync(path.join(snaps, 'wal', victim.file)));
    const starts: number[] = [];
    scanRecords(raw, SEGMENT_HEADER_SIZE, raw.byteLength, victim.startLsn + SEGMENT_HEADER_SIZE, (at) => starts.push(at));
    const cut = starts[Math.floor(starts.length / 2)]!;
    assert.ok(starts.slice(starts.indexOf(cut)).some((at) => raw[at + 4] === 1), 'update records are cut off');
    const cutFile = path.join(root, 'cut-segment');
    writeFileSync(cutFile, raw.subarray(0, cut));
    await archiveSegment(pagestore, snaps, { file: cutFile, startLsn: victim.startLsn, endLsn: victim.startLsn + SEGMENT });
    const report: Partial<SnapshotReport> = {};
    const inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true, report });
    const expected = pagesSince(path.join(store, 'pages.db'), full.startLsn);
    await s.close();
    assert.equal(report.selection, 'all-pages');
    assert.match(report.fallback!, new RegExp(`segment ${victim.startLsn} ends at LSN ${victim.startLsn + cut}, before the segment's end`));
    assert.deepEqual(pagesIn(inc), expected);
  });

  it('falls back when the WAL since the base is more than a quarter of the data file', async () => {
    const store = path.join(root, 'small');
    const snaps = path.join(root, 'small-snaps');
    // 128 pages of 4 KiB: a quarter is 128 KiB, two segments.
    const s = await PageStore.open(store, { create: true, pageCount: 128, pageSize: PAGE, segmentSize: SEGMENT, checkpointWalBytes: 96 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    const rnd = prng(13);
    const full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await commitRandom(s, 100, rnd, 'b');
    const report: Partial<SnapshotReport> = {};
    const inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true, report });
    const expected = pagesSince(path.join(store, 'pages.db'), full.startLsn);
    await s.close();
    assert.equal(report.selection, 'all-pages');
    assert.match(report.fallback!, /larger than 131072 bytes, a quarter of the data file/);
    assert.deepEqual(pagesIn(inc), expected);
  });

  it('refuses a page the WAL names that fails verification on every read, naming it', async () => {
    const store = path.join(root, 'corrupt');
    const snaps = path.join(root, 'corrupt-snaps');
    const s = await PageStore.open(store, { create: true, pageCount: 2048, pageSize: PAGE, segmentSize: SEGMENT, checkpointWalBytes: 96 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    const full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    const tx = s.begin();
    await tx.write(777, 100, Buffer.from('changed after the base'));
    await tx.commit();
    await s.close();
    assert.ok(readU64(readFileSync(path.join(store, 'pages.db')), 777 * PAGE + kPageLsn) >= full.startLsn);
    const copy = path.join(root, 'corrupt-copy');
    cpSync(store, copy, { recursive: true });
    const data = readFileSync(path.join(copy, 'pages.db'));
    data[777 * PAGE + 2000] ^= 0x10;
    writeFileSync(path.join(copy, 'pages.db'), data);
    const report: Partial<SnapshotReport> = {};
    await assert.rejects(createSnapshot({ engine: pagestore, store: copy, dir: snaps, pool, incremental: true, report }), (e: Error & { code?: string }) => e.code === 'RA_ERR_PAGE_CORRUPT' && /page 777 /.test(e.message));
    // The same store, undamaged, snapshots through the WAL path.
    const ok: Partial<SnapshotReport> = {};
    const inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true, report: ok });
    assert.equal(ok.selection, 'wal-summary', ok.fallback);
    assert.deepEqual(pagesIn(inc), [777]);
  });

  it('under a running writer, with segments recycled into the archive meanwhile: the restore holds a committed prefix at least up to the incremental', async (t) => {
    const pages = 8192; // 32 MiB: the WAL path serves up to 8 MiB of WAL since the base
    const store = path.join(root, 'live');
    const snaps = path.join(root, 'live-snaps');
    const child = spawn(process.execPath, [fixture('snapshotWriter.js'), JSON.stringify({ dir: store, archive: snaps, pages })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const commits: Array<[number, number]> = [];
    let out = '';
    const ready = new Promise<void>((resolve) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const lines = out.split('\n');
        out = lines.pop()!;
        for (const l of lines) {
          if (l === 'ready') resolve();
          const m = /^(\d+) (\d+)$/.exec(l);
          if (m) commits.push([Number(m[1]), Number(m[2])]);
        }
      });
    });
    let full: Manifest;
    let inc: Manifest;
    const report: Partial<SnapshotReport> = {};
    // Counted in commits, not time, so that the WAL since the base is about 2 MiB at any speed.
    const commitsPast = async (n: number) => {
      while (commits.length < n) {
        if (child.exitCode !== null || child.signalCode !== null) assert.fail(`the writer exited (${child.exitCode ?? child.signalCode}) after ${commits.length} commits`);
        await sleep(5);
      }
    };
    try {
      await ready;
      await commitsPast(100);
      full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
      await commitsPast(commits.length + 150);
      inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true, report });
      await commitsPast(commits.length + 20);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    t.diagnostic(`${commits.length} commits; the incremental read ${report.pagesRead} pages named by ${report.summaryWalBytes} bytes of WAL (${report.summaryArchivedSegments} segments archived)`);
    assert.equal(report.selection, 'wal-summary', report.fallback);
    assert.ok(report.summaryArchivedSegments! > 0, 'segments since the base were archived');
    assert.ok(report.pagesRead! < pages, `read ${report.pagesRead} of ${pages} pages`);
    const to = path.join(root, 'live-restored');
    const r = await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, lsn: inc.endLsn, pool });
    assert.deepEqual(r.snapshots, [full.id, inc.id]);
    const data = readFileSync(path.join(to, 'pages.db'));
    const payload = (id: number) => data.subarray(id * PAGE + 32, (id + 1) * PAGE);
    for (let id = 0; id < pages; id++) assert.equal(verifyPage(data.subarray(id * PAGE, (id + 1) * PAGE), id), null, `page ${id} verifies`);
    const seq = Number(payload(1).readBigUInt64LE(0));
    const expected = balancesAfter(seq, pages);
    for (let id = 2; id < pages; id++) {
      const balance = payload(id).readUInt32LE(0) === 1 ? payload(id).readBigInt64LE(8) : 1000n;
      if (balance !== expected.get(id)) assert.fail(`page ${id} holds balance ${balance}, not ${expected.get(id)} as after commit ${seq}`);
    }
    const acknowledged = Math.max(0, ...commits.filter(([, lsn]) => lsn <= inc.endLsn).map(([n]) => n));
    assert.ok(seq >= acknowledged && acknowledged > 0, `restored commit ${seq} holds every commit acknowledged by the incremental's end (${acknowledged})`);
  });
});

/**
 * The snapshot manager's integrity detector and its repairs (issue #17): a damaged snapshot
 * chunk or archived WAL segment is found by a pass (P2, evidence naming the file and the
 * expected and found checksums), published once, and repaired — the snapshot quarantined with
 * the incrementals built on it and a new full snapshot taken; the segment archived again from
 * the live WAL when its owner still has it, else quarantined with a new full snapshot and the
 * lost point-in-time range named — each repair verified by reading the files again.
 */
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Failure, FailureInput, FailureSink } from '../../../core/contracts/Failure.js';
import type { HealingContext } from '../../../core/contracts/HealingAction.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { findDamage, quarantineDirOf } from '../../../plugins/snapshot-manager/integrity.js';
import { repairArchiveAction, repairSnapshotAction, type RepairableStore } from '../../../plugins/snapshot-manager/integrityActions.js';
import { IntegrityDetector } from '../../../plugins/snapshot-manager/integrityDetector.js';
import { archiveDirOf, listSnapshotIds, snapshotPath, walFileName, type Manifest } from '../../../plugins/snapshot-manager/manifest.js';
import { SnapshotScheduler, type ScheduledStore } from '../../../plugins/snapshot-manager/scheduler.js';
import { verifySnapshots } from '../../../plugins/snapshot-manager/verify.js';
import { archiveRaw, archiveSegment, listArchive, readRaw, walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

async function commitSome(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % (store.pageCount - 1)), 64, Buffer.from(`${tag}-${i};`.repeat(20)));
    await tx.commit();
  }
}

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  b[at % b.byteLength] ^= 0x10;
  writeFileSync(file, b);
}

/** A sink that makes failures as the bus would, and keeps them. */
function sink(): FailureSink & { published: Failure[] } {
  const published: Failure[] = [];
  return {
    published,
    publish(i: FailureInput): Failure {
      const f: Failure = { id: `f-${published.length}`, kind: i.kind, priority: i.priority, subject: i.subject, evidence: i.evidence ?? {}, detectedAt: Date.now(), source: 'snapshot-manager', fingerprint: i.fingerprint ?? i.kind };
      published.push(f);
      return f;
    },
  };
}

describe('snapshot and archive integrity: detection and repair', () => {
  const root = path.dirname(tmpStoreDir('ra-integrity-'));
  const store = path.join(root, 'store');
  const pristine = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 1 });
  const log = captureLogger().log;
  const hctx: HealingContext = { signal: new AbortController().signal, log, options: {} };
  let full: Manifest;

  /** A copy of the pristine snapshot directory, with the scheduler, detector and actions on it. */
  const setup = (name: string) => {
    const dir = path.join(root, name);
    cpSync(pristine, dir, { recursive: true });
    const s: ScheduledStore = { id: 'db', path: store, engine: pagestore, dir, fullEvery: 12, keep: { full: 5, incremental: 12 } };
    const check = { id: 'db', dir, engine: pagestore, everyMs: 0 };
    const scheduler = new SnapshotScheduler([s], pool, log);
    const stores = new Map<string, RepairableStore>([['db', s]]);
    return { dir, detector: new IntegrityDetector([check], log), repairSnapshot: repairSnapshotAction(stores, scheduler), repairArchive: repairArchiveAction(stores, scheduler), check };
  };

  before(async () => {
    const s = await PageStore.open(store, { create: true, pageCount: 300, pageSize: 4096, segmentSize: 65536, checkpointWalBytes: 80 * 1024, checkpointIntervalMs: 0, controlSocket: false, archiver: walArchiver(pagestore, pristine) });
    await commitSome(s, 150, 'a');
    full = await createSnapshot({ engine: pagestore, store, dir: pristine, pool });
    await commitSome(s, 150, 'b');
    await createSnapshot({ engine: pagestore, store, dir: pristine, pool, incremental: true });
    await commitSome(s, 100, 'c');
    await s.close();
    assert.ok((await listArchive(pristine)).length >= 2, 'the store archived segments');
  });
  after(() => pool.close());

  it('finds nothing in a sound directory, and publishes nothing', async () => {
    const t = setup('clean');
    const out = sink();
    assert.deepEqual(await t.detector.pass(t.check, out), []);
    assert.equal(out.published.length, 0);
  });

  it('a flipped bit in a full snapshot chunk: one P2 snapshot-corruption, quarantine of it and its incremental, a new full snapshot, verified', async () => {
    const t = setup('chunk');
    const chunk = path.join(snapshotPath(t.dir, full.id), full.chunks[0]!.file);
    flip(chunk, 1000);
    const out = sink();
    await t.detector.pass(t.check, out);
    assert.equal(out.published.length, 1);
    const f = out.published[0]!;
    assert.equal(f.kind, 'snapshot-corruption');
    assert.equal(f.priority, 'P2');
    assert.equal(f.subject, 'store:db');
    assert.equal(f.evidence.file, chunk);
    assert.equal(f.evidence.snapshotId, full.id);
    assert.deepEqual(f.evidence.expected, { bytes: full.chunks[0]!.bytes, xxh3: full.chunks[0]!.xxh3 });
    assert.notEqual((f.evidence.found as { xxh3: string }).xxh3, full.chunks[0]!.xxh3);
    // Found again by the next pass: not published again.
    await t.detector.pass(t.check, out);
    assert.equal(out.published.length, 1);

    assert.equal(await t.repairSnapshot.canHandle(f), true);
    assert.equal(await t.repairSnapshot.verify(f, hctx), false, 'not repaired yet');
    const before = await listSnapshotIds(t.dir);
    const r = await t.repairSnapshot.apply(f, hctx);
    assert.match(r!.summary!, /quarantined snapshot .* and the 1 incremental/);
    const after = await listSnapshotIds(t.dir);
    assert.ok(!after.includes(full.id) && !after.some((id) => before.includes(id)), `both old snapshots are gone from snapshots/: ${after.join(' ')}`);
    const q = readdirSync(quarantineDirOf(t.dir));
    assert.equal(q.length, 2, q.join(' '));
    assert.ok(q.some((n) => n.endsWith(full.id)) && existsSync(path.join(quarantineDirOf(t.dir), q.find((n) => n.endsWith(full.id))!, full.chunks[0]!.file)), 'kept for audit');
    assert.equal(await t.repairSnapshot.verify(f, hctx), true);
    assert.deepEqual(await findDamage(t.dir), []);
    assert.deepEqual((await verifySnapshots(pagestore, t.dir)).problems, []);
    assert.equal(await t.detector.pass(t.check, out).then((d) => d.length), 0);
  });

  it('a truncated incremental: only it goes, and the repair verifies', async () => {
    const t = setup('trunc');
    const ids = await listSnapshotIds(t.dir);
    const inc = ids[ids.length - 1]!;
    const chunk = path.join(snapshotPath(t.dir, inc), 'chunk-00000.lz4');
    truncateSync(chunk, 10);
    const out = sink();
    await t.detector.pass(t.check, out);
    assert.equal(out.published.length, 1);
    assert.deepEqual((out.published[0]!.evidence.found as { bytes: number }).bytes, 10);
    await t.repairSnapshot.apply(out.published[0]!, hctx);
    const left = await listSnapshotIds(t.dir);
    assert.ok(left.includes(full.id) && !left.includes(inc), left.join(' '));
    assert.equal(await t.repairSnapshot.verify(out.published[0]!, hctx), true);
  });

  it('a damaged archived segment its owner no longer has: quarantined, a new full snapshot past it, the lost PITR range named', async () => {
    const t = setup('archive');
    const segs = await listArchive(t.dir);
    const seg = segs[0]!;
    const liveStarts = await pagestore.log.listSegments(pagestore.files.logDir(store));
    assert.ok(!liveStarts.includes(seg.startLsn), 'the store recycled that segment');
    flip(path.join(archiveDirOf(t.dir), seg.file), 300);
    const out = sink();
    await t.detector.pass(t.check, out);
    assert.equal(out.published.length, 1);
    const f = out.published[0]!;
    assert.equal(f.kind, 'archive-corruption');
    assert.equal(f.priority, 'P2');
    assert.equal(f.evidence.startLsn, seg.startLsn);
    assert.equal(f.evidence.endLsn, seg.startLsn + seg.rawBytes);
    assert.deepEqual(f.evidence.expected, { bytes: seg.bytes, xxh3: seg.xxh3 });
    assert.equal(await t.repairArchive.verify(f, hctx), false, 'not repaired yet');
    const r = await t.repairArchive.apply(f, hctx);
    const lost = (r!.details as { pitrLost: { fromLsn: number; toLsn: number } }).pitrLost;
    assert.equal(lost.fromLsn, seg.startLsn);
    assert.ok(lost.toLsn >= seg.startLsn + seg.rawBytes, JSON.stringify(lost));
    assert.ok(!existsSync(path.join(archiveDirOf(t.dir), `${walFileName(seg.startLsn)}.json`)));
    assert.equal(readdirSync(quarantineDirOf(t.dir)).length, 2, 'the segment and its sidecar, kept for audit');
    assert.equal(await t.repairArchive.verify(f, hctx), true);
    assert.deepEqual(await findDamage(t.dir), []);
  });

  it('a live segment damaged before it was archived (its copy matches its sidecar): found by its records, quarantined, a new full snapshot', async () => {
    const t = setup('recorddamage');
    // An archived (recycled) segment, archived again with a bit of a record flipped, as a checkpoint
    // archives a live segment damaged in place: sidecar checksums of the damaged bytes.
    const seg = (await listArchive(t.dir))[1]!;
    const start = seg.startLsn;
    const raw = await readRaw(path.join(archiveDirOf(t.dir), seg.file), seg);
    assert.ok(raw.byteLength > 20_000);
    raw[20_000] ^= 0x01;
    await archiveRaw(pagestore, t.dir, raw, start);
    assert.deepEqual(await findDamage(t.dir), [], 'the copy matches its sidecar');
    const out = sink();
    await t.detector.pass(t.check, out);
    const f = out.published.find((x) => x.evidence.startLsn === start)!;
    assert.ok(f, JSON.stringify(out.published.map((x) => x.evidence)));
    assert.equal(f.kind, 'archive-corruption');
    assert.ok((f.evidence.recordLsn as number) <= start + 20_000 && (f.evidence.recordLsn as number) > start, String(f.evidence.recordLsn));
    assert.match(String(f.evidence.problem), /damaged before it was archived/);
    assert.equal(await t.repairArchive.verify(f, hctx), false);
    const r = await t.repairArchive.apply(f, hctx);
    assert.match(r!.summary!, /no sound copy .* quarantined/);
    assert.equal(await t.repairArchive.verify(f, hctx), true);
    assert.deepEqual(await findDamage(t.dir, pagestore), []);
  });

  it('a damaged archived segment the live WAL still holds: archived again from it, verified byte for byte', async () => {
    const t = setup('rearchive');
    // The store's oldest live segment, archived as a checkpoint would before recycling it.
    const logDir = pagestore.files.logDir(store);
    const start = (await pagestore.log.listSegments(logDir))[0]!;
    const entry = await archiveSegment(pagestore, t.dir, { file: path.join(logDir, pagestore.log.segmentName(start)), startLsn: start, endLsn: start + 65536 });
    truncateSync(path.join(archiveDirOf(t.dir), entry.file), Math.floor(entry.bytes / 2));
    const out = sink();
    await t.detector.pass(t.check, out);
    const f = out.published.find((x) => x.evidence.startLsn === start)!;
    assert.ok(f, JSON.stringify(out.published.map((x) => x.evidence)));
    assert.equal(await t.repairArchive.verify(f, hctx), false);
    const r = await t.repairArchive.apply(f, hctx);
    assert.match(r!.summary!, /archived WAL segment .* again from .*wal/);
    assert.equal(existsSync(quarantineDirOf(t.dir)), false, 'nothing quarantined');
    assert.equal(await t.repairArchive.verify(f, hctx), true);
    assert.deepEqual(await findDamage(t.dir), []);
  });

  it('a pass reads at its rate (verifyRate), and stopping the detector ends a pass that waits out its rate', async () => {
    const t = setup('paced');
    // Sidecars as archived before they carried the archiver's walk of the records: the pass then
    // decompresses each copy and walks it itself, and so reads more than its burst.
    for (const a of await listArchive(t.dir)) {
      const { records, ...old } = a;
      assert.ok(records, 'the archiver recorded its walk');
      writeFileSync(path.join(archiveDirOf(t.dir), `${walFileName(a.startLsn)}.json`), JSON.stringify(old) + '\n');
    }
    // What a pass reads: every compressed file, and the raw bytes of an archived copy whose sidecar
    // lacks the archiver's walk of its records (it walks them itself, once).
    let bytes = 0;
    for (const id of await listSnapshotIds(t.dir)) for (const n of readdirSync(snapshotPath(t.dir, id))) if (n.endsWith('.lz4')) bytes += statSync(path.join(snapshotPath(t.dir, id), n)).size;
    for (const a of await listArchive(t.dir)) bytes += a.bytes + (a.records ? 0 : a.rawBytes);
    const burst = 1 << 20; // the bucket's smallest burst
    const rate = Math.max(1, (bytes - burst) / 0.6); // so that a pass lasts about 0.6 s
    const paced = new IntegrityDetector([{ ...t.check, rate }], log);
    const t0 = performance.now();
    assert.deepEqual(await paced.pass({ ...t.check, rate }, sink()), []);
    const ms = performance.now() - t0;
    assert.ok(ms >= 500, `a pass over ${bytes} bytes at ${Math.round(rate)} B/s (burst ${burst}) took ${ms.toFixed(0)} ms, expected about 600`);

    // At 1 byte a second the pass would wait for days once the burst is spent: stop() ends it.
    const slow = { ...t.check, everyMs: 1, rate: 1 };
    const stuck = new IntegrityDetector([slow], log);
    stuck.start(sink());
    await new Promise((r) => setTimeout(r, 300));
    const s0 = performance.now();
    await stuck.stop();
    assert.ok(performance.now() - s0 < 1000, `stop took ${(performance.now() - s0).toFixed(0)} ms`);
    assert.equal(stuck.stats.failedPasses, 0, 'a pass ended by stop is no failed pass');
  });
});


/**
 * A live WAL segment cut short that its owner's checkpoint retires (and archives) before the
 * live WAL scrub reads it — the mixed chaos schedule's missed `wal-truncated` (seed 23, fault
 * 27): the writer checkpoints every 300 ms, the scrub looks every 500 ms, so the archived copy is
 * the only witness, and retention prunes it a few snapshot rounds later.
 *
 * The archiver records where the segment's valid records end in its sidecar, so an integrity
 * pass — even the first of an agent just started beside a large archive, which knows no copy yet
 * — publishes the damage without decompressing a single copy, and looks at the newest copies
 * first, and lists the archive again as it goes, so a copy archived during a long pass is checked
 * next. Then `repair-archive` heals it (no sound copy: quarantined, a full snapshot past it).
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { Failure, FailureInput, FailureSink } from '../../../core/contracts/Failure.js';
import type { HealingContext } from '../../../core/contracts/HealingAction.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { checkLiveWal } from '../../../plugins/corruption-detector/walCheck.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { findDamage } from '../../../plugins/snapshot-manager/integrity.js';
import { repairArchiveAction, type RepairableStore } from '../../../plugins/snapshot-manager/integrityActions.js';
import { IntegrityDetector } from '../../../plugins/snapshot-manager/integrityDetector.js';
import { SnapshotScheduler, type ScheduledStore } from '../../../plugins/snapshot-manager/scheduler.js';
import { listArchive, walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

const SEGMENT = 65536;
const HEADER = pagestore.log.segmentHeaderSize;

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

async function commitSome(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % 40), 64, Buffer.from(`${tag}-${i};`.repeat(10)));
    await tx.commit();
  }
}

const liveStarts = (dir: string) => pagestore.log.listSegments(pagestore.files.logDir(dir));

describe('a live WAL segment cut, retired and archived before the WAL scrub reads it', () => {
  const pool = new WorkerPool({ threads: 1 });
  const log = captureLogger().log;
  const hctx: HealingContext = { signal: new AbortController().signal, log, options: {} };
  after(() => pool.close());

  /**
   * A store with an archive of sound segments (as an agent finds it when it starts), whose live
   * segment is then cut inside its records, as the chaos fault does: the writer goes on writing at
   * its own offsets (a hole where the cut tail was) and moves past it. Not yet checkpointed.
   */
  async function cutStore(name: string): Promise<{ dir: string; snaps: string; store: PageStore; cutStart: number; cutAt: number }> {
    const dir = tmpStoreDir(`ra-livecut-${name}-`);
    const snaps = path.join(path.dirname(dir), 'snaps');
    const store = await PageStore.open(dir, { create: true, pageCount: 64, pageSize: 4096, segmentSize: SEGMENT, checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30, archiver: walArchiver(pagestore, snaps) });
    await commitSome(store, 1200, 'a');
    await store.checkpoint();
    const sound = await listArchive(snaps);
    assert.ok(sound.length >= 5, `segments archived: ${sound.length}`);
    const cutStart = (await liveStarts(dir)).at(-1)!;
    const cutFile = path.join(pagestore.files.logDir(dir), pagestore.log.segmentName(cutStart));
    // Where its records end (a segment is made at full size: zeros after its records).
    const size = pagestore.log.segmentContent(readFileSync(cutFile), statSync(cutFile).size, SEGMENT).length;
    assert.ok(size > HEADER + 2000, `the live segment holds records: ${size} bytes`);
    const cutAt = HEADER + Math.floor((size - HEADER) / 2) + 3; // odd: inside a record (records are 8-aligned)
    truncateSync(cutFile, cutAt);
    while ((await liveStarts(dir)).at(-1) === cutStart) await commitSome(store, 20, 'b');
    return { dir, snaps, store, cutStart, cutAt };
  }

  it('is published from the sidecar by a fresh pass (no copy decompressed, newest first), and healed by repair-archive', async () => {
    const { dir, snaps, store, cutStart, cutAt } = await cutStore('fresh');
    try {
      const beforeRetire = await checkLiveWal(pagestore, dir);
      assert.ok(beforeRetire.damage.some((d) => d.segmentStartLsn === cutStart), 'while live, the WAL scrub would have found it');

      // The owner's checkpoint retires it first: archived, and gone from the live log.
      await store.checkpoint();
      assert.ok(!(await liveStarts(dir)).includes(cutStart), 'the cut segment retired');
      assert.deepEqual((await checkLiveWal(pagestore, dir)).damage, [], 'the live WAL scrub has nothing left to find');
      const archived = await listArchive(snaps);
      const cut = archived.find((a) => a.startLsn === cutStart)!;
      assert.ok(cut, 'the cut segment was archived');
      assert.ok(cut.records && cut.records.end < cut.rawBytes && cut.records.end <= cutAt, `the sidecar records where the valid records stop: ${JSON.stringify(cut.records)} of ${cut.rawBytes}`);
      assert.ok(archived.filter((a) => a.startLsn !== cutStart).every((a) => a.records?.end === a.rawBytes), 'the sound segments are recorded whole');

      // An agent just started: its detector has walked no copy yet. Its pass reads each
      // compressed file once — no raw bytes — and the newest copies first.
      const paced: number[] = [];
      const damage = await findDamage(snaps, pagestore, new Set(), async (bytes) => {
        paced.push(bytes);
      });
      const newestFirst = [...archived].sort((a, b) => b.startLsn - a.startLsn).map((a) => a.bytes);
      assert.deepEqual(paced, newestFirst, 'one read per compressed copy, newest first');
      assert.equal(damage.length, 1, JSON.stringify(damage));
      assert.equal(damage[0]!.startLsn, cutStart);
      assert.equal(damage[0]!.recordLsn, cutStart + cut.records!.end);

      const detector = new IntegrityDetector([{ id: 'db', dir: snaps, engine: pagestore, everyMs: 0 }], log);
      const out = sink();
      await detector.pass({ id: 'db', dir: snaps, engine: pagestore, everyMs: 0 }, out);
      assert.equal(out.published.length, 1);
      const f = out.published[0]!;
      assert.equal(f.kind, 'archive-corruption');
      assert.equal(f.evidence.startLsn, cutStart);
      assert.equal(f.evidence.recordLsn, cutStart + cut.records!.end);
      assert.match(String(f.evidence.problem), /damaged before it was archived/);

      // Healed as any archived damage: no sound copy anywhere, so quarantined, a full snapshot past it.
      const s: ScheduledStore = { id: 'db', path: dir, engine: pagestore, dir: snaps, fullEvery: 12, keep: { full: 5, incremental: 12 } };
      const repair = repairArchiveAction(new Map<string, RepairableStore>([['db', s]]), new SnapshotScheduler([s], pool, log));
      assert.equal(await repair.verify(f, hctx), false);
      const r = await repair.apply(f, hctx);
      assert.match(r!.summary!, /no sound copy .* quarantined/);
      assert.equal(await repair.verify(f, hctx), true);
      assert.deepEqual(await findDamage(snaps, pagestore), []);
    } finally {
      await store.close();
    }
  });

  it('archived while a pass runs: checked next, ahead of the older copies still to check', async () => {
    const { snaps, store, cutStart } = await cutStore('midpass');
    try {
      const listed = (await listArchive(snaps)).sort((a, b) => b.startLsn - a.startLsn);
      // The owner's checkpoint retires the cut segment (and the sound ones before it) while the
      // pass checks its first copy; the pass lists the archive again after two.
      let retired = false;
      const paced: number[] = [];
      const damage = await findDamage(snaps, pagestore, new Set(), async (bytes) => {
        paced.push(bytes);
        if (!retired) {
          retired = true;
          await store.checkpoint();
        }
      }, 2);
      const arrived = (await listArchive(snaps)).filter((a) => a.startLsn > listed[0]!.startLsn).sort((a, b) => b.startLsn - a.startLsn);
      assert.ok(arrived.some((a) => a.startLsn === cutStart), 'the cut segment was archived during the pass');
      assert.deepEqual(paced, [...listed.slice(0, 2), ...arrived, ...listed.slice(2)].map((a) => a.bytes), 'the two newest listed, then what arrived (newest first), then the rest');
      assert.deepEqual(damage.map((d) => d.startLsn), [cutStart]);
    } finally {
      await store.close();
    }
  });
});

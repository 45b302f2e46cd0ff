// Adversarial (session 11, adv11) on 05972a2's WalWriter.sealIfCut: when the primary's live
// FULL_SIZE segment was cut under its writer, a checkpoint moves the log on to the next segment
// although the current one has room (the checkpoint's record starts it). A replica's log checks
// each run against its end and accepts a jump to the next segment only when the run's first
// record would not have fitted, or at a fork (replicaLog.ts `check`): the sealed jump is neither,
// so the replica refuses the primary's next run as a gap ("records are missing") and can follow
// no further. The cut here is in the segment's zero tail — no record is lost at all — yet the
// replica stops following.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { openReplica } from '../../../plugins/pagestore/replica.js';
import { segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import { PAGE, PAGES, SEGMENT, primaryRuns } from '../../helpers/replica.js';
import { copyStoreDir } from '../../helpers/store.js';

async function commits(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % (PAGES - 1)), 100, Buffer.from(`${tag}${i};`.repeat(4)));
    await tx.commit();
  }
}

describe('a live segment cut under the writer, sealed by a checkpoint', () => {
  it("leaves a replica able to follow the primary's log", async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'ra-adv11-seal-'));
    const dir = path.join(root, 'primary');
    const archive = path.join(root, 'archive');
    const base = path.join(root, 'base');
    mkdirSync(archive);
    const created = await PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: SEGMENT, controlSocket: false, checkpointIntervalMs: 0 });
    await created.close();
    copyStoreDir(dir, base);
    const store = await PageStore.open(dir, {
      controlSocket: false,
      checkpointIntervalMs: 0,
      checkpointWalBytes: Number.MAX_SAFE_INTEGER,
      archiver: async (seg) => copyFileSync(seg.file, path.join(archive, path.basename(seg.file))),
    });
    let sealedFrom: number;
    try {
      await commits(store, 20, 'a');
      const walDir = path.join(dir, 'wal');
      const live = path.join(walDir, readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
      // Cut to where its records end: only zeros go.
      const records = segmentContentLength(readFileSync(live));
      assert.ok(records < SEGMENT / 2, `records end at ${records}`);
      truncateSync(live, records);
      sealedFrom = parseInt(path.basename(live).slice(0, 16), 16) + SEGMENT;
      await store.checkpoint();
      await commits(store, 20, 'b');
      assert.ok(store.endLsn > sealedFrom, 'the checkpoint moved the log on to the next segment');
    } finally {
      await store.close();
    }
    const replicaDir = path.join(root, 'replica');
    copyStoreDir(base, replicaDir);
    const replica = await openReplica(replicaDir);
    let lastEnd = 0;
    try {
      const from = replica.position().durableLsn;
      const runs = primaryRuns({ dir, archive, base }, from, 8, 1);
      assert.ok(runs.some((r) => r.startLsn >= sealedFrom), 'runs past the sealed segment');
      for (const run of runs) await replica.append(run.bytes, run.startLsn, run.endLsn, 0);
      lastEnd = runs.at(-1)!.endLsn;
      assert.equal(replica.position().durableLsn, lastEnd);
    } finally {
      await replica.close();
    }
    // And reopened (its own scan of the jump), it resumes at the same end.
    const again = await openReplica(replicaDir);
    try {
      assert.equal(again.position().durableLsn, lastEnd);
    } finally {
      await again.close();
    }
  });
});

/**
 * The owner's open does not wait for the end-of-recovery checkpoint (recovery.ts
 * `deferCheckpoint`): the store serves transactions with undo's pages dirty in its cache while
 * that checkpoint runs in the background. A kill -9 before it completes must lose no
 * acknowledged commit and show no loser's write: recovery runs again from the old redo point.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, it } from 'node:test';
import { readControl } from '../../../plugins/pagestore/control.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { dataBytes, killedWriter, tmpStoreDir } from '../../helpers/store.js';
import { fixture } from '../../helpers/paths.js';

const PAGES = 512;
const PAGE = 4096;
const LOSERS = 3;

/** What pagestoreKill's losers wrote (page PAGES-1-j, offsets 100 and 3000) is gone. */
function assertNoLoser(page: Buffer, pageId: number): void {
  assert.ok(page.subarray(100, 160).every((b) => b === 0), `page ${pageId}: loser write at 100 visible`);
  assert.ok(page.subarray(3000, 3011).every((b) => b === 0), `page ${pageId}: loser write at 3000 visible`);
}

async function readPages(dir: string, ids: number[]): Promise<Map<number, Buffer>> {
  const store = await PageStore.open(dir, { controlSocket: false });
  try {
    const tx = store.begin();
    const out = new Map<number, Buffer>();
    for (const id of ids) out.set(id, await tx.read(id));
    await tx.commit();
    return out;
  } finally {
    await store.close();
  }
}

function openCommitKill(dir: string, fault: string, commits: number): { acks: number[]; opened: boolean; stdout: string } {
  const r = spawnSync(process.execPath, [fixture('openCommitKill.js'), JSON.stringify({ dir, commits })], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, RA_FAULT: fault } });
  assert.equal(r.signal, 'SIGKILL', `the child (RA_FAULT=${fault}) was to die at its fault point: ${r.signal ?? r.status} ${r.stdout.slice(-300)} ${r.stderr.slice(-500)}`);
  const acks = [...r.stdout.matchAll(/^ack (\d+)$/gm)].map((m) => Number(m[1]));
  return { acks, opened: r.stdout.includes('opened '), stdout: r.stdout };
}

describe('deferred end-of-recovery checkpoint', () => {
  it('opens with undo done but not checkpointed; the store sees no loser; its checkpoint then moves the redo point', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 200, open: LOSERS, pages: PAGES });
    const before = await readControl(dir);
    const store = await PageStore.open(dir, { controlSocket: false, checkpointIntervalMs: 0 });
    try {
      assert.equal(store.recovery.checkpointDeferred, true);
      assert.equal(store.recovery.passes.checkpointMs, 0);
      assert.equal(store.recovery.transactionsRolledBack, LOSERS);
      // Read at once, whether or not the background checkpoint has written undo's pages yet.
      const tx = store.begin();
      for (let j = 0; j < LOSERS; j++) assertNoLoser(await tx.read(PAGES - 1 - j), PAGES - 1 - j);
      await tx.commit();
      const ck = await store.checkpoint();
      assert.ok(ck.redoLsn > before.redoLsn);
      // The writer reopened the log with R taken from the segment recovery scanned (redoStream.ts
      // positionAt), and folded on from there: the file, read afresh, agrees.
      const wal = (store as unknown as { wal: { rolling: bigint } }).wal;
      assert.equal(wal.rolling, (await rollingAt(path.join(dir, 'wal'), store.geometry.storeId, store.geometry.segmentSize, store.endLsn)).rolling);
    } finally {
      await store.close();
    }
    const after = await readControl(dir);
    assert.ok(after.checkpointLsn > before.checkpointLsn, 'the deferred checkpoint was recorded');
  });

  it('recover() (CLI, restore, rollback) still returns with its checkpoint done', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 100, open: LOSERS, pages: PAGES });
    const before = await readControl(dir);
    const stats = await recover(dir);
    assert.equal(stats.checkpointDeferred, false);
    assert.equal(stats.transactionsRolledBack, LOSERS);
    const after = await readControl(dir);
    assert.ok(after.checkpointLsn > before.checkpointLsn && after.redoLsn > before.redoLsn, 'a new checkpoint in force');
  });

  it('a kill -9 after the open and before its checkpoint completes loses no acknowledged commit and shows no loser', async () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 2000, open: LOSERS, pages: PAGES });
    const before = await readControl(dir);

    // 1. Killed in the open: recovery done, the store ready, its checkpoint not yet started.
    const k1 = openCommitKill(dir, 'open-before-checkpoint:1', 50);
    assert.equal(k1.opened, false, 'killed inside the open');
    assert.equal((await readControl(dir)).checkpointLsn, before.checkpointLsn, 'no checkpoint recorded');

    // 2. Killed at the control switch of the background checkpoint, with commits (one per page)
    //    acknowledged meanwhile: the control file still names the checkpoint of before the first crash.
    const k2 = openCommitKill(dir, 'checkpoint-before-control:1', PAGES - 1);
    assert.ok(k2.opened, `opened: ${k2.stdout.slice(0, 300)}`);
    assert.match(k2.stdout, /"deferred":true/);
    const mid = await readControl(dir);
    assert.equal(mid.checkpointLsn, before.checkpointLsn, 'the kill came before the deferred checkpoint took effect');
    assert.ok(k2.acks.length >= 1, `commits were acknowledged before the kill (${k2.acks.length})`);
    console.log(`# ${k2.acks.length} commits acknowledged between the open and the kill`);

    // 3. Recovery from the old redo point: every acknowledged commit there, no loser visible,
    //    and nothing left to roll back (undo's CLRs and abort records were durable at the open).
    const stats = await recover(dir);
    assert.equal(stats.redoLsn, before.redoLsn, 'recovered from the old redo point');
    assert.equal(stats.transactionsRolledBack, 0, 'the losers had ended in the log before the kills');
    const bytes = dataBytes(dir);
    for (let id = 0; id < PAGES; id++) assert.equal(verifyPage(bytes.subarray(id * PAGE, (id + 1) * PAGE), id), null, `page ${id}`);
    const last = new Map<number, number>();
    for (const i of k2.acks) last.set(1 + (i % (PAGES - 1)), i);
    const pages = await readPages(dir, [...new Set([...last.keys(), ...Array.from({ length: LOSERS }, (_, j) => PAGES - 1 - j)])]);
    for (const [pageId, i] of last) assert.equal(pages.get(pageId)!.subarray(1500, 1500 + `ack${i};`.length).toString(), `ack${i};`, `page ${pageId}: acknowledged commit ${i}`);
    for (let j = 0; j < LOSERS; j++) assertNoLoser(pages.get(PAGES - 1 - j)!, PAGES - 1 - j);
  });
});

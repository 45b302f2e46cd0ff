// restore --time T keeps no commit made after T when commits run during the snapshot's WAL copy,
// or when the wall clock steps back between commits and a snapshot (#16 item 3, adversarial review).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { pagestore } from '../../helpers/engine.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { commitOne, commits, restore, restoreJson, sleep, storeOptions } from './pitrHelpers.js';

describe('restore --time: no commit later than T is kept', () => {
  it('commits racing the snapshot\'s WAL copy (the snapshot\'s own finish time as T)', async () => {
    const root = path.dirname(tmpStoreDir('ra-pitr-race-'));
    const store = path.join(root, 'store');
    const snaps = path.join(root, 'snaps');
    const pool = new WorkerPool({ threads: 2 });
    const realNow = Date.now;
    try {
      const s = await PageStore.open(store, { ...storeOptions, checkpointWalBytes: 1 << 30, archiver: walArchiver(pagestore, snaps) });
      await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
      await commits(s, 1500, 'a'); // a WAL copy of several segments
      await sleep(5);
      // A clock 1 ms later at every call: ms ties would hide the race.
      let tick = realNow();
      Date.now = () => ++tick;
      let stop = false;
      let n = 0;
      const writer = (async () => {
        while (!stop) {
          await commitOne(s, n++, 'b');
          await sleep(0);
        }
      })();
      const m = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
      stop = true;
      await writer;
      Date.now = realNow;
      await s.close();
      assert.ok(n > 0, 'commits ran during the snapshot');
      const r = restoreJson(snaps, path.join(root, 'r'), '--time', String(m.finishedAt));
      assert.ok(r.stoppedAt!.time! <= m.finishedAt, `restore --time ${m.finishedAt} kept a commit made at ${r.stoppedAt!.time}, after T`);
    } finally {
      Date.now = realNow;
      await pool.close();
    }
  });

  it('the clock steps back between commits and a snapshot: that snapshot is not a base for T', async () => {
    const root = path.dirname(tmpStoreDir('ra-pitr-clock-'));
    const store = path.join(root, 'store');
    const snaps = path.join(root, 'snaps');
    const pool = new WorkerPool({ threads: 2 });
    const realNow = Date.now;
    try {
      const s = await PageStore.open(store, { ...storeOptions, checkpointWalBytes: 80 * 1024, archiver: walArchiver(pagestore, snaps) });
      await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
      await sleep(5);
      await commits(s, 100, 'a'); // at the true time
      Date.now = () => realNow() - 60_000; // NTP steps the clock back a minute
      const m = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
      await commits(s, 100, 'c');
      await s.close();
      Date.now = realNow;
      // The second snapshot "finished" before T but holds the 'a' commits, made after T; the
      // first finished after T: no snapshot is the store at T.
      const T = m.finishedAt + 1;
      const r = restore(snaps, path.join(root, 'r'), '--json', '--time', String(T));
      assert.equal(r.status, 2, `restore --time ${new Date(T).toISOString()} succeeded: ${r.stdout}`);
      assert.match(r.stderr, new RegExp(`no snapshot is consistent at or before ${new Date(T).toISOString()}: each one finished by then holds a later commit \\(snapshot ${m.id}: .*the clock may have stepped back\\); restore by --lsn instead`));
    } finally {
      Date.now = realNow;
      await pool.close();
    }
  });

  it('the clock steps back across a restart: commit times still never go backwards in the log', async () => {
    const root = path.dirname(tmpStoreDir('ra-pitr-reopen-'));
    const store = path.join(root, 'store');
    const walDir = pagestore.files.logDir(store);
    const realNow = Date.now;
    let before: Array<{ lsn: number; time: number }> = [];
    let end = 0;
    try {
      const s1 = await PageStore.open(store, { ...storeOptions, checkpointWalBytes: 1 << 30 });
      end = (await commits(s1, 50, 'a')).end;
      await s1.close();
      before = await commitsOnDisk(walDir);
      Date.now = () => realNow() - 60_000; // stepped back while the store was down
      const s2 = await PageStore.open(store);
      await commits(s2, 50, 'b');
      await s2.close();
    } finally {
      Date.now = realNow;
    }
    const lastBefore = Math.max(...before.map((c) => c.time));
    const after = (await commitsOnDisk(walDir)).filter((c) => c.lsn >= end);
    assert.ok(after.length > 0, "commits after the restart are in the log");
    const back = after.find((c) => c.time < lastBefore);
    assert.equal(back, undefined, `the commit at LSN ${back?.lsn} after the restart carries ${back?.time}, before the last one before it, ${lastBefore}`);
  });
});

/** The commit records of the log on disk, with their LSN and time. */
async function commitsOnDisk(walDir: string): Promise<Array<{ lsn: number; time: number }>> {
  const { log } = pagestore;
  const out: Array<{ lsn: number; time: number }> = [];
  for (const start of await log.listSegments(walDir)) {
    const buf = readFileSync(path.join(walDir, log.segmentName(start)));
    log.scanRecords(buf, log.segmentHeaderSize, buf.byteLength, start + log.segmentHeaderSize, (at) => {
      if (log.recordKind(buf, at) === 'commit') out.push({ lsn: start + at, time: log.commitTime(buf, at)! });
    });
  }
  return out;
}

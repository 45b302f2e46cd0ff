// The agent runs as root; the application that owns a store may not. Whatever root creates while
// it recovers, checkpoints, snapshots or restores that user's store must stay usable by the
// user: with 0600 files, a control file or WAL segment of root's would lock the owner out of its
// own store. Real processes: the owner's writer runs as user nobody.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { controlSocketOf } from '../../../plugins/pagestore/controlSocket.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { restoreSnapshot } from '../../../plugins/snapshot-manager/restore.js';
import { nobody, type OtherUser } from '../../helpers/otherUser.js';
import { fixture } from '../../helpers/paths.js';
import { pagestore } from '../../helpers/engine.js';

/** The pagestoreKill writer as `user`: opens (or creates) the store, commits, leaves losers, dies by SIGKILL. */
function killedWriterAs(user: OtherUser, dir: string): void {
  const r = spawnSync(process.execPath, [fixture('pagestoreKill.js'), JSON.stringify({ dir, commits: 20, open: 2, pages: 16 })], { uid: user.uid, gid: user.gid, cwd: '/', encoding: 'utf8', timeout: 60_000 });
  assert.ok(r.signal === 'SIGKILL' && r.stdout.includes('ready'), `the writer as ${user.name} did not run as planned: ${r.error?.message ?? ''} ${r.signal ?? r.status} ${r.stderr}`);
}

/** Every entry under `root` whose owner is not `uid`. */
function notOwnedBy(root: string, uid: number): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const p = path.join(root, name);
    const st = lstatSync(p);
    if (st.uid !== uid) out.push(`${path.relative(root, p)} (uid ${st.uid})`);
    if (st.isDirectory()) out.push(...notOwnedBy(p, uid).map((q) => `${name}/${q}`));
  }
  return out;
}

describe("root working on another user's store", () => {
  it('gives what it creates there to that user, who can open the store again afterwards', async () => {
    const user = nobody();
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-owner-'));
    chmodSync(base, 0o755);
    const home = path.join(base, 'home');
    mkdirSync(home);
    chownSync(home, user.uid, user.gid);
    const store = path.join(home, 'store');
    killedWriterAs(user, store);

    // What the agent does, as root: crash recovery, a checkpoint by opening the store (which
    // serves the socket meanwhile), a snapshot and a restore next to it.
    await recover(store);
    const s = await PageStore.open(store, { checkpointIntervalMs: 0 });
    await s.checkpoint();
    await s.close();
    const pool = new WorkerPool({ threads: 1 });
    try {
      await createSnapshot({ engine: pagestore, store, dir: path.join(home, 'snaps'), pool });
      await restoreSnapshot({ engine: pagestore, snapshotDir: path.join(home, 'snaps'), to: path.join(home, 'restored', 'store'), pool });
    } finally {
      await pool.close();
    }
    assert.deepEqual(notOwnedBy(home, user.uid), [], `everything under ${home} is ${user.name}'s`);
    assert.ok(readdirSync(path.join(home, 'snaps', 'snapshots')).length === 1 && readdirSync(path.join(home, 'restored', 'store')).includes('pages.db'), 'the walk saw the snapshot and the restore');

    // The owner opens both again, commits, and serves its control socket (left behind by the kill).
    for (const dir of [store, path.join(home, 'restored', 'store')]) {
      killedWriterAs(user, dir);
      const sock = lstatSync(controlSocketOf(dir));
      assert.ok(sock.isSocket() && sock.uid === user.uid, `${user.name} served its control socket in ${dir}`);
    }
  });
});

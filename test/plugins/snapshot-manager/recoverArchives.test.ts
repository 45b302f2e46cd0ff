// Recovery archives before it recycles (issue #11, defect 5): a store remembers the archive its
// owner configured, so a `recover` from the command line after the owner was killed — or any
// owner that forgets the archiver — never deletes a WAL segment the archive lacks, and a page
// repair or a point-in-time restore can still replay the whole log.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, writeSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { cli } from '../../helpers/cli.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { balancesAfter } from '../../helpers/transfers.js';
import { pagestore } from '../../helpers/engine.js';

const PAGE = 4096;

const liveSegments = (dir: string) => readdirSync(path.join(dir, 'wal')).filter((n) => n.endsWith('.wal')).sort();
const archived = (snaps: string) => (existsSync(path.join(snaps, 'wal')) ? readdirSync(path.join(snaps, 'wal')).filter((n) => n.endsWith('.wal.json')).map((n) => n.replace(/\.json$/, '')) : []);

/** Runs the fixture to its SIGKILL, taking a snapshot when it says "snap". */
async function killedArchivingWriter(spec: { dir: string; archive: string; pages: number; before: number; after: number }): Promise<void> {
  const child = spawn(process.execPath, [fixture('archivingWriterKill.js'), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout! })) {
    if (line === 'snap') {
      const pool = new WorkerPool({ threads: 1 });
      try {
        await createSnapshot({ engine: pagestore, store: spec.dir, dir: spec.archive, pool });
      } finally {
        await pool.close();
      }
      child.stdin!.write('go\n');
    }
  }
  assert.equal(await exited, 'SIGKILL', 'the writer died by SIGKILL as planned');
}

async function balances(dir: string, pages: number): Promise<Map<number, bigint>> {
  const store = await PageStore.open(dir);
  try {
    const tx = store.begin();
    const out = new Map<number, bigint>();
    for (let p = 2; p < pages; p++) {
      const b = await tx.read(p);
      out.set(p, b.readUInt32LE(0) === 0 ? 1000n : b.readBigInt64LE(8));
    }
    await tx.commit();
    return out;
  } finally {
    await store.close();
  }
}

describe('recovery archives the WAL before it recycles it', () => {
  for (const v of [{ pages: 40, before: 150, after: 1400, page: 7 }, { pages: 90, before: 60, after: 2300, page: 33 }]) {
    it(`recover from the command line archives every segment it removes, and repair replays past it (${v.after} transfers after the snapshot)`, async () => {
      const dir = tmpStoreDir('ra-recarch-');
      const snaps = path.join(path.dirname(dir), 'snaps');
      await killedArchivingWriter({ dir, archive: snaps, pages: v.pages, before: v.before, after: v.after });
      const before = liveSegments(dir);
      assert.ok(before.length >= 4, `the writer left ${before.length} segments`);

      const r = cli(['recover', '--store', dir, '--json']);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const removed = before.filter((s) => !liveSegments(dir).includes(s));
      assert.ok(removed.length >= 2, `recovery recycled ${removed.length} segments`);
      const inArchive = archived(snaps);
      assert.deepEqual(removed.filter((s) => !inArchive.includes(s)), [], 'every removed segment is in the archive');

      // A page rotted on disk comes back from the snapshot + the archived and live WAL.
      const fd = openSync(path.join(dir, 'pages.db'), 'r+');
      writeSync(fd, Buffer.from('bit rot'), 0, 7, v.page * PAGE + 500);
      closeSync(fd);
      const rep = cli(['repair', '--store', dir, '--page', String(v.page), '--snapshot-dir', snaps]);
      assert.equal(rep.status, 0, rep.stdout + rep.stderr);
      assert.deepEqual(await balances(dir, v.pages), balancesAfter(v.before + v.after, v.pages));
    });
  }

  it('an owner or a recovery without the archiver keeps every segment, for the next one that archives', async () => {
    const dir = tmpStoreDir('ra-recarch-keep-');
    const snaps = path.join(path.dirname(dir), 'snaps');
    await killedArchivingWriter({ dir, archive: snaps, pages: 40, before: 50, after: 900 });
    const before = liveSegments(dir);
    assert.equal(JSON.parse(readFileSync(path.join(dir, 'archive'), 'utf8')).target, path.resolve(snaps), 'the store remembers its archive');

    await recover(dir); // the library, no archiver: keeps them
    assert.deepEqual(before.filter((s) => !liveSegments(dir).includes(s)), [], 'no segment removed by a recovery without the archiver');
    const store = await PageStore.open(dir, { checkpointIntervalMs: 0 });
    const ck = await store.checkpoint();
    await store.close();
    assert.equal(ck.segmentsRecycled, 0, 'nor by an owner without the archiver');
    assert.deepEqual(before.filter((s) => !liveSegments(dir).includes(s)), []);

    const r = cli(['recover', '--store', dir]);
    assert.equal(r.status, 0, r.stderr);
    const removed = before.filter((s) => !liveSegments(dir).includes(s));
    assert.ok(removed.length >= 2, `the archiving recovery recycled ${removed.length}`);
    assert.deepEqual(removed.filter((s) => !archived(snaps).includes(s)), []);
  });
});

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { archiveDirOf, snapshotPath, walFileName, type Manifest } from '../../../plugins/snapshot-manager/manifest.js';
import { pruneSnapshots } from '../../../plugins/snapshot-manager/prune.js';
import { restoreSnapshot } from '../../../plugins/snapshot-manager/restore.js';
import { verifySnapshots } from '../../../plugins/snapshot-manager/verify.js';
import { listArchive, walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { cli } from '../../helpers/cli.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

async function commitSome(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % (store.pageCount - 1)), 64, Buffer.from(`${tag}-${i};`.repeat(20)));
    await tx.commit();
  }
}

describe('snapshot verify, restore refusals, WAL gaps and retention', () => {
  const root = path.dirname(tmpStoreDir('ra-snapfail-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  const taken: Manifest[] = [];
  /** A pristine copy of the snapshot directory; each test damages its own copy. */
  const copyOf = (name: string) => {
    const d = path.join(root, name);
    cpSync(snaps, d, { recursive: true });
    return d;
  };

  before(async () => {
    const s = await PageStore.open(store, { create: true, pageCount: 300, pageSize: 4096, segmentSize: 65536, checkpointWalBytes: 80 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    await commitSome(s, 50, 'a');
    taken.push(await createSnapshot({ engine: pagestore, store, dir: snaps, pool }));
    await commitSome(s, 150, 'b');
    taken.push(await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true }));
    await commitSome(s, 150, 'c');
    taken.push(await createSnapshot({ engine: pagestore, store, dir: snaps, pool }));
    await commitSome(s, 100, 'd');
    taken.push(await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true }));
    await commitSome(s, 100, 'e');
    await s.close();
  });
  after(() => pool.close());

  it('verifies a sound directory and restores it to the end of the archived WAL', async () => {
    const v = await verifySnapshots(pagestore, snaps);
    assert.deepEqual(v.problems, []);
    assert.equal(v.snapshots, 4);
    const to = path.join(root, 'r-ok');
    await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, pool });
    // The store closed with a checkpoint that archived all but its last segment, so the restore
    // holds at least the last snapshot's commits; page by page, pages it has equal the store's
    // or are older versions. Every commit of phase d (before the last snapshot's end) is there.
    const restored = readFileSync(path.join(to, 'pages.db'));
    assert.ok(restored.includes(Buffer.from('d-99;')));
  });

  it('finds a corrupted chunk with verify (exit 4, naming the file) and restore refuses it, leaving the target untouched', async () => {
    const d = copyOf('bad-chunk');
    const chunk = path.join(snapshotPath(d, taken[0]!.id), taken[0]!.chunks[0]!.file);
    const bytes = readFileSync(chunk);
    bytes[bytes.byteLength >> 1] ^= 0xff;
    writeFileSync(chunk, bytes);
    const r = cli(['snapshot', 'verify', d]);
    assert.equal(r.status, 4, r.stderr + r.stdout);
    assert.match(r.stdout, /BAD .*chunk-00000\.lz4.*checksum/);
    const to = path.join(root, 'r-bad-chunk');
    await assert.rejects(restoreSnapshot({ engine: pagestore, snapshotDir: d, to, lsn: taken[1]!.endLsn, pool }), (e: Error & { code?: string }) => e.code === 'RA_ERR_SNAPSHOT_CORRUPT' && e.message.includes('chunk-00000.lz4'));
    assert.equal(existsSync(to), false);
    assert.deepEqual(readdirSync(root).filter((n) => n.includes('restoring')), []);
  });

  it('finds a truncated manifest with verify and restore refuses it', async () => {
    const d = copyOf('bad-manifest');
    const file = path.join(snapshotPath(d, taken[2]!.id), 'manifest.json');
    writeFileSync(file, readFileSync(file).subarray(0, 200));
    const r = cli(['snapshot', 'verify', d, '--json']);
    assert.equal(r.status, 4, r.stderr + r.stdout);
    const out = JSON.parse(r.stdout) as { problems: Array<{ where: string; problem: string }> };
    assert.ok(out.problems.some((p) => p.where === taken[2]!.id && /not valid JSON/.test(p.problem)));
    await assert.rejects(restoreSnapshot({ engine: pagestore, snapshotDir: d, to: path.join(root, 'r-bad-manifest'), pool }), /manifest\.json is not valid JSON/);
  });

  it('names the missing LSN range when an archived segment is gone', async () => {
    const d = copyOf('gap');
    const archive = await listArchive(d);
    const inner = archive.find((a) => a.startLsn > taken[1]!.endLsn && a.startLsn + 65536 < taken[2]!.startLsn);
    assert.ok(inner, 'an archived segment between the second and third snapshots');
    unlinkSync(path.join(d, 'wal', `${inner.startLsn.toString(16).padStart(16, '0')}.wal.json`));
    const target = inner.startLsn + 1000;
    await assert.rejects(restoreSnapshot({ engine: pagestore, snapshotDir: d, to: path.join(root, 'r-gap'), lsn: target, pool }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'RA_ERR_WAL_GAP');
      assert.match(e.message, new RegExp(`LSN ${inner.startLsn} to ${inner.startLsn + 65535}`));
      return true;
    });
  });

  it('refuses a non-empty target without --force, replaces it with --force, and never a store a live process holds', async () => {
    const to = path.join(root, 'r-force');
    await restoreSnapshot({ engine: pagestore, snapshotDir: snaps, to, lsn: taken[0]!.endLsn, pool });
    const first = readFileSync(path.join(to, 'pages.db'));
    const r1 = cli(['restore', '--snapshot-dir', snaps, '--to', to]);
    assert.equal(r1.status, 2);
    assert.match(r1.stderr, /refusing to write over it \(pass --force/);
    assert.ok(readFileSync(path.join(to, 'pages.db')).equals(first), 'unchanged');
    const r2 = cli(['restore', '--snapshot-dir', snaps, '--to', to, '--force', '--json']);
    assert.equal(r2.status, 0, r2.stderr);
    assert.ok(!readFileSync(path.join(to, 'pages.db')).equals(first), 'replaced by the newer state');

    // A live owner: a child process holds the store open.
    const child = spawn(process.execPath, ['--input-type=module', '-e', `import { PageStore } from ${JSON.stringify(path.join(path.dirname(fixture('x')), '../../plugins/pagestore/pageStore.js'))}; await PageStore.open(${JSON.stringify(to)}); console.log('open'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) => child.stdout!.on('data', (b: Buffer) => b.toString().includes('open') && resolve()));
      const r3 = cli(['restore', '--snapshot-dir', snaps, '--to', to, '--force']);
      assert.equal(r3.status, 3, r3.stderr);
      assert.match(r3.stderr, /locked by process \d+/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('prune keeps what kept snapshots and the WAL chain need', async () => {
    const d = copyOf('prune');
    const before = (await listArchive(d)).map((a) => a.startLsn);
    const r = await pruneSnapshots(d, { engine: pagestore, keepFull: 0, keepIncremental: 1 });
    // The newest incremental needs its full base; the older pair goes.
    assert.deepEqual(r.kept, [taken[2]!.id, taken[3]!.id]);
    assert.deepEqual(r.deleted, [taken[0]!.id, taken[1]!.id]);
    const floor = Math.floor(taken[2]!.walFromLsn / 65536) * 65536;
    assert.deepEqual(r.walSegmentsDeleted, before.filter((s) => s < floor));
    assert.ok((await listArchive(d)).every((a) => a.startLsn >= floor));
    assert.deepEqual((await verifySnapshots(pagestore, d)).problems, []);
    await restoreSnapshot({ engine: pagestore, snapshotDir: d, to: path.join(root, 'r-pruned'), pool });
    rmSync(path.join(root, 'r-pruned'), { recursive: true });
  });

  it('prune deletes an old archived segment by its name, even with its sidecar unreadable (retention reads no sidecar)', async () => {
    const d = copyOf('prune-garbage');
    const before = (await listArchive(d)).map((a) => a.startLsn);
    const floor = Math.floor(taken[2]!.walFromLsn / 65536) * 65536;
    const old = before.filter((s) => s < floor);
    assert.ok(old.length > 0, 'an archived segment below the floor');
    writeFileSync(path.join(archiveDirOf(d), `${walFileName(old[0]!)}.json`), 'not json');
    const r = await pruneSnapshots(d, { engine: pagestore, keepFull: 0, keepIncremental: 1 });
    assert.deepEqual(r.walSegmentsDeleted, old);
    assert.ok((await listArchive(d)).every((a) => a.startLsn >= floor));
  });

  it('restores to a time: the last commit at or before it', async () => {
    const to = path.join(root, 'r-time');
    const r = cli(['restore', '--snapshot-dir', snaps, '--to', to, '--time', new Date(taken[1]!.finishedAt).toISOString(), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { snapshots: string[]; targetLsn: number; endLsn: number };
    assert.deepEqual(out.snapshots, [taken[0]!.id, taken[1]!.id]);
    assert.ok(out.targetLsn >= taken[1]!.endLsn && out.targetLsn < taken[2]!.endLsn, `target ${out.targetLsn}`);
    const early = cli(['restore', '--snapshot-dir', snaps, '--to', path.join(root, 'r-time-early'), '--time', '2000-01-01T00:00:00Z']);
    assert.equal(early.status, 2, early.stderr);
    assert.match(early.stderr, /2000-01-01T00:00:00.000Z is before the oldest snapshot finished/);
  });

  it('verify of a directory with no snapshots is an error, not a pass', () => {
    const r = cli(['snapshot', 'verify', path.join(root, 'nothing-here')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /holds no snapshots/);
  });

  it('refuses to snapshot a page that fails verification on every read, naming it', async () => {
    const copy = path.join(root, 'store-corrupt');
    cpSync(store, copy, { recursive: true });
    const data = readFileSync(path.join(copy, 'pages.db'));
    data[7 * 4096 + 100] ^= 0x40;
    writeFileSync(path.join(copy, 'pages.db'), data);
    await assert.rejects(createSnapshot({ engine: pagestore, store: copy, dir: path.join(root, 'snaps-corrupt'), pool }), (e: Error & { code?: string }) => e.code === 'RA_ERR_PAGE_CORRUPT' && /page 7 /.test(e.message));
    assert.deepEqual(readdirSync(path.join(root, 'snaps-corrupt', 'snapshots')), [], 'no snapshot left behind');
  });

  it('lists snapshots from the CLI', () => {
    const r = cli(['snapshot', 'list', snaps, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout) as Array<{ id: string; kind: string }>;
    assert.deepEqual(rows.map((x) => x.kind), ['full', 'incremental', 'full', 'incremental']);
  });
});

import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { MANIFEST_FILE, snapshotPath, type Manifest } from '../../../plugins/snapshot-manager/manifest.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { cli } from '../../helpers/cli.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

async function commitSome(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % (store.pageCount - 1)), 64, Buffer.from(`${tag}-${i};`.repeat(20)));
    await tx.commit();
  }
}

interface RestoreJson { snapshots: string[]; skipped: Array<{ id: string; manifest: string; problem: string }> }

describe('restore with an unreadable manifest in the snapshot directory', () => {
  const root = path.dirname(tmpStoreDir('ra-snapskip-'));
  const store = path.join(root, 'store');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 2 });
  let full: Manifest;
  let inc: Manifest;
  const copyOf = (name: string) => {
    const d = path.join(root, name);
    cpSync(snaps, d, { recursive: true });
    return d;
  };
  /** A snapshot directory entry whose manifest holds `{}`, as a stray or half-copied one does. */
  const stray = (dir: string, id: string) => {
    mkdirSync(snapshotPath(dir, id), { recursive: true });
    const file = path.join(snapshotPath(dir, id), MANIFEST_FILE);
    writeFileSync(file, '{}');
    return file;
  };

  before(async () => {
    const s = await PageStore.open(store, { create: true, pageCount: 200, pageSize: 4096, segmentSize: 65536, checkpointWalBytes: 80 * 1024, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    await commitSome(s, 60, 'a');
    full = await createSnapshot({ engine: pagestore, store, dir: snaps, pool });
    await commitSome(s, 120, 'b');
    inc = await createSnapshot({ engine: pagestore, store, dir: snaps, pool, incremental: true });
    await commitSome(s, 40, 'c');
    await s.close();
  });
  after(() => pool.close());

  it('skips a stray manifest holding {} that no chain needs, restores, and warns naming it (text)', () => {
    const d = copyOf('stray-text');
    const newest = stray(d, '99991231T000000000Z-F');
    const oldest = stray(d, '00010101T000000000Z-F');
    const to = path.join(root, 'r-stray-text');
    const r = cli(['restore', '--snapshot-dir', d, '--to', to]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`from ${full.id} \\+ ${inc.id}`));
    for (const file of [newest, oldest]) {
      assert.ok(r.stderr.split('\n').some((l) => /warning/.test(l) && l.includes(file) && /checksum/.test(l)), `a warning names ${file}: ${r.stderr}`);
    }
    assert.ok(readFileSync(path.join(to, 'pages.db')).includes(Buffer.from('b-119;')), 'the commits before the incremental are restored');
  });

  it('says the same in --json', () => {
    const d = copyOf('stray-json');
    const file = stray(d, '99991231T000000000Z-F');
    const r = cli(['restore', '--snapshot-dir', d, '--to', path.join(root, 'r-stray-json'), '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as RestoreJson;
    assert.deepEqual(out.snapshots, [full.id, inc.id]);
    assert.deepEqual(out.skipped.map((s) => [s.id, s.manifest]), [['99991231T000000000Z-F', file]]);
    assert.match(out.skipped[0]!.problem, /checksum/);
  });

  it('still refuses when the damaged manifest is in the chain the restore needs, naming it (exit 4)', () => {
    const d = copyOf('base-damaged');
    const file = path.join(snapshotPath(d, full.id), MANIFEST_FILE);
    writeFileSync(file, '{}');
    const to = path.join(root, 'r-base-damaged');
    const r = cli(['restore', '--snapshot-dir', d, '--to', to, '--lsn', String(inc.endLsn)]);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /RA_ERR_SNAPSHOT_CORRUPT/);
    assert.ok(r.stderr.includes(file), `names ${file}: ${r.stderr}`);
    assert.ok(r.stderr.includes(inc.id), 'names the snapshot that needs it');
    assert.equal(existsSync(to), false, 'nothing restored');
  });
});

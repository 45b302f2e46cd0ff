// `recovery-agent repair`: repairs pages of a store nobody has open from a snapshot + WAL and
// prints what it did (exit 0); a page no source can rebuild exits 4 naming it; bad usage exits 2.
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { cli } from '../../helpers/cli.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

const PAGE = 4096;
const page = (dir: string, id: number) => readFileSync(path.join(dir, 'pages.db')).subarray(id * PAGE, (id + 1) * PAGE);

describe('recovery-agent repair', () => {
  it('repairs offline from a snapshot + WAL, reports, and fails clearly without a source', async () => {
    const dir = tmpStoreDir('ra-repaircli-');
    const snaps = path.join(path.dirname(dir), 'snaps');
    const s = await PageStore.open(dir, { create: true, pageCount: 32, pageSize: PAGE, segmentSize: 65536, checkpointIntervalMs: 0, archiver: walArchiver(pagestore, snaps) });
    const write = async (tag: string) => {
      const tx = s.begin();
      for (let p = 1; p < 32; p++) await tx.write(p, 0, Buffer.from(`${tag} ${p}`));
      await tx.commit();
    };
    await write('before');
    const pool = new WorkerPool({ threads: 1 });
    await createSnapshot({ engine: pagestore, store: dir, dir: snaps, pool });
    await pool.close();
    for (let i = 0; i < 20; i++) await write(`after-${i}`);
    await s.close();
    const good = [Buffer.from(page(dir, 4)), Buffer.from(page(dir, 17))];
    const fd = openSync(path.join(dir, 'pages.db'), 'r+');
    for (const id of [4, 17]) writeSync(fd, Buffer.from('bit rot'), 0, 7, id * PAGE + 300);
    closeSync(fd);

    const noSource = cli(['repair', '--store', dir, '--page', '4']);
    assert.equal(noSource.status, 4, noSource.stderr);
    // The CLI's word is its flag, not the config key the agent's page source speaks of.
    assert.match(noSource.stderr, /page 4: not repaired: .*no --snapshot-dir given/);
    assert.doesNotMatch(noSource.stderr, /snapshots\.dir/);

    const r = cli(['repair', '--store', dir, '--page', '4,17', '--snapshot-dir', snaps]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^page 4: repaired from snapshot \S+ \+ \d+ WAL record\(s\) \(offline, LSN \d+/m);
    assert.match(r.stdout, /^page 17: repaired from snapshot/m);
    assert.deepEqual([page(dir, 4), page(dir, 17)], good);

    const again = cli(['repair', '--store', dir, '--page', '4', '--snapshot-dir', snaps, '--json']);
    assert.equal(again.status, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as { repaired: Array<{ result: string }> }).repaired[0]!.result, 'already-valid');

    const usage = cli(['repair', '--store', dir, '--page', 'four']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /--page expects page ids/);
    const range = cli(['repair', '--store', dir, '--page', '99', '--snapshot-dir', snaps]);
    assert.equal(range.status, 1);
    assert.match(range.stderr, /page 99 is outside store/);
  });
});

// A replica's page replaced by a copy from elsewhere (the primary), made consistent with the
// replica's own log (#14 item 5, the replica's side, engine part: PageStoreReplica.installPage).
// The oracle is independent of the code under test: the primary's data file after a clean close,
// which the replica equals once it applied the whole log (replica.test.ts checks that).
import { diskPage, xorOnDisk } from '../../helpers/pageFile.js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { pageLsn } from '../../../plugins/pagestore/format.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { openReplica } from '../../../plugins/pagestore/replica.js';
import { PAGE, PAGES, primaryRuns, writePrimary, type Primary } from '../../helpers/replica.js';
import { copyStoreDir } from '../../helpers/store.js';

describe('replica installPage', () => {
  let root: string;
  let primary: Primary;
  let n = 0;
  const newReplica = () => {
    const dir = path.join(root, `replica-${n++}`);
    copyStoreDir(primary.base, dir);
    return dir;
  };

  before(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'ra-replinstall-'));
    primary = await writePrimary(root, 400, 120);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('installs an old copy (the base\'s) of damaged pages, page 0 among them, redone to the applied LSN: byte-equal to the primary', async () => {
    const dir = newReplica();
    const replica = await openReplica(dir);
    try {
      for (const r of primaryRuns(primary, replica.position().durableLsn, 50, 1)) await replica.append(r.bytes, r.startLsn, r.endLsn, 0);
      await replica.apply();
      let redone = 0;
      for (const p of [0, 1, 5, 17, PAGES - 1]) {
        const good = diskPage(dir, p);
        assert.ok(good.equals(diskPage(primary.dir, p)), `page ${p} equals the primary's before the damage`);
        flipByte(dir, p, 200 + p);
        const old = diskPage(primary.base, p);
        const r = await replica.installPage(p, old);
        redone += r.recordsRedone;
        assert.equal(r.lsn, pageLsn(good));
        assert.ok(diskPage(dir, p).equals(good), `page ${p} byte-equal to the primary's after the install`);
        assert.ok((await replica.readPage(p, 0)).equals(good));
      }
      assert.ok(redone > 0, 'records were redone onto the old copies');
    } finally {
      await replica.close();
    }
  });

  it('applies its log up to a copy newer than its applied LSN first; after the full apply the page is the primary\'s', async () => {
    const dir = newReplica();
    const replica = await openReplica(dir);
    try {
      const runs = primaryRuns(primary, replica.position().durableLsn, 50, 2);
      for (const r of runs) await replica.append(r.bytes, r.startLsn, r.endLsn, 0);
      const P = 3;
      const newest = diskPage(primary.dir, P);
      await replica.apply(runs[Math.floor(runs.length / 4)]!.startLsn);
      assert.ok(replica.position().appliedLsn < pageLsn(newest), 'the copy is ahead of the applied LSN');
      flipByte(dir, P, 999);
      const r = await replica.installPage(P, newest);
      assert.equal(r.lsn, pageLsn(newest));
      assert.ok(replica.position().appliedLsn >= pageLsn(newest));
      await replica.apply();
      assert.ok(diskPage(dir, P).equals(newest));
    } finally {
      await replica.close();
    }
  });

  it('refuses a copy past its log\'s end (RA_ERR_REPLICA_BEHIND), a damaged one, one of another page, another store\'s superblock', async () => {
    const dir = newReplica();
    const other = path.join(root, 'other');
    await (await PageStore.open(other, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: 65536, controlSocket: false })).close();
    const replica = await openReplica(dir);
    try {
      const runs = primaryRuns(primary, replica.position().durableLsn, 50, 3);
      for (const r of runs.slice(0, Math.floor(runs.length / 3))) await replica.append(r.bytes, r.startLsn, r.endLsn, 0);
      const before = diskPage(dir, 2);
      const newest = diskPage(primary.dir, 2);
      assert.ok(pageLsn(newest) > replica.position().durableLsn);
      await assert.rejects(replica.installPage(2, newest), (e) => isRaError(e, 'RA_ERR_REPLICA_BEHIND'));
      const bad = Buffer.from(diskPage(primary.base, 2));
      bad[300]! ^= 1;
      await assert.rejects(replica.installPage(2, bad), (e) => isRaError(e, 'RA_ERR_PAGE_CORRUPT') && /checksum/.test(e.message));
      await assert.rejects(replica.installPage(2, diskPage(primary.base, 4)), (e) => isRaError(e, 'RA_ERR_PAGE_CORRUPT') && /page-id/.test(e.message));
      await assert.rejects(replica.installPage(0, diskPage(other, 0)), (e) => isRaError(e, 'RA_ERR_PAGE_CORRUPT') && /superblock/.test(e.message));
      assert.ok(diskPage(dir, 2).equals(before), 'nothing written');
    } finally {
      await replica.close();
    }
  });
});

function flipByte(dir: string, id: number, at: number): void {
  xorOnDisk(dir, id, at, 0x10);
}

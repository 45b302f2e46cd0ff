// Restore's last check counts every bad page, however many (issue #12: findings were kept in a
// fixed 256-slot array, so a restore with 1000 bad pages reported at most 128 per 4 MiB batch).
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { verifyAllPages } from '../../../plugins/snapshot-manager/restore.js';
import { prng } from '../../helpers/prng.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

describe('verifyAllPages (restore.ts)', () => {
  for (const [pages, bad] of [[1500, 1000], [3000, 1337]] as const) {
    it(`reports all ${bad} of ${bad} bad pages among ${pages}`, async () => {
      const dir = tmpStoreDir('ra-verifyall-');
      await (await PageStore.open(dir, { create: true, pageCount: pages, pageSize: 4096 })).close();
      assert.equal(await verifyAllPages(pagestore, dir, 4096, pages), pages, 'a fresh store verifies');
      const rng = prng(pages * 7 + bad);
      const victims = new Set<number>();
      while (victims.size < bad) victims.add(1 + (rng() % (pages - 1)));
      const fd = openSync(path.join(dir, 'pages.db'), 'r+');
      for (const p of victims) writeSync(fd, Buffer.from([0xff, 0x00, 0xff]), 0, 3, p * 4096 + 1000 + (rng() % 2000));
      closeSync(fd);
      await assert.rejects(verifyAllPages(pagestore, dir, 4096, pages), (err: Error & { code?: string; details?: { count?: number; pages?: Array<{ pageId: number }> } }) => {
        assert.equal(err.code, 'RA_ERR_PAGE_CORRUPT');
        assert.equal(err.details?.count, bad);
        assert.match(err.message, new RegExp(`^${bad} restored page\\(s\\) fail verification`));
        assert.ok(err.details!.pages!.every((p) => victims.has(p.pageId)));
        return true;
      });
    });
  }
});

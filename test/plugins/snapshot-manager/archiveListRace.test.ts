// listArchive while retention prunes (found by the chaos harness, page-bitflip: repair-page
// listed the archive, prune deleted an old segment, and reading its sidecar failed with ENOENT —
// reported as a corrupt archive, so the page was not repaired and the failure escalated).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { listArchive } from '../../../plugins/snapshot-manager/walArchive.js';

describe('listArchive', () => {
  it('skips a sidecar that is gone by the time it is read (pruned meanwhile), but not a damaged one', async () => {
    const d = mkdtempSync(path.join(os.tmpdir(), 'ra-archive-race-'));
    mkdirSync(path.join(d, 'wal'));
    // Listed by readdir, gone when read: what a prune between the two leaves.
    symlinkSync(path.join(d, 'wal', 'deleted-by-prune'), path.join(d, 'wal', '0000000000450000.wal.json'));
    assert.deepEqual(await listArchive(d), []);
    writeFileSync(path.join(d, 'wal', '0000000000460000.wal.json'), '{ torn');
    await assert.rejects(listArchive(d), (err: Error & { code?: string }) => err.code === 'RA_ERR_SNAPSHOT_CORRUPT' && /unreadable/.test(err.message));
  });
});

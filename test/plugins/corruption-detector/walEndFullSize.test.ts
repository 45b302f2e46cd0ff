// Adversarial (session 11, adv11) on 05972a2 (FULL_SIZE segments): the scanner's LSN check bounds
// page LSNs by walEndLsn (scanTarget.ts), "the last segment's start plus its file size". A
// FULL_SIZE segment's file is always the whole segment, so the bound is the end of the segment,
// not the end of the log: a page whose LSN was damaged to a value past the log's end but inside
// the live segment (up to 16 MiB of LSNs by default) passes the check it failed before.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { scanStore } from '../../../plugins/corruption-detector/scanner.js';
import { pageStoreEngine } from '../../../plugins/pagestore/index.js';
import { writeU64 } from '../../../plugins/pagestore/format.js';
import { segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import { makeStore, resealPage } from './damage.js';

const engine = pageStoreEngine();

describe('the LSN check against a log of FULL_SIZE segments', () => {
  it('reports a page whose LSN lies past the end of the log', async () => {
    const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-adv11-walend-')), 'store');
    await makeStore(dir, 64);
    const walDir = path.join(dir, 'wal');
    const last = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!;
    const logEnd = parseInt(last.slice(0, 16), 16) + segmentContentLength(readFileSync(path.join(walDir, last)));
    // Well past every record, well inside the live segment.
    resealPage(dir, 4096, 9, (p) => writeU64(p, 24, logEnd + 1_000_000));
    const r = await scanStore(engine, dir, { recheckDelayMs: 1 });
    assert.deepEqual(r.corrupt, [{ pageId: 9, reason: 'lsn-beyond-wal' }], `bound ${r.maxLsn}, log end ${logEnd}`);
  });
});

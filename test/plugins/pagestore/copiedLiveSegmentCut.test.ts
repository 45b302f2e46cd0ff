// Adversarial (session 11, adv11) on 05972a2 (FULL_SIZE segments): copies clear FULL_SIZE — a
// restore writes the segment the target falls in up to its last record (walChain.ts
// loadSegment → segmentCopy), a base copy sends headers without the flag (baseCopy.ts) — and the
// writer then appends to that segment, growing it, until the log moves on to a new segment. For
// that whole segment (16 MiB of commits by default) adv10's attack is back: the live segment
// cut inside its records, then the owner killed, and recovery takes the cut for a torn tail.
// The newest segment here is put in the form a restore leaves it (records, then nothing; flag
// clear), as walChain's segmentCopy makes it.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { RecordType, kRecLength, kRecType } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength, withoutFullSize } from '../../../plugins/pagestore/walSegments.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 1024 * 1024;

function newest(dir: string): string {
  const walDir = path.join(dir, 'wal');
  return path.join(walDir, readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
}

function commitsFrom(bytes: Buffer, from: number): number {
  let n = 0;
  for (let p = SEGMENT_HEADER_SIZE; p + 8 <= bytes.byteLength; ) {
    const len = bytes.readUInt32LE(p + kRecLength);
    if (len === 0 || p + len > bytes.byteLength) break;
    if (p >= from && bytes[p + kRecType] === RecordType.Commit) n++;
    p += len;
  }
  return n;
}

describe('a live segment in the form a restore or base copy leaves it', () => {
  it('cut inside its records, then the owner killed: refused by recovery, or no acknowledged commit lost', async () => {
    const dir = tmpStoreDir('ra-adv11-copied-');
    killedWriter({ dir, commits: 20, open: 0, pages: 64, segmentSize: SEGMENT });
    await recover(dir);
    const seg = newest(dir);
    const whole = readFileSync(seg);
    writeFileSync(seg, withoutFullSize(whole.subarray(0, segmentContentLength(whole))));
    // The owner runs on the restored store: 200 more acknowledged commits, then SIGKILL.
    killedWriter({ dir, commits: 200, open: 0, pages: 64, segmentSize: SEGMENT });
    assert.equal(newest(dir), seg, 'still the same segment');
    const bytes = readFileSync(seg);
    const cut = (segmentContentLength(bytes) >> 4) << 3; // half its records, on a record alignment
    const lost = commitsFrom(bytes, cut);
    assert.ok(lost > 50, `${lost} acknowledged commits after the cut`);
    truncateSync(seg, cut);
    await assert.rejects(recover(dir), (err) => isRaError(err, 'RA_ERR_WAL_CORRUPT'), `recovery took the cut for a torn tail: ${lost} acknowledged commits gone`);
  });
});

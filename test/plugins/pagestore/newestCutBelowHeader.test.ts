// Adversarial (session 11, adv11) on 05972a2 (FULL_SIZE segments): the scan refuses a newest
// FULL_SIZE segment shorter than its size, but reads the flag from the segment's own header. Cut
// to fewer bytes than the header (or to zero), the file has no header to read: the scan takes it
// for a torn creation ("segment never written") and recovery succeeds without the commits that
// were in it. A FULL_SIZE writer cannot leave such a file (it renames a segment into place only
// once it is whole), so when the segment before is FULL_SIZE, a newest file shorter than its
// header is a cut, as a longer one is.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { RecordType, kRecLength, kRecType } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE, isFullSize } from '../../../plugins/pagestore/walSegments.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 36864;

function commitsIn(bytes: Buffer): number {
  let n = 0;
  for (let p = SEGMENT_HEADER_SIZE; p + 8 <= bytes.byteLength; ) {
    const len = bytes.readUInt32LE(p + kRecLength);
    if (len === 0 || p + len > bytes.byteLength) break;
    if (bytes[p + kRecType] === RecordType.Commit) n++;
    p += len;
  }
  return n;
}

describe('the newest FULL_SIZE segment cut to less than its header', () => {
  for (const cutTo of [0, 1, SEGMENT_HEADER_SIZE - 1]) {
    it(`(${cutTo} bytes) is refused by recovery, not taken for a torn creation`, async () => {
      const dir = tmpStoreDir('ra-adv11-hdrcut-');
      killedWriter({ dir, commits: 300, open: 0, pages: 64, segmentSize: SEGMENT });
      const walDir = path.join(dir, 'wal');
      const names = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort();
      assert.ok(names.length >= 2, `${names.length} segments`);
      const newest = path.join(walDir, names.at(-1)!);
      const bytes = readFileSync(newest);
      assert.ok(isFullSize(bytes) && isFullSize(readFileSync(path.join(walDir, names.at(-2)!))), 'both made FULL_SIZE');
      const lost = commitsIn(bytes);
      assert.ok(lost > 0, 'the newest segment holds acknowledged commits');
      truncateSync(newest, cutTo);
      await assert.rejects(recover(dir), (err) => isRaError(err, 'RA_ERR_WAL_CORRUPT'), `recovery succeeded without the ${lost} acknowledged commit(s) of the cut segment`);
    });
  }
});

// Adversarial (session 11, adv11) on 05972a2 (FULL_SIZE segments): a sealed segment now carries
// zeros after its last record, up to its full size (a growing segment ended with its last
// record: those bytes did not exist). A flipped bit in them — bytes that hold no record — makes
// the scan see a damaged record where the records end, followed by valid records in the next
// segment: recovery refuses the whole store although no record is damaged or missing (the
// records before the flip are all there, and the next segment's first record would not have
// fitted after them: the writer's rule for a segment's end). The same for the newest segment is
// a torn tail (accepted); for a sealed one it is an outage over bytes that mean nothing.
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { kRecLength } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 36864;

describe('a flipped bit in the zero tail of a sealed FULL_SIZE segment', () => {
  it('does not make recovery refuse the store', async () => {
    const dir = tmpStoreDir('ra-adv11-flip-');
    killedWriter({ dir, commits: 300, open: 0, pages: 64, segmentSize: SEGMENT });
    const walDir = path.join(dir, 'wal');
    const names = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort();
    assert.ok(names.length >= 3, `${names.length} segments`);
    // A sealed segment with room after its records (its successor's first record did not fit).
    const k = names.findIndex((n, i) => i + 1 < names.length && segmentContentLength(readFileSync(path.join(walDir, n))) < SEGMENT - 64);
    assert.ok(k >= 0 && k + 1 < names.length, 'a sealed segment with a zero tail');
    const file = path.join(walDir, names[k]!);
    const end = segmentContentLength(readFileSync(file));
    const next = readFileSync(path.join(walDir, names[k + 1]!));
    assert.ok(end + next.readUInt32LE(SEGMENT_HEADER_SIZE + kRecLength) > SEGMENT, 'the next first record did not fit after the records');
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.of(0x10), 0, 1, SEGMENT - 5);
    closeSync(fd);
    const report = await recover(dir);
    assert.ok(report.recordsRedone > 0);
  });
});

// A restore (and a replica's) copies each WAL segment made at full size at full size again, so the
// restored log is the store's own byte for byte; the zeros after its records are a hole, not
// written (16 MiB of zeros written and fdatasync'd per segment was most of a restore's WAL phase).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { writeSegmentCopy } from '../../../plugins/snapshot-manager/restore.js';
import { isFullSize, segmentContentLength, withoutFullSize } from '../../../plugins/pagestore/walSegments.js';
import { pagestore } from '../../helpers/engine.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 1024 * 1024;

describe('restored WAL segments', () => {
  it('a FULL_SIZE segment is copied at full size, byte for byte, its unused tail a hole', async () => {
    const dir = tmpStoreDir('ra-walhole-');
    killedWriter({ dir, commits: 20, open: 0, pages: 64, segmentSize: SEGMENT });
    const walDir = path.join(dir, 'wal');
    const seg = path.join(walDir, readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
    const whole = readFileSync(seg);
    assert.ok(isFullSize(whole), 'the writer makes its segments at full size');
    const content = whole.subarray(0, segmentContentLength(whole));
    assert.ok(content.byteLength < SEGMENT / 2, `${content.byteLength} bytes of records`);
    assert.equal(pagestore.log.segmentFileSize?.(content, SEGMENT), SEGMENT);

    const copy = path.join(dir, 'copy.wal');
    await writeSegmentCopy(pagestore, copy, content, SEGMENT);
    const st = statSync(copy);
    assert.equal(st.size, SEGMENT);
    assert.ok(readFileSync(copy).equals(whole), 'the copy is the segment, byte for byte');
    assert.ok(st.blocks * 512 < SEGMENT / 2, `the tail is a hole: ${st.blocks * 512} bytes allocated of ${SEGMENT}`);

    // A segment an older writer left growing (FULL_SIZE clear) is copied as long as its records.
    const growing = withoutFullSize(content);
    assert.equal(pagestore.log.segmentFileSize?.(growing, SEGMENT), growing.byteLength);

    // An engine written to contract 1.4 (no segmentFileSize) is copied through its segmentFile.
    const older = { ...pagestore, log: { ...pagestore.log, segmentFileSize: undefined } };
    const copy14 = path.join(dir, 'copy14.wal');
    await writeSegmentCopy(older, copy14, content, SEGMENT);
    assert.ok(readFileSync(copy14).equals(whole), 'the same bytes through segmentFile');
  });
});

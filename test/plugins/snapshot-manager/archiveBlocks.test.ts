// The archive's indexed blocks: the frame is a standard LZ4 frame (lz4-napi and `lz4 -d` decode it
// whole), and reading only the blocks a page's filter names finds exactly the page's records a
// scan of the whole segment finds — records that straddle a block boundary included.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { decompressFrame } from 'lz4-napi';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { forEachPageRecord } from '../../../plugins/pagestore/walPages.js';
import { SEGMENT_HEADER_SIZE, listSegments, segmentPath } from '../../../plugins/pagestore/walSegments.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { ARCHIVE_BLOCK, blocksFor, encodeIndexed, readBlockRecords } from '../../../plugins/snapshot-manager/archiveBlocks.js';
import { prng } from '../../helpers/prng.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { lz4DecodeOracle } from '../../helpers/oracles.js';
import { pagestore } from '../../helpers/engine.js';

describe('archive blocks', () => {
  it('finds every record of every page from the blocks its filter names', async (t) => {
    const dir = tmpStoreDir('ra-blocks-');
    const s = await PageStore.open(dir, { create: true, pageCount: 512, pageSize: 8192, segmentSize: 4 << 20, checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30, controlSocket: false });
    const rnd = prng(5);
    // Full page images (8 KiB records, the first change of a page) and small updates, mixed.
    for (let i = 0; s.endLsn < 3.5 * (1 << 20); i++) {
      const tx = s.begin();
      for (let k = 0; k < 3; k++) await tx.write(1 + (rnd() % 511), (rnd() % 60) * 64, Buffer.alloc(1 + (rnd() % 3000), i & 0xff));
      await tx.commit();
      if (i % 97 === 0) await s.checkpoint();
    }
    const start = (await listSegments(walDirOf(dir)))[0]!;
    const raw = readFileSync(segmentPath(walDirOf(dir), start));
    await s.close();
    assert.ok(raw.byteLength > 3 * ARCHIVE_BLOCK, `segment of ${raw.byteLength} bytes spans several blocks`);

    const { frame, index } = await encodeIndexed(pagestore, raw, SEGMENT_HEADER_SIZE, start);
    assert.deepEqual(await decompressFrame(frame), raw);
    const file = path.join(path.dirname(dir), 'seg.lz4');
    writeFileSync(file, frame);
    const oracle = lz4DecodeOracle();
    t.diagnostic(`oracle: ${oracle.name}`);
    assert.deepEqual(oracle.fn(readFileSync(file)), raw, oracle.name);

    const whole = new Map<number, number[]>();
    forEachPageRecord(raw, SEGMENT_HEADER_SIZE, start + SEGMENT_HEADER_SIZE, (at, id) => whole.set(id, [...(whole.get(id) ?? []), at]));
    assert.ok(whole.size > 100);
    let straddling = 0;
    for (const [pageId, want] of whole) {
      const got: number[] = [];
      for (const b of blocksFor(index, pageId)) {
        const { bytes, base } = readBlockRecords(file, frame, index, raw.byteLength, b);
        const next = index.firsts[b + 1] ?? -1;
        forEachPageRecord(bytes, index.firsts[b]! - base, start + index.firsts[b]!, (at, id) => {
          if (id === pageId && (next < 0 || at + base < next)) got.push(at + base);
        });
      }
      assert.deepEqual(got, want, `page ${pageId}`);
      for (const at of want) if (Math.floor(at / ARCHIVE_BLOCK) !== Math.floor((at + raw.readUInt32LE(at) - 1) / ARCHIVE_BLOCK)) straddling++;
    }
    assert.ok(straddling > 0, 'some records straddle a block boundary');
  });
});

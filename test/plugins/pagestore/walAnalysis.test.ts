/**
 * walAnalysis.ts over the native kernel: chunks of any size (a segment with no valid record
 * included: the crash harness found one), the loser set and largest id merged across chunks, the
 * dirty page table, and a record outside the store failing with RA_ERR_WAL_CORRUPT at its LSN;
 * the fused scan (`scan`, then `take`) agreeing with `chunk`, its failure held until `take`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PageSet } from '../../../plugins/pagestore/redoStream.js';
import { WalAnalysis } from '../../../plugins/pagestore/walAnalysis.js';
import { RecordType, encodeRecord, encodedSize, type RecordFields } from '../../../plugins/pagestore/walRecord.js';

function log(records: RecordFields[]): { buf: Uint8Array; positions: Uint32Array } {
  const sizes = records.map(encodedSize);
  const buf = Buffer.alloc(64 + sizes.reduce((a, b) => a + b, 0));
  const positions = new Uint32Array(records.length);
  let at = 64;
  records.forEach((f, k) => {
    encodeRecord(buf.subarray(at, at + sizes[k]!), at, f);
    positions[k] = at;
    at += sizes[k]!;
  });
  return { buf, positions };
}

const upd = (txId: number, pageId: number): RecordFields => ({ type: RecordType.Update, txId, prevLsn: 0, pageId, offset: 40, before: new Uint8Array(8), after: new Uint8Array(8).fill(1) });

test('merges chunks, empty ones included, into losers, the largest id and the dirty pages', () => {
  const { buf, positions } = log([upd(1, 3), upd(2, 4), { type: RecordType.Commit, txId: 1, prevLsn: 0 }, upd(3, 3), upd(2, 5), { type: RecordType.Abort, txId: 3, prevLsn: 0 }]);
  for (const workers of [0, 2]) {
    const covered = new PageSet(100);
    const a = new WalAnalysis(0, 4096, 100, workers, 64, covered.bits);
    assert.equal(a.chunk(buf, positions, 0).total, 0);
    assert.equal(a.chunk(buf, positions.subarray(0, 3), 3).total, 2);
    assert.equal(a.chunk(buf, new Uint32Array(0), 0).total, 0);
    const last = a.chunk(buf, positions.subarray(3), 3);
    assert.equal(last.total, 2);
    assert.deepEqual(a.losers(), [{ txId: 2, lastLsn: positions[4]! }]);
    assert.equal(a.maxTxId, 3);
    assert.deepEqual([...a.dirtyPages], [[3, positions[0]!], [4, positions[1]!], [5, positions[4]!]]);
    assert.ok(covered.has(3) && covered.has(4) && covered.has(5) && !covered.has(6));
    assert.deepEqual(a.byType, [0, 4, 1, 1, 0, 0]);
  }
});

test('a redo record outside the store fails with RA_ERR_WAL_CORRUPT at its LSN', () => {
  const { buf, positions } = log([upd(1, 3), upd(1, 100)]);
  const a = new WalAnalysis(0, 4096, 100, 0, 64, new PageSet(100).bits);
  assert.throws(() => a.chunk(buf, positions, 2), (err: Error & { code?: string; details?: { lsn: number } }) => err.code === 'RA_ERR_WAL_CORRUPT' && err.details?.lsn === positions[1]);
});

test('scan then take finds what chunk finds, and holds a bad record until take', () => {
  const { buf, positions } = log([upd(1, 3), upd(2, 4), { type: RecordType.Commit, txId: 1, prevLsn: 0 }, upd(3, 3), upd(2, 5), { type: RecordType.Abort, txId: 3, prevLsn: 0 }]);
  for (const workers of [0, 2]) {
    const byChunk = new WalAnalysis(0, 4096, 100, workers, 64, new PageSet(100).bits);
    const covered = new PageSet(100);
    const byScan = new WalAnalysis(0, 4096, 100, workers, 64, covered.bits);
    const want = byChunk.chunk(buf, positions, positions.length);
    const wantEntries = [...want.entries.subarray(0, 2 * (want.total + Math.max(1, workers)))];
    assert.equal(byScan.take().total, 0, 'no scan: an empty chunk');
    const found = new Uint32Array(buf.length >> 6);
    assert.equal(byScan.scan(buf, 64, buf.length, 64, found, 0), positions.length);
    assert.throws(() => byScan.scan(buf, 64, buf.length, 64, found, 0), /twice/);
    const got = byScan.take();
    assert.deepEqual([got.total, got.starts, got.counts], [want.total, want.starts, want.counts]);
    assert.deepEqual([...got.entries.subarray(0, wantEntries.length)], wantEntries);
    assert.deepEqual([byScan.losers(), byScan.maxTxId, [...byScan.dirtyPages], byScan.byType], [byChunk.losers(), byChunk.maxTxId, [...byChunk.dirtyPages], byChunk.byType]);
    assert.ok(covered.has(3) && covered.has(5));
  }
  const bad = log([upd(1, 3), upd(1, 100), upd(1, 4)]);
  const a = new WalAnalysis(0, 4096, 100, 0, 64, new PageSet(100).bits);
  assert.equal(a.scan(bad.buf, 64, bad.buf.length, 64, new Uint32Array(16), 0), 3, 'the scan goes on past it');
  assert.throws(() => a.take(), (err: Error & { code?: string; details?: { lsn: number } }) => err.code === 'RA_ERR_WAL_CORRUPT' && err.details?.lsn === bad.positions[1]);
});

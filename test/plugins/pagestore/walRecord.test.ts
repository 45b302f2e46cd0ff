// Commit records carry their time (#16 item 3): a u64 of ms since the epoch as the body, the
// header's length 8; a commit of an older log (no body, length 0) still reads, with no time.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { walScanRecords } from 'recovery-agent/native';
import { logLayout } from '../../../plugins/pagestore/face.js';
import { RecordType, commitTimeAt, decodeRecord, encodeRecord, encodedSize, kRecRangeLength, validRecordAt, type RecordFields } from '../../../plugins/pagestore/walRecord.js';

function encode(lsn: number, f: RecordFields): Buffer {
  const b = Buffer.alloc(encodedSize(f));
  encodeRecord(b, lsn, f);
  return b;
}

describe('commit records', () => {
  const time = Date.UTC(2026, 11, 6, 13, 0, 0, 123);
  const timed = encode(64, { type: RecordType.Commit, txId: 7, prevLsn: 40, commitTime: time });
  const old = encode(64 + timed.byteLength, { type: RecordType.Commit, txId: 8, prevLsn: 48 });

  it('carry their time as an 8-byte body covered by the checksum', () => {
    assert.equal(timed.byteLength, 72);
    assert.equal(timed.readUInt32LE(kRecRangeLength), 8);
    assert.equal(timed.readBigUInt64LE(56), BigInt(time));
    assert.equal(validRecordAt(timed, 0, timed.byteLength, 64), 72);
    assert.equal(decodeRecord(timed, 0, 4096).commitTime, time);
    assert.equal(commitTimeAt(timed, 0), time);
    const flipped = Buffer.from(timed);
    flipped[57]! ^= 1;
    assert.equal(validRecordAt(flipped, 0, flipped.byteLength, 64), 0, 'a changed time fails the checksum');
  });

  it('of an older log (no body) still read, with no time', () => {
    assert.equal(old.byteLength, 64);
    assert.equal(old.readUInt32LE(kRecRangeLength), 0);
    assert.equal(validRecordAt(old, 0, old.byteLength, 64 + 72), 64);
    assert.equal(decodeRecord(old, 0, 4096).commitTime, null);
    assert.equal(commitTimeAt(old, 0), null);
  });

  it('both read through the engine face and the native scan, side by side in one log', () => {
    const log = Buffer.concat([timed, old]);
    assert.equal(logLayout.scanRecords(log, 0, log.byteLength, 64), log.byteLength);
    assert.deepEqual([logLayout.recordKind(log, 0), logLayout.recordTxId(log, 0), logLayout.commitTime(log, 0)], ['commit', 7, time]);
    assert.deepEqual([logLayout.recordKind(log, 72), logLayout.recordTxId(log, 72), logLayout.commitTime(log, 72)], ['commit', 8, null]);
    const positions = new Uint32Array(4);
    assert.equal(walScanRecords(log, 0, log.byteLength, 64, positions, 0), 2);
    assert.deepEqual([...positions.subarray(0, 2)], [0, 72]);
  });
});

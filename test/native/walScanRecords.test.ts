/**
 * The native WAL scan kernel (native/src/wal_scan.rs) against `validRecordAt`, the per-record
 * check it replaces in recovery's analysis pass: the same records found and the same stopping
 * point on a log with each kind of damage, runs resumed anywhere, a short `positions`, views on
 * SharedArrayBuffers at odd offsets, and bad arguments that throw instead of crashing. (Where a
 * stop means a torn tail and where corruption is walScan.ts's, covered by
 * test/plugins/pagestore/recovery.test.ts.)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { walScanRecords } from 'recovery-agent/native';
import { writeU32 } from '../../plugins/pagestore/format.js';
import { RecordType, encodeRecord, encodedSize, kRecLength, kRecLsn, kRecType, validRecordAt, type RecordFields } from '../../plugins/pagestore/walRecord.js';
import { prng } from '../helpers/prng.js';

/** A segment's worth of records from position 64 on, LSN = `base` + position, in `pad` bytes of a SharedArrayBuffer. */
function makeLog(seed: number, records: number, base: number, pad = 0): { buf: Uint8Array<SharedArrayBuffer>; ats: number[] } {
  const next = prng(seed);
  const parts: Buffer[] = [];
  const ats: number[] = [];
  let at = 64;
  for (let i = 0; i < records; i++) {
    const type = [RecordType.Update, RecordType.Commit, RecordType.Abort, RecordType.Clr, RecordType.Checkpoint][next() % 5]!;
    const body = new Uint8Array(next() % 400).map(() => next() & 0xff);
    const f: RecordFields =
      type === RecordType.Update ? { type, txId: 1, prevLsn: 0, pageId: 3, offset: 40, before: body, after: body } : type === RecordType.Checkpoint ? { type, txId: 0, prevLsn: 0, json: body } : type === RecordType.Clr ? { type, txId: 1, prevLsn: 0, pageId: 3, offset: 40, after: body } : { type, txId: 1, prevLsn: 0 };
    const rec = Buffer.alloc(encodedSize(f));
    encodeRecord(rec, base + at, f);
    parts.push(rec);
    ats.push(at);
    at += rec.length;
  }
  const buf = new Uint8Array(new SharedArrayBuffer(pad + at + 100), pad, at + 100); // 100 zero bytes of tail
  let p = 64;
  for (const r of parts) {
    buf.set(r, p);
    p += r.length;
  }
  return { buf, ats };
}

/** validRecordAt in a loop: the reference. */
function reference(buf: Uint8Array, start: number, end: number, startLsn: number, max = Infinity): number[] {
  const out: number[] = [];
  for (let p = start; out.length < max; ) {
    const size = validRecordAt(buf, p, end, startLsn + (p - start));
    if (size === 0) break;
    out.push(p);
    p += size;
  }
  return out;
}

function scan(buf: Uint8Array, start: number, end: number, startLsn: number, room = 10_000, first = 0): number[] {
  const positions = new Uint32Array(first + room);
  const n = walScanRecords(buf, start, end, startLsn, positions, first);
  return Array.from(positions.subarray(first, first + n));
}

describe('native walScanRecords', () => {
  test('finds what validRecordAt finds and stops where it stops, for each kind of damage', () => {
    const base = 5 * 16 * 2 ** 20;
    const { buf, ats } = makeLog(1, 300, base, 3);
    const end = buf.length;
    assert.deepEqual(scan(buf, 64, end, base + 64), ats);
    assert.deepEqual(scan(buf, 64, end, base + 64), reference(buf, 64, end, base + 64));
    const damages: Array<[string, (at: number) => void]> = [
      ['a flipped body bit', (at) => (buf[at + 60]! ^= 0x08)],
      ['a flipped checksum bit', (at) => (buf[at + buf[at]! + (buf[at + 1]! << 8) - 1]! ^= 0x80)],
      ['a wrong LSN', (at) => (buf[at + kRecLsn]! ^= 0x08)],
      ['type 0', (at) => (buf[at + kRecType] = 0)],
      ['type 6', (at) => (buf[at + kRecType] = 6)],
      ['a length past the end', (at) => writeU32(buf, at + kRecLength, 1 << 30)],
      ['a length below 64', (at) => writeU32(buf, at + kRecLength, 56)],
      ['a length not a multiple of 8', (at) => (buf[at + kRecLength]! += 4)],
    ];
    const next = prng(2);
    for (const [what, damage] of damages) {
      const i = 1 + (next() % (ats.length - 2));
      const saved = buf.slice();
      damage(ats[i]!);
      assert.deepEqual(scan(buf, 64, end, base + 64), ats.slice(0, i), what);
      assert.deepEqual(scan(buf, 64, end, base + 64), reference(buf, 64, end, base + 64), what);
      buf.set(saved);
    }
    // A record cut short by `end`, and the tail of zeros after the last record.
    assert.deepEqual(scan(buf, 64, ats[200]! + 70, base + 64), ats.slice(0, 200));
    assert.deepEqual(scan(buf, 64, end - 100 + 63, base + 64), ats, 'fewer than 64 bytes left');
  });

  test('resumes anywhere; fills a short positions array; writes from `first`', () => {
    const { buf, ats } = makeLog(3, 100, 0);
    const end = buf.length;
    assert.deepEqual(scan(buf, ats[40]!, end, ats[40]!), ats.slice(40));
    assert.deepEqual(scan(buf, ats[40]!, end, ats[40]! + 8), [], 'wrong start LSN');
    assert.deepEqual(scan(buf, ats[40]! + 8, end, ats[40]! + 8), [], 'not at a record');
    assert.deepEqual(scan(buf, 64, end, 64, 7), ats.slice(0, 7));
    assert.deepEqual(scan(buf, 64, end, 64, 0), []);
    const positions = new Uint32Array(12).fill(7);
    assert.equal(walScanRecords(buf, 64, end, 64, positions, 9), 3);
    assert.deepEqual([...positions], [7, 7, 7, 7, 7, 7, 7, 7, 7, ...ats.slice(0, 3)]);
    assert.equal(walScanRecords(buf, 64, end, 64, positions, 12), 0, 'no room');
    assert.equal(walScanRecords(buf, end, end, 64, positions, 0), 0, 'at the end');
    assert.equal(walScanRecords(new Uint8Array(0), 0, 0, 0, positions, 0), 0);
  });

  test('bad arguments throw TypeError or RangeError with a code, never crash', () => {
    const { buf } = makeLog(4, 3, 0);
    const out = new Uint32Array(4);
    const call = walScanRecords as unknown as (...args: unknown[]) => number;
    const cases: Array<[unknown[], typeof TypeError | typeof RangeError, string, RegExp]> = [
      [[buf, 64, buf.length, 64, out], TypeError, 'ERR_INVALID_ARG_TYPE', /expected 6 arguments/],
      [[new Uint32Array(4), 0, 4, 0, out, 0], TypeError, 'ERR_INVALID_ARG_TYPE', /'buf' must be a Uint8Array/],
      [[buf, '64', buf.length, 64, out, 0], TypeError, 'ERR_INVALID_ARG_TYPE', /'start' must be a number/],
      [[buf, 64, buf.length, 64, new Int32Array(4), 0], TypeError, 'ERR_INVALID_ARG_TYPE', /'positions' must be a Uint32Array/],
      [[buf, -8, buf.length, 64, out, 0], RangeError, 'ERR_OUT_OF_RANGE', /'start'/],
      [[buf, 64, buf.length, 2 ** 53, out, 0], RangeError, 'ERR_OUT_OF_RANGE', /'startLsn'/],
      [[buf, 64, buf.length, 64, out, 0.5], RangeError, 'ERR_OUT_OF_RANGE', /'first'/],
      [[buf, 64, buf.length + 1, 64, out, 0], RangeError, 'ERR_INVALID_ARG_VALUE', /end/],
      [[buf, 65, 64, 64, out, 0], RangeError, 'ERR_INVALID_ARG_VALUE', /start \(65\)/],
      [[buf, 64, buf.length, 64, out, 5], RangeError, 'ERR_INVALID_ARG_VALUE', /first \(5\) passes/],
      [[buf, 64, buf.length, 64, new Uint32Array(buf.buffer, 0, 8), 0], RangeError, 'ERR_INVALID_ARG_VALUE', /must not share memory/],
    ];
    for (const [args, Kind, code, message] of cases) {
      assert.throws(() => call(...args), (err: Error & { code?: string }) => err instanceof Kind && err.code === code && message.test(err.message), String(message));
    }
  });
});

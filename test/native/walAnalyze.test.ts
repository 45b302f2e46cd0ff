/**
 * The native analysis kernel (native/src/analysis.rs, `walAnalyze`) against the per-record
 * JavaScript loop it replaced in the streaming redo (kept here as the oracle): on random logs
 * with interleaved transactions, commits with and without a body (the 8-byte commit time of newer
 * logs), aborts, CLRs, checkpoints and a redo LSN in the middle, the same open transactions and
 * last LSNs, the same largest id, the same redo records dealt to the same workers in the same
 * order, the same pages covered; and a record redo could not apply is named, not skipped.
 * `walScanAnalyze` (validation and analysis in one pass) against the old path it fuses,
 * `walScanRecords` then `walAnalyze`: the same stop, positions and outputs, on clean, damaged and
 * torn logs, with a bad redo record before the damage (the scan still goes on to the damage).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { walAnalyze, walScanAnalyze, walScanRecords, xxh3 } from 'recovery-agent/native';
import { readU32, readU64 } from '../../core/bytes.js';
import { prng } from '../helpers/prng.js';

const PAGE = 4096;
const PAGES = 300;
const BLOCK = 4;

/** A raw record: header fields, `body` bytes of body, zero padding, checksum; LSN = position. */
function record(at: number, type: number, txId: number, pageId: number, offset: number, length: number, body: number): Buffer {
  const total = ((56 + body + 7) & ~7) + 8;
  const r = Buffer.alloc(total);
  r.writeUInt32LE(total, 0);
  r[4] = type;
  r.writeBigUInt64LE(BigInt(at), 8);
  r.writeBigUInt64LE(BigInt(txId), 16);
  r.writeUInt32LE(pageId, 32);
  r.writeUInt32LE(offset, 36);
  r.writeUInt32LE(length, 40);
  for (let i = 56; i < 56 + body; i++) r[i] = (i * 31 + at) & 0xff;
  r.writeBigUInt64LE(xxh3(r.subarray(0, total - 8)), total - 8);
  return r;
}

function randomLog(seed: number, n: number): { buf: Uint8Array<SharedArrayBuffer>; positions: Uint32Array } {
  const next = prng(seed);
  const parts: Buffer[] = [];
  const positions: number[] = [];
  let at = 64;
  for (let i = 0; i < n; i++) {
    const txId = 1 + (next() % 40);
    const pick = next() % 20;
    const len = 1 + (next() % 64);
    const page = 1 + (next() % (PAGES - 1));
    const r =
      pick < 12 ? record(at, 1, txId, page, 32 + (next() % 1000), len, 2 * len)
      : pick < 14 ? record(at, 4, txId, page, 32 + (next() % 1000), len, len)
      : pick < 16 ? record(at, 2, txId, 0, 0, 0, 0)
      : pick < 18 ? record(at, 2, txId, 0, 0, 0, 8) // a commit with a time
      : pick < 19 ? record(at, 3, txId, 0, 0, 0, 0)
      : record(at, 5, 0, 0, 0, 16, 16);
    parts.push(r);
    positions.push(at);
    at += r.length;
  }
  const buf = new Uint8Array(new SharedArrayBuffer(at));
  for (let k = 0, p = 64; k < parts.length; p += parts[k]!.length, k++) buf.set(parts[k]!, p);
  return { buf, positions: Uint32Array.from(positions) };
}

/** The JavaScript analysis loop redoStream.ts ran before walAnalyze. */
function oracle(buf: Uint8Array, positions: Uint32Array, from: number, to: number, redoLsn: number, workers: number, open: Map<number, number>, covered: Set<number>) {
  let maxTxId = 0;
  const groups: Array<Array<[number, number]>> = Array.from({ length: Math.max(1, workers) }, () => []);
  for (let i = from; i < to; i++) {
    const at = positions[i]!;
    const type = buf[at + 4]!;
    if (type === 5) continue;
    const lsn = readU64(buf, at + 8);
    const txId = readU64(buf, at + 16);
    maxTxId = Math.max(maxTxId, txId);
    open.set(txId, lsn);
    if (type === 2 || type === 3) {
      open.delete(txId);
      continue;
    }
    if (lsn >= redoLsn) {
      const pageId = readU32(buf, at + 32);
      covered.add(pageId);
      groups[workers > 1 ? Math.floor(pageId / BLOCK) % workers : 0]!.push([at, pageId]);
    }
  }
  return { maxTxId, groups };
}

describe('walAnalyze', () => {
  test('finds what the per-record loop found, chunk by chunk, with and without workers', () => {
    for (const [seed, workers] of [[1, 0], [2, 2], [3, 3], [4, 1]] as const) {
      const { buf, positions } = randomLog(seed, 3000);
      const redoLsn = positions[700]!;
      const bitmap = new Uint8Array(Math.ceil(PAGES / 8));
      const open = new Map<number, number>();
      const expectOpen = new Map<number, number>();
      const expectCovered = new Set<number>();
      const groups = Math.max(1, workers);
      const summary = new Float64Array(10 + groups);
      for (let from = 0; from < positions.length; from += 512) {
        const to = Math.min(positions.length, from + 512);
        const chunk = positions.slice(from, to);
        const n = chunk.length;
        const txs = new Float64Array(4 * n);
        const redo = new Uint32Array(2 * (n + groups));
        const dirty = new Float64Array(2 * n);
        const before = new Set(expectCovered);
        const total = walAnalyze(buf, chunk, n, Float64Array.of(redoLsn, PAGE, PAGES, workers, BLOCK), bitmap, txs, redo, dirty, summary);
        const want = oracle(buf, positions, from, to, redoLsn, workers, expectOpen, expectCovered);
        assert.equal(summary[3], -1);
        assert.equal(summary[2], want.maxTxId);
        for (let k = 0; k < summary[0]!; k++) {
          if (txs[4 * k + 3] !== 0) open.delete(txs[4 * k]!);
          else open.set(txs[4 * k]!, txs[4 * k + 2]!);
        }
        assert.deepEqual(open, expectOpen, `seed ${seed} chunk at ${from}: open transactions`);
        let e = 0;
        for (let w = 0; w < groups; w++) {
          const got: Array<[number, number]> = [];
          for (let k = 0; k < summary[10 + w]!; k++, e++) got.push([redo[2 * e]!, redo[2 * e + 1]!]);
          e++; // the caller's marker
          assert.deepEqual(got, want.groups[w], `seed ${seed} chunk at ${from}: worker ${w}`);
        }
        assert.equal(total, want.groups.reduce((a, g) => a + g.length, 0));
        const newly = [...expectCovered].filter((p) => !before.has(p));
        const gotDirty = Array.from({ length: summary[1]! }, (_, k) => dirty[2 * k]!);
        assert.deepEqual(gotDirty.sort((a, b) => a - b), newly.sort((a, b) => a - b));
      }
      for (let p = 0; p < PAGES; p++) assert.equal((bitmap[p >> 3]! & (1 << (p & 7))) !== 0, expectCovered.has(p));
      assert.ok(open.size > 0 && open.size < 40, 'some transactions left open, some ended');
    }
  });

  test('names the first redo record outside the store and reports nothing after it', () => {
    const recs = [record(64, 1, 1, 5, 40, 8, 16), record(144, 2, 1, 0, 0, 0, 8), record(216, 1, 2, PAGES, 40, 8, 16), record(296, 1, 3, 7, 40, 8, 16)];
    const buf = new Uint8Array(64 + recs.reduce((a, r) => a + r.length, 0));
    let p = 64;
    const positions = new Uint32Array(recs.length);
    recs.forEach((r, k) => {
      assert.equal(p, readU64(r, 8));
      positions[k] = p;
      buf.set(r, p);
      p += r.length;
    });
    const summary = new Float64Array(11);
    const n = walAnalyze(buf, positions, 4, Float64Array.of(0, PAGE, PAGES, 0, BLOCK), new Uint8Array(64), new Float64Array(16), new Uint32Array(10), new Float64Array(8), summary);
    assert.equal(summary[3], 2);
    assert.equal(summary[4], 4); // RedoRecordProblem: page id
    assert.equal(n, 1);
  });

  test('refuses outputs that are too short or share memory', () => {
    const { buf, positions } = randomLog(9, 10);
    const out = () => [new Float64Array(40), new Uint32Array(22), new Float64Array(20), new Float64Array(11)] as const;
    const [txs, redo, dirty, summary] = out();
    const params = Float64Array.of(0, PAGE, PAGES, 0, BLOCK);
    assert.throws(() => walAnalyze(buf, positions, 10, params, new Uint8Array(64), new Float64Array(39), redo, dirty, summary), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => walAnalyze(buf, positions, 10, params, new Uint8Array(64), txs, redo, txs, summary), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => walAnalyze(buf, positions, 11, params, new Uint8Array(64), txs, redo, dirty, summary), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => walAnalyze(buf, positions, 10, new Float64Array(4), new Uint8Array(64), txs, redo, dirty, summary), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});

describe('walScanAnalyze', () => {
  /** Everything one analysis call leaves: its return, outputs, and the covered bitmap. */
  type Run = { n: number; positions: number[]; txs: number[]; redo: number[]; dirty: number[]; summary: number[]; bitmap: number[] };

  /** Outputs sized as walScanAnalyze requires for `room` records (filled with a marker, so unwritten slots compare too). */
  function outputs(room: number, groups: number) {
    return { txs: new Float64Array(4 * room).fill(-7), redo: new Uint32Array(2 * (room + groups)).fill(7), dirty: new Float64Array(2 * room).fill(-7), summary: new Float64Array(10 + groups).fill(-7) };
  }

  function oldPath(buf: Uint8Array, start: number, end: number, room: number, first: number, params: Float64Array, bitmap: Uint8Array): Run {
    const groups = Math.max(1, params[3]!);
    const positions = new Uint32Array(first + room);
    const n = walScanRecords(buf, start, end, start, positions, first);
    const o = outputs(room, groups);
    walAnalyze(buf, positions.subarray(first), n, params, bitmap, o.txs, o.redo, o.dirty, o.summary);
    if (o.summary[3]! >= 0) o.summary[3]! += first;
    return { n, positions: [...positions.subarray(0, first + n)], txs: [...o.txs], redo: [...o.redo], dirty: [...o.dirty], summary: [...o.summary], bitmap: [...bitmap] };
  }

  function fused(buf: Uint8Array, start: number, end: number, room: number, first: number, params: Float64Array, bitmap: Uint8Array): Run {
    const groups = Math.max(1, params[3]!);
    const positions = new Uint32Array(first + room);
    const o = outputs(room, groups);
    const n = walScanAnalyze(buf, start, end, start, positions, first, params, bitmap, o.txs, o.redo, o.dirty, o.summary);
    return { n, positions: [...positions.subarray(0, first + n)], txs: [...o.txs], redo: [...o.redo], dirty: [...o.dirty], summary: [...o.summary], bitmap: [...bitmap] };
  }

  /** Rewrites record `at`'s page id and reseals its checksum: valid for the scan, not for redo. */
  function outsideTheStore(buf: Uint8Array, at: number): void {
    const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    const total = b.readUInt32LE(at);
    b.writeUInt32LE(PAGES + 3, at + 32);
    b.writeBigUInt64LE(xxh3(b.subarray(at, at + total - 8)), at + total - 8);
  }

  test('stops where walScanRecords stops and finds what walAnalyze finds there', () => {
    for (const [seed, workers] of [[11, 0], [12, 2], [13, 3]] as const) {
      const { buf, positions } = randomLog(seed, 2000);
      const redoLsn = positions[300]!;
      const params = Float64Array.of(redoLsn, PAGE, PAGES, workers, BLOCK);
      const redoAt = (from: number) => {
        for (let k = from; ; k++) if ((buf[positions[k]! + 4] === 1 || buf[positions[k]! + 4] === 4) && positions[k]! >= redoLsn) return k;
      };
      const logs: Array<[string, Uint8Array]> = [['clean', buf]];
      const damaged = buf.slice();
      damaged[positions[1500]! + 60]! ^= 1;
      logs.push(['checksum damage', damaged]);
      const bad = damaged.slice();
      outsideTheStore(bad, positions[redoAt(900)]!);
      logs.push(['redo record outside the store, then damage', bad]);
      const torn = bad.slice(0, positions[1800]! + 100);
      logs.push(['torn tail', torn]);
      for (const [label, log] of logs) {
        const cases: Array<[number, number, number, number]> = [
          [64, log.length, Math.floor(log.length / 64) + 1, 0],
          [positions[250]!, log.length, Math.floor(log.length / 64) + 1, 5],
          [64, positions[1200]! + 30, 3000, 0],
          [64, log.length, 700, 2], // positions full first
          [log.length, log.length, 10, 0],
        ];
        for (const [start, end, room, first] of cases) {
          const what = `seed ${seed}, ${label}, start ${start}, end ${end}, room ${room}, first ${first}`;
          const covered = new Uint8Array(Math.ceil(PAGES / 8));
          covered[3] = 0xff; // pages already covered stay out of the dirty list
          const want = oldPath(log, start, end, room, first, params, covered.slice());
          const got = fused(log, start, end, room, first, params, covered.slice());
          assert.deepEqual(got, want, what);
        }
      }
      // The bad record stops the analysis, not the scan: it still reaches the damage.
      const got = fused(bad, 64, bad.length, 3000, 0, params, new Uint8Array(Math.ceil(PAGES / 8)));
      assert.equal(got.n, 1500, 'validated up to the damaged record');
      assert.equal(got.summary[3], redoAt(900));
    }
  });

  test('refuses outputs too short for the room in positions, or sharing memory', () => {
    const { buf } = randomLog(9, 10);
    const params = Float64Array.of(0, PAGE, PAGES, 2, BLOCK);
    const o = outputs(10, 2);
    const call = (positions: Uint32Array, first: number, txs = o.txs, redo = o.redo, dirty = o.dirty, summary = o.summary) =>
      walScanAnalyze(buf, 64, buf.length, 64, positions, first, params, new Uint8Array(64), txs, redo, dirty, summary);
    assert.ok(call(new Uint32Array(10), 0) > 0);
    assert.ok(call(new Uint32Array(14), 4) > 0);
    assert.throws(() => call(new Uint32Array(11), 0), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => call(new Uint32Array(10), 0, new Float64Array(39)), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => call(new Uint32Array(10), 0, o.txs, new Uint32Array(23)), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => call(new Uint32Array(10), 0, o.txs, o.redo, o.txs), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => call(new Uint32Array(o.redo.buffer, 0, 10), 0), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => call(new Uint32Array(10), 11), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => walScanAnalyze(buf, 64, buf.length + 8, 64, new Uint32Array(10), 0, params, new Uint8Array(64), o.txs, o.redo, o.dirty, o.summary), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});

/**
 * The native verifyPages kernel (native/src/verify_pages.rs) against a reference written in TS on
 * the addon's own `xxh3` (itself checked against xxhash-addon and xxhsum): every reason, the order
 * of checks, page ids from firstPageId, SharedArrayBuffer views at odd offsets, a short `out`,
 * and bad arguments that throw instead of crashing.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifyPages, xxh3 } from 'recovery-agent/native';
import { prng } from '../helpers/prng.js';

const MAGIC = 0x47504152;


function seal(page: Uint8Array): void {
  new DataView(page.buffer, page.byteOffset, page.byteLength).setBigUint64(0, xxh3(page.subarray(8)), true);
}

/** `count` sound pages of `pageSize` at positions first… into `target`, LSNs lsn0 + i. */
function makePages(target: Uint8Array, pageSize: number, first: number, count: number, seed: number, lsn0 = 1000): void {
  const next = prng(seed);
  for (let i = 0; i < count; i++) {
    const page = target.subarray(i * pageSize, (i + 1) * pageSize);
    for (let b = 32; b < pageSize; b++) page[b] = next() & 0xff;
    const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
    dv.setUint32(8, MAGIC, true);
    dv.setUint16(12, 1, true);
    dv.setUint16(14, 0, true);
    dv.setUint32(16, first + i, true);
    dv.setUint32(20, 0, true);
    dv.setBigUint64(24, BigInt(lsn0 + i), true);
    seal(page);
  }
}

/** The reference: the first failing check in the documented order, as the kernel's code. */
function reference(page: Uint8Array, expectedId: number, maxLsn: number): number {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  if (dv.getUint32(8, true) !== MAGIC) return 2;
  if (dv.getUint16(12, true) !== 1) return 3;
  if (dv.getUint32(16, true) !== expectedId) return 4;
  if (dv.getBigUint64(0, true) !== xxh3(page.subarray(8))) return 1;
  if (dv.getBigUint64(24, true) > BigInt(maxLsn)) return 5;
  return 0;
}

function referencePairs(view: Uint8Array, pageSize: number, first: number, maxLsn: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < view.byteLength / pageSize; i++) {
    const code = reference(view.subarray(i * pageSize, (i + 1) * pageSize), first + i, maxLsn);
    if (code !== 0) out.push(i, code);
  }
  return out;
}

function run(view: Uint8Array, pageSize: number, first: number, maxLsn: number): number[] {
  const out = new Uint32Array(2 * (view.byteLength / pageSize));
  const n = verifyPages(view, pageSize, first, maxLsn, out);
  return Array.from(out.subarray(0, 2 * n));
}

describe('native verifyPages', () => {
  test('sound pages pass, on an ArrayBuffer and on a SharedArrayBuffer at an odd offset', () => {
    for (const Backing of [ArrayBuffer, SharedArrayBuffer]) {
      const pageSize = 4096;
      const backing = new Backing(13 + 20 * pageSize);
      const view = new Uint8Array(backing, 13, 20 * pageSize);
      makePages(view, pageSize, 500, 20, 1);
      assert.deepEqual(run(view, pageSize, 500, 1019), [], Backing.name);
      assert.equal(verifyPages(view, pageSize, 500, Number.MAX_SAFE_INTEGER, new Uint32Array(0)), 0);
    }
  });

  test('each kind of damage gets its reason, in the documented order', () => {
    const pageSize = 8192;
    const view = new Uint8Array(new SharedArrayBuffer(12 * pageSize));
    makePages(view, pageSize, 0, 12, 2);
    const at = (page: number, byte: number) => page * pageSize + byte;
    view[at(1, 8)]! ^= 0x01; // magic
    view[at(2, 12)]! ^= 0x80; // version
    view[at(3, 16)]! ^= 0x04; // page id
    view[at(4, 0)]! ^= 0x01; // the checksum itself
    view[at(5, 32)]! ^= 0x01; // first payload byte
    view[at(6, pageSize - 1)]! ^= 0x80; // last payload byte
    view[at(7, 14)]! ^= 0x01; // page type: only the checksum covers it
    view[at(8, 20)]! ^= 0x10; // reserved
    view[at(9, 24)]! ^= 0x01; // a low LSN bit: still within the WAL, so only the checksum
    new DataView(view.buffer, at(10, 24)).setBigUint64(0, 1n << 40n, true); // LSN past the WAL, resealed
    seal(view.subarray(at(10, 0), at(11, 0)));
    new DataView(view.buffer, at(11, 16)).setUint32(0, 99, true); // a misdirected write: valid page, wrong place
    seal(view.subarray(at(11, 0), at(12, 0)));
    const got = run(view, pageSize, 0, 1_000_000);
    assert.deepEqual(got, [1, 2, 2, 3, 3, 4, 4, 1, 5, 1, 6, 1, 7, 1, 8, 1, 9, 1, 10, 5, 11, 4]);
    assert.deepEqual(got, referencePairs(view, pageSize, 0, 1_000_000));
  });

  test('agrees with the reference on random damage at every page size', () => {
    const next = prng(77);
    for (const pageSize of [32, 100, 4096, 8192, 16384, 65536]) {
      const count = pageSize >= 16384 ? 9 : 40;
      const first = next() % 100_000;
      const view = new Uint8Array(new SharedArrayBuffer(count * pageSize));
      makePages(view, pageSize, first, count, pageSize);
      for (let k = 0; k < count / 3; k++) {
        const page = next() % count;
        view[page * pageSize + (next() % pageSize)]! ^= 1 << (next() % 8);
      }
      const maxLsn = 1000 + (next() % count);
      assert.deepEqual(run(view, pageSize, first, maxLsn), referencePairs(view, pageSize, first, maxLsn), `pageSize ${pageSize}`);
    }
  });

  test('a short out gets the first pairs; the count is of every bad page', () => {
    const pageSize = 4096;
    const view = new Uint8Array(8 * pageSize);
    makePages(view, pageSize, 0, 8, 3);
    for (const p of [1, 3, 4, 7]) view[p * pageSize + 40]! ^= 1;
    const out = new Uint32Array(5).fill(0xffffffff);
    assert.equal(verifyPages(view, pageSize, 0, Number.MAX_SAFE_INTEGER, out), 4);
    assert.deepEqual([...out], [1, 1, 3, 1, 0xffffffff]);
  });

  test('no pages: returns 0', () => {
    assert.equal(verifyPages(new Uint8Array(0), 8192, 0, 0, new Uint32Array(2)), 0);
  });

  test('bad arguments throw TypeError or RangeError with a code, never crash', () => {
    const page = new Uint8Array(8192);
    const out = new Uint32Array(2);
    const call = verifyPages as unknown as (...args: unknown[]) => number;
    const cases: Array<[unknown[], typeof TypeError | typeof RangeError, string, RegExp]> = [
      [[page, 8192, 0, 0], TypeError, 'ERR_INVALID_ARG_TYPE', /expected 5 arguments/],
      [[new Uint16Array(4096), 8192, 0, 0, out], TypeError, 'ERR_INVALID_ARG_TYPE', /'view' must be a Uint8Array/],
      [[page, '8192', 0, 0, out], TypeError, 'ERR_INVALID_ARG_TYPE', /'pageSize' must be a number/],
      [[page, 8192, 0, 0, new BigUint64Array(2)], TypeError, 'ERR_INVALID_ARG_TYPE', /'out' must be a Uint32Array, got a BigUint64Array/],
      [[page, 8192, 0n, 0, out], TypeError, 'ERR_INVALID_ARG_TYPE', /'firstPageId' must be a number, got a bigint/],
      [[page, 0, 0, 0, out], RangeError, 'ERR_OUT_OF_RANGE', /'pageSize' must be a positive integer/],
      [[page, 16, 0, 0, out], RangeError, 'ERR_OUT_OF_RANGE', /at least 32/],
      [[page, 8192, -1, 0, out], RangeError, 'ERR_OUT_OF_RANGE', /'firstPageId' must be an integer from 0/],
      [[page, 8192, 2 ** 32, 0, out], RangeError, 'ERR_OUT_OF_RANGE', /'firstPageId'/],
      [[page, 8192, 0, 1.5, out], RangeError, 'ERR_OUT_OF_RANGE', /'maxLsn'/],
      [[page, 8192, 0, Infinity, out], RangeError, 'ERR_OUT_OF_RANGE', /got Infinity/],
      [[page, 4096 + 1, 0, 0, out], RangeError, 'ERR_INVALID_ARG_VALUE', /multiple of pageSize/],
      [[new Uint8Array(2 * 8192), 8192, 2 ** 32 - 1, 0, out], RangeError, 'ERR_INVALID_ARG_VALUE', /largest page id/],
    ];
    for (const [args, Kind, code, message] of cases) {
      assert.throws(() => call(...args), (err: Error & { code?: string }) => err instanceof Kind && err.code === code && message.test(err.message), `args ${String(args.map((a) => typeof a))}`);
    }
    // out over the pages it would be written from.
    const shared = new Uint8Array(new SharedArrayBuffer(3 * 8192));
    assert.throws(() => verifyPages(shared.subarray(0, 2 * 8192), 8192, 0, 0, new Uint32Array(shared.buffer, 8192, 4)), /must not share memory/);
    // The last page id allowed is 2^32 - 1.
    makePages(page, 8192, 2 ** 32 - 1, 1, 9);
    assert.equal(verifyPages(page, 8192, 2 ** 32 - 1, Number.MAX_SAFE_INTEGER, out), 0);
  });
});

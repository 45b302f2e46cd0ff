/**
 * The native addon's XXH3-64 (native/): equal to xxhash-addon and to `xxhsum -H3` (without
 * xxhsum, @node-rs/xxhash: helpers/oracles.ts) for every length class, on views at any offset and
 * on SharedArrayBuffers; xxh3Pages equal to per-page
 * xxh3; bad arguments throw instead of crashing; usable from a worker thread; a clear error when
 * the addon is missing. Needs `npm run build:native` first.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import xxhashAddon from 'xxhash-addon';
import { xxh3, xxh3Pages } from 'recovery-agent/native';
import type { NativeXxh3WorkerInput, NativeXxh3WorkerResult } from '../fixtures/nativeXxh3Worker.js';
import { prng } from '../helpers/prng.js';
import { xxh3Oracle } from '../helpers/oracles.js';


function randomBytes(len: number, seed: number, target: Uint8Array = new Uint8Array(len)): Uint8Array {
  const next = prng(seed);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const v = next();
    target[i] = v;
    target[i + 1] = v >>> 8;
    target[i + 2] = v >>> 16;
    target[i + 3] = v >>> 24;
  }
  for (; i < len; i++) target[i] = next();
  return target;
}

/** xxhash-addon's XXH3-64 (an 8-byte big-endian Buffer), as a bigint. It gets a plain copy. */
function addonXxh3(bytes: Uint8Array): bigint {
  return xxhashAddon.XXHash3.hash(Buffer.from(bytes)).readBigUInt64BE(0);
}


// Lengths around every class boundary and the 64-byte stripe / 1024-byte block edges, up to 5 MiB.
const LONG_LENGTHS = [
  301, 320, 383, 384, 511, 512, 513, 1000, 1023, 1024, 1025, 1087, 1088, 1089, 2047, 2048, 2049, 3072, 4095, 4096, 4097,
  8191, 8192, 8193, 16384, 65535, 65536, 65537, 100_003, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 12_345,
  5 * (1 << 20),
];

describe('native xxh3', () => {
  test('xxh3 of every length 0..300 equals xxhash-addon and xxhsum -H3', (t) => {
    const oracle = xxh3Oracle();
    t.diagnostic(`oracle: ${oracle.name}`);
    const buffers = Array.from({ length: 301 }, (_, len) => randomBytes(len, 1000 + len));
    const cli = oracle.fn(buffers);
    buffers.forEach((b, len) => {
      const got = xxh3(b);
      assert.equal(got, addonXxh3(b), `length ${len}: xxhash-addon`);
      assert.equal(got, cli[len], `length ${len}: ${oracle.name}`);
    });
  });

  test('xxh3 of random buffers up to 5 MiB equals xxhash-addon and xxhsum -H3', (t) => {
    const oracle = xxh3Oracle();
    t.diagnostic(`oracle: ${oracle.name}`);
    const buffers = LONG_LENGTHS.map((len, i) => randomBytes(len, 77 + i));
    const cli = oracle.fn(buffers);
    buffers.forEach((b, i) => {
      const got = xxh3(b);
      assert.equal(got, addonXxh3(b), `length ${b.length}: xxhash-addon`);
      assert.equal(got, cli[i], `length ${b.length}: ${oracle.name}`);
    });
  });

  test('known answers', () => {
    assert.equal(xxh3(new Uint8Array(0)), 0x2d06800538d394c2n);
    assert.equal(xxh3(Buffer.from('abc')), 0x78af5f94892f3950n);
  });

  test('hashes only the bytes a view covers, at any byteOffset, on ArrayBuffer and SharedArrayBuffer', () => {
    for (const Backing of [ArrayBuffer, SharedArrayBuffer]) {
      const backing = new Backing(20_000);
      randomBytes(20_000, 5, new Uint8Array(backing));
      for (const [offset, len] of [[1, 0], [3, 3], [5, 16], [7, 200], [1, 241], [9, 8192], [4093, 12_000], [19_999, 1]]) {
        const view = new Uint8Array(backing, offset, len);
        const copy = Uint8Array.prototype.slice.call(view);
        assert.equal(xxh3(view), xxh3(copy), `${Backing.name} offset ${offset} length ${len}`);
        assert.equal(xxh3(view), addonXxh3(copy), `${Backing.name} offset ${offset} length ${len}: xxhash-addon`);
        assert.equal(xxh3(Buffer.from(backing, offset, len)), xxh3(copy), `Buffer on ${Backing.name}`);
      }
    }
  });

  test('xxh3Pages equals per-page xxh3 on a SharedArrayBuffer view with a non-zero byteOffset', () => {
    const pageSize = 8192;
    const pages = 37;
    const sab = new SharedArrayBuffer(24 + pages * pageSize + 100);
    const all = new Uint8Array(sab);
    randomBytes(all.length, 42, all);
    const view = new Uint8Array(sab, 24, pages * pageSize);
    const out = new BigUint64Array(pages + 3).fill(0xdeadn);
    assert.equal(xxh3Pages(view, pageSize, out), pages);
    for (let i = 0; i < pages; i++) {
      assert.equal(out[i], xxh3(view.subarray(i * pageSize, (i + 1) * pageSize)), `page ${i}`);
    }
    assert.deepEqual([...out.subarray(pages)], [0xdeadn, 0xdeadn, 0xdeadn], 'elements past the last page are untouched');

    // out on a SharedArrayBuffer too, beside (not over) the pages.
    const sharedOut = new BigUint64Array(new SharedArrayBuffer(8 * pages));
    xxh3Pages(view, pageSize, sharedOut);
    assert.deepEqual([...sharedOut], [...out.subarray(0, pages)]);
  });

  test('xxh3Pages with page sizes in every length class, and no pages', () => {
    const bytes = randomBytes(4 * 3 * 5 * 7 * 17, 9);
    for (const pageSize of [1, 3, 7, 17, 105, 238, 357, 1020, 4 * 3 * 5 * 7 * 17]) {
      const n = bytes.length / pageSize;
      const out = new BigUint64Array(n);
      assert.equal(xxh3Pages(bytes, pageSize, out), n);
      for (let i = 0; i < n; i++) assert.equal(out[i], xxh3(bytes.subarray(i * pageSize, (i + 1) * pageSize)), `page size ${pageSize}, page ${i}`);
    }
    assert.equal(xxh3Pages(new Uint8Array(0), 8192, new BigUint64Array(0)), 0);
  });

  test('bad arguments throw TypeError or RangeError, never crash', () => {
    const view = new Uint8Array(8192 * 2);
    const out = new BigUint64Array(2);
    // Untyped handles, to make the calls TypeScript would reject.
    const h = xxh3 as unknown as (...args: unknown[]) => unknown;
    const p = xxh3Pages as unknown as (...args: unknown[]) => unknown;
    const typeErrors: [string, () => unknown, RegExp][] = [
      ['xxh3()', () => h(), /xxh3: expected 1 argument \(view\), got 0/],
      ['xxh3(view, extra)', () => h(view, 1), /expected 1 argument/],
      ['xxh3(undefined)', () => h(undefined), /argument 'view' must be a Uint8Array or Buffer, got undefined/],
      ['xxh3(null)', () => h(null), /got null/],
      ['xxh3(string)', () => h('abc'), /got a string/],
      ['xxh3(number)', () => h(42), /got a number/],
      ['xxh3(ArrayBuffer)', () => h(new ArrayBuffer(8)), /got an object/],
      ['xxh3(SharedArrayBuffer)', () => h(new SharedArrayBuffer(8)), /got an object/],
      ['xxh3(DataView)', () => h(new DataView(new ArrayBuffer(8))), /got an object/],
      ['xxh3(Uint16Array)', () => h(new Uint16Array(4)), /got a Uint16Array/],
      ['xxh3(Float64Array)', () => h(new Float64Array(4)), /got a Float64Array/],
      ['xxh3(array)', () => h([1, 2, 3]), /got an object/],
      ['xxh3Pages()', () => p(), /xxh3Pages: expected 3 arguments \(view, pageSize, out\), got 0/],
      ['xxh3Pages(view, size)', () => p(view, 8192), /got 2/],
      ['xxh3Pages(4 args)', () => p(view, 8192, out, 0), /got 4/],
      ['xxh3Pages(string view)', () => p('x', 8192, out), /argument 'view' must be a Uint8Array/],
      ['xxh3Pages(string size)', () => p(view, '8192', out), /argument 'pageSize' must be a number, got a string/],
      ['xxh3Pages(bigint size)', () => p(view, 8192n, out), /argument 'pageSize' must be a number, got a bigint/],
      ['xxh3Pages(BigInt64Array out)', () => p(view, 8192, new BigInt64Array(2)), /argument 'out' must be a BigUint64Array, got a BigInt64Array/],
      ['xxh3Pages(array out)', () => p(view, 8192, [0n, 0n]), /argument 'out' must be a BigUint64Array, got an object/],
      ['xxh3Pages(Float64Array out)', () => p(view, 8192, new Float64Array(2)), /got a Float64Array/],
    ];
    for (const [what, call, message] of typeErrors) {
      assert.throws(call, (err: unknown) => {
        assert.ok(err instanceof TypeError, `${what}: expected a TypeError, got ${String(err)}`);
        assert.match(err.message, message, what);
        assert.equal((err as { code?: string }).code, 'ERR_INVALID_ARG_TYPE', what);
        return true;
      });
    }
    const rangeErrors: [string, () => unknown, RegExp][] = [
      ['pageSize 0', () => p(view, 0, out), /argument 'pageSize' must be a positive integer, got 0/],
      ['pageSize -8192', () => p(view, -8192, out), /positive integer/],
      ['pageSize 1.5', () => p(view, 1.5, out), /positive integer, got 1.5/],
      ['pageSize NaN', () => p(view, NaN, out), /positive integer, got NaN/],
      ['pageSize Infinity', () => p(view, Infinity, out), /positive integer, got Infinity/],
      ['pageSize 2^53', () => p(view, 2 ** 53, out), /positive integer/],
      ['length not a multiple', () => p(view, 3000, out), /view\.byteLength \(16384\) must be a multiple of pageSize \(3000\)/],
      ['page larger than view', () => p(view, 3 * 8192, out), /must be a multiple of pageSize/],
      ['out too short', () => p(view, 8192, new BigUint64Array(1)), /argument 'out' has 1 elements but view holds 2 pages of 8192 bytes/],
      ['out overlapping view', () => p(new Uint8Array(out.buffer), 8, out), /argument 'out' must not share memory with 'view'/],
    ];
    for (const [what, call, message] of rangeErrors) {
      assert.throws(call, (err: unknown) => {
        assert.ok(err instanceof RangeError, `${what}: expected a RangeError, got ${String(err)}`);
        assert.match(err.message, message, what);
        return true;
      });
    }
    // Still working after all that.
    assert.equal(xxh3Pages(view, 8192, out), 2);
  });

  test('works from worker threads sharing one SharedArrayBuffer', async () => {
    const pageSize = 4096;
    const byteOffset = 512;
    const byteLength = 64 * pageSize;
    const sab = new SharedArrayBuffer(byteOffset + byteLength);
    randomBytes(sab.byteLength, 3, new Uint8Array(sab));
    const view = new Uint8Array(sab, byteOffset, byteLength);
    const want = new BigUint64Array(64);
    xxh3Pages(view, pageSize, want);

    const fixture = fileURLToPath(new URL('../fixtures/nativeXxh3Worker.js', import.meta.url));
    const runWorker = () =>
      new Promise<NativeXxh3WorkerResult>((resolve, reject) => {
        const workerData: NativeXxh3WorkerInput = { role: 'native-xxh3', sab, byteOffset, byteLength, pageSize };
        const worker = new Worker(fixture, { workerData });
        worker.once('message', (msg: NativeXxh3WorkerResult) => {
          resolve(msg);
          void worker.terminate();
        });
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`worker exited with code ${code} before answering`)));
      });
    // Two at once: the addon is loaded into several Node environments of one process.
    const results = await Promise.all([runWorker(), runWorker()]);
    for (const r of results) {
      assert.equal(r.pages, 64);
      assert.deepEqual([...r.sums], [...want]);
      assert.equal(r.whole, xxh3(view));
    }
  });

  describe('loader', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-native-loader-'));
    after(() => rmSync(dir, { recursive: true, force: true }));

    test('a missing addon throws RA_ERR_NATIVE_MISSING naming the expected file and the fix', async () => {
      // The real loader, copied to a directory with no .node file beside it.
      const indexJs = fileURLToPath(import.meta.resolve('recovery-agent/native'));
      const copy = path.join(dir, 'index.mjs');
      copyFileSync(indexJs, copy);
      await assert.rejects(import(copy), (err: unknown) => {
        const e = err as Error & { code?: string };
        assert.equal(e.code, 'RA_ERR_NATIVE_MISSING');
        assert.match(e.message, /recovery-agent-native\.[a-z0-9]+-[a-z0-9]+(-[a-z0-9]+)?\.node/);
        assert.ok(e.message.includes(dir), e.message);
        assert.match(e.message, /npm run build:native/);
        return true;
      });
    });
  });
});

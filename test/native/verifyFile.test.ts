/**
 * The native verifyFile (native/src/verify_file.rs): the checks of verifyPages over a range of a
 * file, read by several threads in one call. Checked against verifyPages on the same bytes for
 * every thread count, over sub-ranges, on a file shorter than the range (reason 6), with a short
 * `out`, and with bad arguments and a bad descriptor, which throw instead of crashing.
 */
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { verifyFile, verifyPages, xxh3 } from 'recovery-agent/native';
import { prng } from '../helpers/prng.js';

const PAGE = 4096;
const PAGES = 1500; // six 1 MiB pieces, the last one partial

/** Sound pages 0…count-1 (magic, version 1, page id, LSN 1000 + i, random payload, checksum). */
function makePages(count: number, seed: number): Buffer {
  const data = Buffer.alloc(count * PAGE);
  const next = prng(seed);
  for (let i = 0; i < count; i++) {
    const page = data.subarray(i * PAGE, (i + 1) * PAGE);
    for (let b = 32; b < PAGE; b++) page[b] = next() & 0xff;
    page.writeUInt32LE(0x47504152, 8);
    page.writeUInt16LE(1, 12);
    page.writeUInt32LE(i, 16);
    page.writeBigUInt64LE(BigInt(1000 + i), 24);
    page.writeBigUInt64LE(xxh3(page.subarray(8)), 0);
  }
  return data;
}

function pairs(out: Uint32Array, n: number): number[] {
  return Array.from(out.subarray(0, 2 * n));
}

describe('native verifyFile', () => {
  let dir: string;
  let data: Buffer;
  let file: string;
  let fd: number;

  before(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ra-verify-file-'));
    data = makePages(PAGES, 7);
    // One page of each kind of damage, spread over several pieces, and the file's first and last pages.
    data[0 * PAGE + 100]! ^= 1; // checksum
    data[255 * PAGE + 9]! ^= 1; // magic
    data[256 * PAGE + 12]! ^= 2; // version
    data.writeUInt32LE(9999, 700 * PAGE + 16); // page id
    data.writeBigUInt64LE(10_000_000n, 900 * PAGE + 24); // LSN past the bound…
    data.writeBigUInt64LE(xxh3(data.subarray(900 * PAGE + 8, 901 * PAGE)), 900 * PAGE); // …on a sealed page
    data[(PAGES - 1) * PAGE + PAGE - 1]! ^= 0x80; // checksum, the file's last byte
    file = path.join(dir, 'pages.db');
    writeFileSync(file, data);
    fd = openSync(file, 'r');
  });

  after(() => {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  });

  test('finds what verifyPages finds, on any number of threads and over any range', () => {
    const maxLsn = 5_000_000;
    const want = new Uint32Array(2 * PAGES);
    const n = verifyPages(data, PAGE, 0, maxLsn, want);
    assert.deepEqual(pairs(want, n), [0, 1, 255, 2, 256, 3, 700, 4, 900, 5, PAGES - 1, 1]);
    for (const threads of [1, 2, 3, 7, 256]) {
      const out = new Uint32Array(2 * PAGES);
      assert.equal(verifyFile(fd, PAGE, 0, PAGES, maxLsn, threads, out), n, `${threads} threads`);
      assert.deepEqual(pairs(out, n), pairs(want, n), `${threads} threads`);
    }
    // A range from page 250: indexes count from its first page; page ids are positions.
    const out = new Uint32Array(16);
    assert.equal(verifyFile(fd, PAGE, 250, 500, maxLsn, 2, out), 3);
    assert.deepEqual(pairs(out, 3), [5, 2, 6, 3, 450, 4]);
    // Without the LSN bound, the sealed page with a high LSN passes.
    assert.equal(verifyFile(fd, PAGE, 800, 200, Number.MAX_SAFE_INTEGER, 2, out), 0);
    assert.equal(verifyFile(fd, PAGE, 0, 0, 0, 2, out), 0);
  });

  test('pages the file ended before are reason 6; a short out counts every bad page', () => {
    // 1500 pages asked of a file that holds 1200 and a half.
    const short = path.join(dir, 'short.db');
    writeFileSync(short, data.subarray(0, 1200 * PAGE + 2000));
    const sfd = openSync(short, 'r');
    try {
      const out = new Uint32Array(2 * PAGES);
      const n = verifyFile(sfd, PAGE, 0, PAGES, 5_000_000, 2, out);
      assert.equal(n, 5 + 300);
      assert.deepEqual(pairs(out, 5), [0, 1, 255, 2, 256, 3, 700, 4, 900, 5]);
      assert.deepEqual(pairs(out, n).slice(10), Array.from({ length: 300 }, (_, i) => [1200 + i, 6]).flat());
      const small = new Uint32Array(5).fill(0xffffffff);
      assert.equal(verifyFile(sfd, PAGE, 0, PAGES, 5_000_000, 2, small), n);
      assert.deepEqual(Array.from(small), [0, 1, 255, 2, 0xffffffff]);
    } finally {
      closeSync(sfd);
    }
  });

  test('throws for bad arguments and for a descriptor it cannot read', () => {
    const out = new Uint32Array(8);
    const cases: Array<[unknown[], new (...a: never[]) => Error, string]> = [
      [[fd, PAGE, 0, 10, 0, 2], TypeError, 'ERR_INVALID_ARG_TYPE'],
      [[fd, PAGE, 0, 10, 0, 2, new Float64Array(4)], TypeError, 'ERR_INVALID_ARG_TYPE'],
      [[fd, 16, 0, 10, 0, 2, out], RangeError, 'ERR_OUT_OF_RANGE'],
      [[fd, PAGE, 0, 10, 0, 0, out], RangeError, 'ERR_OUT_OF_RANGE'],
      [[fd, PAGE, 0, 10, 0, 257, out], RangeError, 'ERR_OUT_OF_RANGE'],
      [[-1, PAGE, 0, 10, 0, 2, out], RangeError, 'ERR_OUT_OF_RANGE'],
      [[fd, PAGE, 2 ** 32 - 5, 10, 0, 2, out], RangeError, 'ERR_INVALID_ARG_VALUE'],
    ];
    for (const [args, type, code] of cases) {
      assert.throws(() => (verifyFile as (...a: unknown[]) => number)(...args), (err: Error & { code?: string }) => err instanceof type && err.code === code, JSON.stringify(args.slice(0, 6)));
    }
    // A directory: every read fails with EISDIR, reported as the errno's name.
    const dfd = openSync(dir, 'r');
    try {
      assert.throws(() => verifyFile(dfd, PAGE, 0, 10, 0, 2, out), (err: Error & { code?: string }) => err.code === 'EISDIR' && /verifyFile: cannot read pages 0\.\.10/.test(err.message));
    } finally {
      closeSync(dfd);
    }
  });
});

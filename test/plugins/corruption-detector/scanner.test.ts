/**
 * The scanner (plugins/corruption-detector/scanner.ts): damage in a store made through the
 * library API is found exactly, with the right reason, on the pool and inline; files that cannot
 * be a store give clear errors; a page being written is read again rather than reported; a scan
 * beside a live writer reports nothing.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { WorkerPool, defineTask } from '../../../core/workerPool.js';
import { PageScanner, scanStore } from '../../../plugins/corruption-detector/scanner.js';
import { walEndLsn } from '../../../plugins/corruption-detector/scanTarget.js';
import { pageStoreEngine } from '../../../plugins/pagestore/index.js';
import { writeU64 } from '../../../plugins/pagestore/format.js';
import { fixture } from '../../helpers/paths.js';
import { flipBits, makeStore, misdirect, resealPage } from './damage.js';

const tmpDir = () => mkdtempSync(path.join(os.tmpdir(), 'ra-scan-'));
const engine = pageStoreEngine();

/** Starts a fixture process and resolves once it prints "ready". */
function startFixture(name: string, spec: unknown): Promise<ChildProcess> {
  const child = spawn(process.execPath, [fixture(name), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve(child);
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code, signal) => reject(new Error(`${name} exited before ready (${signal ?? code}): ${err}`)));
  });
}

async function stopFixture(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

describe('scanner', () => {
  let pool: WorkerPool;
  before(() => {
    pool = new WorkerPool({ threads: 2 });
  });
  after(async () => {
    await pool.close();
  });

  it('finds exactly the pages with flipped bits, each with the right reason, on the pool and inline', async () => {
    const dir = path.join(tmpDir(), 'store');
    const pageSize = 4096;
    const pages = 600; // 2.3 MiB: several 1 MiB tasks
    await makeStore(dir, pages, pageSize);
    const clean = await scanStore(engine, dir, { pool, recheckDelayMs: 1 });
    assert.deepEqual(clean.corrupt, []);
    assert.equal(clean.pagesScanned, pages);
    assert.equal(clean.bytesScanned, pages * pageSize);

    const expected = flipBits(dir, pageSize, pages, 30, 0xc0ffee);
    // Damage only the header checks and the LSN check can see: a misdirected write, and a page
    // from beyond the end of the WAL (both with valid checksums).
    misdirect(dir, pageSize, 20, 21);
    expected.set(21, 'page-id');
    const walEnd = await walEndLsn({ engine, walDir: path.join(dir, 'wal') });
    assert.ok(walEnd > 0 && walEnd < Number.MAX_SAFE_INTEGER);
    resealPage(dir, pageSize, 22, (p) => writeU64(p, 24, walEnd + 1_000_000));
    expected.set(22, 'lsn-beyond-wal');
    // The superblock's last byte: page 0 is a page like any other.
    flipByte(dir, pageSize - 1);
    expected.set(0, 'checksum');

    const want = [...expected].map(([pageId, reason]) => ({ pageId, reason })).sort((a, b) => a.pageId - b.pageId);
    for (const options of [{ pool }, {}, { pool, taskBytes: 1 }, { pool, callingThread: true }, { pool, callingThread: true, taskBytes: 1 }, { callingThread: true }]) {
      const r = await scanStore(engine, dir, { ...options, recheckDelayMs: 1 });
      assert.deepEqual(r.corrupt, want, `options ${Object.keys(options).join(',') || 'inline'}`);
      assert.equal(r.pagesScanned, pages);
      assert.equal(r.transient, 0);
    }
  });

  it('scans a range, and refuses one outside the store', async () => {
    const dir = path.join(tmpDir(), 'store');
    await makeStore(dir, 1024, 4096);
    const hit = flipBits(dir, 4096, 1024, 60, 7);
    const scanner = await PageScanner.open(engine, dir, { recheckDelayMs: 1 });
    try {
      for (const options of [{ pool }, {}, { pool, callingThread: true }]) {
        // 700 pages from page 10: several 1 MiB runs, the last one partial.
        const r = await scanner.scan(10, 700, { ...options, taskBytes: 1 });
        assert.equal(r.pagesScanned, 700);
        assert.deepEqual(r.corrupt.map((c) => c.pageId), [...hit.keys()].filter((p) => p >= 10 && p < 710).sort((a, b) => a - b), Object.keys(options).join(','));
      }
      await assert.rejects(scanner.scan(1020, 5), (err: unknown) => isRaError(err, 'RA_ERR_PAGE_RANGE'));
    } finally {
      await scanner.close();
    }
  });

  it('with the calling thread scanning, does not wait for a worker that never got to start', async () => {
    const dir = path.join(tmpDir(), 'store');
    await makeStore(dir, 1024, 4096);
    const hit = flipBits(dir, 4096, 1024, 5, 11);
    const busy = new WorkerPool({ threads: 1 });
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const held = busy.run(defineTask<{ flag: Int32Array<SharedArrayBuffer> }, void>(fixture('poolTask.js'), 'hold'), { flag });
    const release = () => {
      Atomics.store(flag, 0, 1);
      Atomics.notify(flag, 0);
    };
    // A scan that waited for the held worker would wait forever: let it go after a while, so the
    // test fails on the assertion below instead of hanging.
    const deadline = setTimeout(release, 10_000);
    try {
      // The pool's one worker is held: the scan's task queues behind it, and the calling thread
      // checks every run itself.
      const r = await scanStore(engine, dir, { pool: busy, callingThread: true, taskBytes: 1, recheckDelayMs: 1 });
      assert.equal(r.pagesScanned, 1024);
      assert.deepEqual(r.corrupt.map((c) => c.pageId), [...hit.keys()].sort((a, b) => a - b));
      assert.equal(Atomics.load(flag, 0), 0, 'the worker was still held when the scan returned');
    } finally {
      clearTimeout(deadline);
      release();
      await held;
      await busy.close();
    }
  });

  it('reports the pages of a data file that shrank during the scan as short reads', async () => {
    const dir = path.join(tmpDir(), 'store');
    await makeStore(dir, 600, 4096);
    for (const options of [{ pool }, {}, { pool, callingThread: true }]) {
      const scanner = await PageScanner.open(engine, dir, { recheckDelayMs: 1 });
      const file = path.join(dir, 'pages.db');
      const good = readFileSync(file);
      try {
        truncateSync(file, 4096 * 550 + 100);
        const r = await scanner.scan(0, 600, { ...options, taskBytes: 1 });
        assert.equal(r.pagesScanned, 550);
        assert.deepEqual(r.corrupt, Array.from({ length: 50 }, (_, i) => ({ pageId: 550 + i, reason: 'short-read' })), Object.keys(options).join(','));
      } finally {
        await scanner.close();
        writeFileSync(file, good);
      }
    }
  });

  it('gives a clear error for an empty file, a partial page, a truncated file and a wrong page size', async () => {
    const base = tmpDir();
    const dir = path.join(base, 'store');
    await makeStore(dir, 16, 8192);
    const file = path.join(dir, 'pages.db');
    const good = readFileSync(file);
    const expectInvalid = async (message: RegExp, options: { pageSize?: number } = {}) => {
      await assert.rejects(scanStore(engine, dir, options), (err: unknown) => isRaError(err, 'RA_ERR_STORE_INVALID') && message.test(err.message) && err.exitCode === 2);
    };

    writeFileSync(file, Buffer.alloc(0));
    await expectInvalid(/pages\.db is empty \(0 bytes\)/);

    writeFileSync(file, good.subarray(0, 8192 * 5 + 100));
    await expectInvalid(/is 41060 bytes, not a multiple of the page size 8192 \(5 whole pages and 100 bytes of a partial one\), and truncated; expected 16 pages of 8192 bytes/);

    writeFileSync(file, Buffer.concat([good, Buffer.alloc(10)]));
    await expectInvalid(/not a multiple of the page size 8192/);

    writeFileSync(file, good);
    truncateSync(file, 8192 * 10);
    await expectInvalid(/pages\.db is truncated: 81920 bytes \(10 pages\); expected 16 pages of 8192 bytes \(131072 bytes\) per its control file/);

    writeFileSync(file, Buffer.concat([good, Buffer.alloc(8192)]));
    await expectInvalid(/longer than expected/);

    // The caller expects another page size.
    writeFileSync(file, good);
    await expectInvalid(/wrong page size: 4096 was given, but .* has 8192-byte pages \(from its control file\)/, { pageSize: 4096 });
    assert.equal((await scanStore(engine, dir, { pageSize: 8192 })).corrupt.length, 0);

    // The data file of a store with 4 KiB pages and the same file size, beside this control file.
    const other = path.join(base, 'other');
    await makeStore(other, 32, 4096);
    copyFileSync(path.join(other, 'pages.db'), file);
    await expectInvalid(/wrong page size: the control file of .* says 8192-byte pages, but the superblock of .* says 4096/);

    // No store at all.
    await assert.rejects(scanStore(engine, path.join(base, 'nothing')), (err: unknown) => isRaError(err, 'RA_ERR_STORE_NOT_FOUND') && /pages\.db does not exist/.test(err.message));
  });

  it('without a control file, takes the geometry from the superblock, or from the page size given', async () => {
    const dir = path.join(tmpDir(), 'store');
    await makeStore(dir, 40, 4096);
    rmSync(path.join(dir, 'control'));
    const r = await scanStore(engine, dir);
    assert.equal(r.pageCount, 40);
    assert.deepEqual(r.corrupt, []);
    flipByte(dir, 8); // the superblock's magic: now nothing says how big a page is
    await assert.rejects(scanStore(engine, dir), (err: unknown) => isRaError(err, 'RA_ERR_STORE_INVALID') && /cannot tell the page size .* give the page size \(--page-size\)/.test(err.message));
    const given = await scanStore(engine, dir, { pageSize: 4096, recheckDelayMs: 1 });
    assert.deepEqual(given.corrupt, [{ pageId: 0, reason: 'magic' }]);
  });

  it('reads a failing page again before reporting it: a page in the middle of a write is not corrupt', async () => {
    const dir = path.join(tmpDir(), 'store');
    const pageSize = 4096;
    await makeStore(dir, 256, pageSize);
    // Pages rewritten in two halves 10 ms apart: each torn for 10 ms of every 40.
    const writer = await startFixture('scanTornWriter.js', { file: path.join(dir, 'pages.db'), pageSize, pages: [5, 6, 7, 130], pauseMs: 10 });
    try {
      let transient = 0;
      let scans = 0;
      const until = Date.now() + 8000;
      // Until the race has been seen a few times (it is, within a second or two), or time is up.
      while ((transient < 3 || scans < 20) && Date.now() < until) {
        const r = await scanStore(engine, dir, { recheckDelayMs: 50, ...(scans % 2 ? { pool } : {}) });
        assert.deepEqual(r.corrupt, [], `scan ${scans} reported a page being written as corrupt`);
        transient += r.transient;
        scans++;
      }
      // The race did happen: pages failed once and passed when read again.
      assert.ok(transient > 0, `no scan of ${scans} ever saw a torn page; the test did not exercise the re-read`);
    } finally {
      await stopFixture(writer);
    }
    // The same pages torn for good are reported.
    const fd = readFileSync(path.join(dir, 'pages.db'));
    fd[6 * pageSize + 2000]! ^= 0xff;
    writeFileSync(path.join(dir, 'pages.db'), fd);
    assert.deepEqual((await scanStore(engine, dir, { recheckDelayMs: 1 })).corrupt, [{ pageId: 6, reason: 'checksum' }]);
  });

  it('a scan beside a live writer that checkpoints every 10 ms reports no corrupt page', async () => {
    const dir = path.join(tmpDir(), 'store');
    const writer = await startFixture('scanWriter.js', { dir, pages: 512, pageSize: 4096, checkpointMs: 10 });
    try {
      const until = Date.now() + 3000;
      let scans = 0;
      while (Date.now() < until) {
        const r = await scanStore(engine, dir, { ...(scans % 2 ? { pool } : {}) });
        assert.deepEqual(r.corrupt, [], `scan ${scans}`);
        assert.equal(r.pagesScanned, 512);
        scans++;
      }
      assert.ok(scans >= 3);
    } finally {
      await stopFixture(writer);
    }
  });
});

function flipByte(dir: string, at: number): void {
  const file = path.join(dir, 'pages.db');
  const b = readFileSync(file);
  b[at]! ^= 0x01;
  writeFileSync(file, b);
}


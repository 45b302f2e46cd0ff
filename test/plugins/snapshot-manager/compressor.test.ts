import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { decompressFrameSync } from 'lz4-napi';
import { WorkerPool, sharedBytes } from '../../../core/workerPool.js';
import { Compressor } from '../../../plugins/snapshot-manager/compressor.js';
import { FrameWriter } from '../../../plugins/snapshot-manager/frameWriter.js';
import { FRAME_BLOCK_MAX } from '../../../plugins/snapshot-manager/lz4Frame.js';
import { xxh3Hex, type FileEntry } from '../../../plugins/snapshot-manager/manifest.js';
import { prng } from '../../helpers/prng.js';
import { lz4DecodeOracle } from '../../helpers/oracles.js';

/** WAL-like bytes: records of text with a counter and a few random bytes, some runs of zeros. */
function walLike(n: number, seed: number): Uint8Array {
  const rnd = prng(seed);
  const b = Buffer.alloc(n);
  for (let at = 0; at + 128 <= n; at += 128) {
    b.write(`rec ${at} update page ${rnd() % 5000} offset ${rnd() % 8192};`, at);
    for (let k = 64; k < 80; k++) b[at + k] = rnd() & 0xff;
  }
  return b;
}

describe('Compressor: slabs into LZ4 frame files on the pool', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-compressor-'));
  const pool = new WorkerPool({ threads: 2 });
  after(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes frames that lz4 -d (or lz4js) and lz4-napi read back, with the entry\'s sizes and XXH3s, small or cut in parts across workers', async (t) => {
    const oracle = lz4DecodeOracle();
    t.diagnostic(`oracle: ${oracle.name}`);
    const writer = new FrameWriter();
    const compressor = new Compressor(pool, writer, 4);
    const sizes = [100, 1 << 20, FRAME_BLOCK_MAX, FRAME_BLOCK_MAX + 1, 3 * FRAME_BLOCK_MAX + 12345];
    const inputs = sizes.map((n, i) => walLike(n, i + 1));
    const entries: FileEntry[] = [];
    for (const [i, raw] of inputs.entries()) {
      // One slab from the compressor, one the caller owns (as the WAL copy passes its reads).
      const slab = i % 2 === 0 ? await compressor.acquire(raw.byteLength) : sharedBytes(raw.byteLength + 64);
      slab.set(raw);
      slab.fill(0xee, raw.byteLength); // canary: bytes past the length are not compressed
      const entry = { file: `f${i}.lz4` } as FileEntry;
      entries.push(entry);
      compressor.submit(slab, raw.byteLength, path.join(dir, entry.file), entry, i % 2 === 0);
    }
    await compressor.drain();
    await writer.drain();
    for (const [i, raw] of inputs.entries()) {
      const e = entries[i]!;
      const frame = readFileSync(path.join(dir, e.file));
      assert.equal(frame.byteLength, e.bytes, `${e.file} bytes`);
      assert.equal(xxh3Hex(frame), e.xxh3, `${e.file} xxh3`);
      assert.equal(e.rawBytes, raw.byteLength);
      assert.equal(e.rawXxh3, xxh3Hex(raw));
      assert.ok(frame.byteLength < raw.byteLength || raw.byteLength < 1000, `${e.file} compressed (${frame.byteLength} of ${raw.byteLength})`);
      assert.ok(decompressFrameSync(frame).equals(raw), `${e.file} through lz4-napi`);
      assert.ok(oracle.fn(frame).equals(raw), `${e.file} through ${oracle.name}`);
    }
  });
});

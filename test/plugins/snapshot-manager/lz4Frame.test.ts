import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decompressFrameSync } from 'lz4-napi';
import xxhash from 'xxhash-addon';
import { encodeFrame, frameBound, FRAME_BLOCK_MAX } from '../../../plugins/snapshot-manager/lz4Frame.js';
import { prng } from '../../helpers/prng.js';
import { lz4DecodeOracle, lz4FastSizeOracle } from '../../helpers/oracles.js';

/** Bytes like a page store's: records with a repeated text field and some random bytes. */
function compressible(n: number, seed: number): Buffer {
  const rnd = prng(seed);
  const b = Buffer.alloc(n);
  for (let at = 0; at + 64 <= n; at += 64) {
    b.writeUInt32LE(rnd(), at);
    b.write('name=carol|status=ok|region=eu-west|'.padEnd(60, '.'), at + 4);
  }
  return b;
}

function random(n: number, seed: number): Buffer {
  const rnd = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = rnd() & 0xff;
  return b;
}

function frameOf(raw: Uint8Array): Buffer {
  const out = Buffer.alloc(frameBound(raw.byteLength) + 16, 0xee); // canary after the bound
  const n = encodeFrame(raw, out.subarray(0, frameBound(raw.byteLength)));
  assert.ok(out.subarray(frameBound(raw.byteLength)).every((b) => b === 0xee), 'nothing written past the bound');
  return out.subarray(0, n);
}

describe('LZ4 frames from lz4-napi blocks', () => {
  it('has the header checksum the format asks for: byte 1 of XXH32 of FLG and BD', () => {
    const frame = frameOf(Buffer.alloc(100));
    const hc = xxhash.XXHash32.hash(frame.subarray(4, 6)); // big-endian digest
    assert.equal(frame[6], hc.readUInt32BE(0) >>> 8 & 0xff);
    assert.deepEqual([...frame.subarray(0, 4)], [0x04, 0x22, 0x4d, 0x18]);
  });

  for (const [name, raw] of [
    ['1 MiB of page-like data (one compressed block)', compressible(1 << 20, 1)],
    ['9 MiB + 5 bytes (three blocks, the last short)', compressible(2 * FRAME_BLOCK_MAX + (1 << 20) + 5, 2)],
    ['incompressible bytes (stored raw)', random(300_000, 3)],
    ['nothing', Buffer.alloc(0)],
  ] as const) {
    it(`${name}: lz4 -d (or lz4js) and lz4-napi give the input back`, (t) => {
      const oracle = lz4DecodeOracle();
      t.diagnostic(`oracle: ${oracle.name}`);
      const frame = frameOf(raw);
      assert.ok(oracle.fn(frame).equals(raw), oracle.name);
      assert.ok(decompressFrameSync(frame).equals(raw), 'lz4-napi');
      assert.ok(frame.byteLength <= frameBound(raw.byteLength));
    });
  }

  it('compresses page-like data about as well as lz4 -1 (or lz4js), and stores random data with 4 bytes a block', (t) => {
    const baseline = lz4FastSizeOracle();
    t.diagnostic(`baseline: ${baseline.name}`);
    const raw = compressible(1 << 20, 4);
    const theirs = baseline.fn(raw);
    const ours = frameOf(raw).byteLength;
    assert.ok(Math.abs(ours - theirs) / theirs < 0.05, `ours ${ours} bytes, ${baseline.name} ${theirs}`);
    const rnd = random(1 << 20, 5);
    assert.equal(frameOf(rnd).byteLength, 7 + 4 + rnd.byteLength + 4);
  });

  it('refuses an output buffer below the bound', () => {
    assert.throws(() => encodeFrame(Buffer.alloc(1000), Buffer.alloc(1000)), (e: Error & { code?: string }) => e.code === 'RA_ERR_TASK_PAYLOAD');
  });
});

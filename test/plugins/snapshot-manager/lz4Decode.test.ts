import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compressFrameSync, compressSync } from 'lz4-napi';
import { decodeFrameInto } from '../../../plugins/snapshot-manager/lz4Decode.js';
import { encodeFrame, frameBound, FRAME_BLOCK_MAX, FRAME_END, FRAME_HEADER } from '../../../plugins/snapshot-manager/lz4Frame.js';
import { prng } from '../../helpers/prng.js';

/** Records with a repeated text field and random bytes (short matches, 16-byte literals). */
function records(n: number, seed: number): Buffer {
  const rnd = prng(seed);
  const b = Buffer.alloc(n);
  for (let at = 0; at + 64 <= n; at += 64) {
    for (let k = 0; k < 16; k++) b[at + k] = rnd() & 0xff;
    b.write('name=carol|status=ok|region=eu-west|'.padEnd(48, '.'), at + 16);
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
  const out = Buffer.alloc(frameBound(raw.byteLength));
  return out.subarray(0, encodeFrame(raw, out));
}

/** Decodes into a buffer with a canary after `raw.byteLength`, checks the canary and the bytes. */
function roundTrips(raw: Buffer, label: string): void {
  const dst = Buffer.alloc(raw.byteLength + 64, 0xee);
  const n = decodeFrameInto(frameOf(raw), dst.subarray(0, raw.byteLength));
  assert.equal(n, raw.byteLength, label);
  assert.ok(dst.subarray(0, n).equals(raw), `${label}: decoded bytes equal the input`);
  assert.ok(dst.subarray(n).every((b) => b === 0xee), `${label}: nothing written past the output`);
}

describe('decodeFrameInto (restore\'s LZ4 decoder)', () => {
  it('decodes the frames lz4Frame.ts writes back to their input, whatever the data', () => {
    roundTrips(records(1 << 20, 1), 'records, 1 MiB');
    roundTrips(records(FRAME_BLOCK_MAX * 2 + 8192, 2), 'records over three blocks');
    roundTrips(Buffer.alloc(1 << 20), 'zeros (long overlapping matches)');
    roundTrips(Buffer.from('ab'.repeat(50_000) + 'xyz'.repeat(7)), 'period-2 and period-3 repeats (matches overlapping their source)');
    roundTrips(random(300_000, 3), 'random (a block stored raw)');
    roundTrips(Buffer.concat([random(70_000, 4), Buffer.alloc(70_000, 9), records(70_000, 5)]), 'long literals, long match, records');
    roundTrips(Buffer.from('x'), 'one byte');
  });

  it('decodes blocks from lz4-napi\'s block compressor, an independent encoder', () => {
    for (const [raw, label] of [[records(1 << 20, 6), 'records'], [Buffer.alloc(100_000, 1), 'ones'], [random(5000, 7), 'random']] as const) {
      const packed = compressSync(raw); // u32 raw size, then the block
      const size = Buffer.alloc(4);
      size.writeUInt32LE(packed.byteLength - 4);
      const frame = Buffer.concat([FRAME_HEADER, size, packed.subarray(4), FRAME_END]);
      const dst = Buffer.alloc(raw.byteLength);
      assert.equal(decodeFrameInto(frame, dst), raw.byteLength, label);
      assert.ok(dst.equals(raw), label);
    }
  });

  it('returns -1 for a frame with another header (lz4-napi\'s own frames), for the caller to decode another way', () => {
    assert.equal(decodeFrameInto(compressFrameSync(records(10_000, 8)), Buffer.alloc(10_000)), -1);
  });

  it('throws RA_ERR_SNAPSHOT_CORRUPT for damaged frames instead of writing outside its output', () => {
    const raw = records(1 << 16, 9);
    const frame = frameOf(raw);
    const corrupt = (f: Uint8Array, dstBytes = raw.byteLength) => assert.throws(() => decodeFrameInto(f, Buffer.alloc(dstBytes)), (e: Error & { code?: string }) => e.code === 'RA_ERR_SNAPSHOT_CORRUPT');
    corrupt(frame.subarray(0, frame.byteLength - 4)); // no end mark
    corrupt(frame.subarray(0, frame.byteLength - 100)); // block cut short
    corrupt(frame, raw.byteLength - 1); // output one byte short
    corrupt(Buffer.concat([frame, Buffer.from([1])])); // bytes after the end mark
    // Hand-made blocks: one literal 'a', then a match of 4 at offset 5 (before the output's
    // start) or 0 (not an offset); then the last literals.
    const frameWith = (block: number[]) => {
      const f = Buffer.alloc(7 + 4 + block.length + 4);
      frame.copy(f, 0, 0, 7);
      f.writeUInt32LE(block.length, 7);
      Buffer.from(block).copy(f, 11);
      return f;
    };
    assert.equal(decodeFrameInto(frameWith([0x10, 0x61, 1, 0, 0x10, 0x62]), Buffer.alloc(6)), 6, 'the well-formed hand-made block decodes');
    corrupt(frameWith([0x10, 0x61, 5, 0, 0x10, 0x62]), 6);
    corrupt(frameWith([0x10, 0x61, 0, 0, 0x10, 0x62]), 6);
  });

  it('never writes outside its output, whatever bit of a frame is flipped', () => {
    const raw = records(4096, 10);
    const frame = frameOf(raw);
    for (let bit = 7 * 8; bit < frame.byteLength * 8; bit += 3) {
      const bad = Buffer.from(frame);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      const dst = Buffer.alloc(raw.byteLength + 64, 0xee);
      try {
        decodeFrameInto(bad, dst.subarray(0, raw.byteLength));
      } catch (err) {
        assert.equal((err as Error & { code?: string }).code, 'RA_ERR_SNAPSHOT_CORRUPT', `bit ${bit}`);
      }
      assert.ok(dst.subarray(raw.byteLength).every((b) => b === 0xee), `bit ${bit}: nothing written past the output`);
    }
  });
});

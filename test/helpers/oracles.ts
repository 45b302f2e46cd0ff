/**
 * Independent oracles for the tests that check our XXH3-64 and our LZ4 frames: the command-line
 * tools when they are installed (`xxhsum -H3`, `lz4`; `.ci/run` installs them), else npm packages
 * that share no code with what the product uses (native/, xxhash-addon, lz4-napi):
 *
 * - XXH3-64: `@node-rs/xxhash`, a binding of the xxhash-rust crate (native/ is a hand-written
 *   port, xxhash-addon binds the C reference, so a third implementation).
 * - LZ4 frames: `lz4js`, pure JavaScript (lz4-napi is lz4_flex). lz4js reads no checksums, so the
 *   frame walk here checks what `lz4 -d` checks (header, block and content checksums, content size,
 *   block size) with `@node-rs/xxhash`'s XXH32, and hands each block to lz4js's decoder.
 *
 * So a fresh machine runs these tests without the Debian packages. Each test says which oracle
 * it used (`t.diagnostic(oracle.name)`), so a log shows what a pass was checked against.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as Lz4js from 'lz4js';
import type * as NodeRsXxhash from '@node-rs/xxhash';
import { haveTool } from './tools.js';

// Both are CommonJS; loaded only when the CLI is absent.
const require = createRequire(import.meta.url);
const lz4js = (): typeof Lz4js => require('lz4js') as typeof Lz4js;
const nodeRsXxhash = (): typeof NodeRsXxhash => require('@node-rs/xxhash') as typeof NodeRsXxhash;

export interface Oracle<F> {
  /** What was used, for the test's diagnostic line: the CLI or the npm package. */
  name: string;
  fn: F;
}

/** XXH3-64 (seed 0) of each buffer, as `xxhsum -H3` prints it. */
export function xxh3Oracle(): Oracle<(buffers: Uint8Array[]) => bigint[]> {
  if (haveTool('xxhsum')) return { name: 'xxhsum -H3 (CLI)', fn: xxhsum };
  return { name: '@node-rs/xxhash xxh3.xxh64 (npm; xxhsum is not installed)', fn: npmXxh3 };
}

/** The bytes an LZ4 frame (or several, one after the other) holds, as `lz4 -d` gives them; throws on a bad frame. */
export function lz4DecodeOracle(): Oracle<(frames: Uint8Array) => Buffer> {
  if (haveTool('lz4')) return { name: 'lz4 -d (CLI)', fn: lz4CliDecode };
  return { name: 'lz4js + @node-rs/xxhash checksums (npm; the lz4 CLI is not installed)', fn: npmLz4Decode };
}

/**
 * Size of an LZ4 frame of `raw` from a reference fast compressor: `lz4 -1`, else lz4js (the same
 * greedy single-hash algorithm: 99,208 bytes against lz4 -1's 101,894 on lz4Frame.test.ts's
 * page-like MiB). A baseline for "compresses about as well", not an exact value.
 */
export function lz4FastSizeOracle(): Oracle<(raw: Uint8Array) => number> {
  if (haveTool('lz4')) {
    return {
      name: 'lz4 -1 (CLI)',
      fn: (raw) => {
        const r = spawnSync('lz4', ['-1', '-c'], { input: raw, maxBuffer: 8 * raw.byteLength + (1 << 20) });
        assert.equal(r.status, 0, String(r.stderr));
        return r.stdout.byteLength;
      },
    };
  }
  return { name: 'lz4js compress (npm; the lz4 CLI is not installed)', fn: (raw) => lz4js().compress(raw).byteLength };
}

/**
 * `xxhsum -H3` of each buffer, in one run of the CLI over temp files. Accepts both output
 * formats: BSD `XXH3 (file) = hex` (xxHash 0.8.1's default for -H3) and GNU `[XXH3_]hex  file`.
 */
function xxhsum(buffers: Uint8Array[]): bigint[] {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-oracle-xxh3-'));
  try {
    const files = buffers.map((b, i) => {
      const f = path.join(dir, `b${i}.bin`);
      writeFileSync(f, b);
      return f;
    });
    const r = spawnSync('xxhsum', ['-H3', ...files], { encoding: 'utf8', maxBuffer: 64 << 20 });
    assert.equal(r.status, 0, r.stderr);
    const byFile = new Map<string, bigint>();
    for (const line of r.stdout.split('\n')) {
      const bsd = /^XXH3 \((.+)\) = ([0-9a-f]{16})\s*$/.exec(line);
      const gnu = /^(?:XXH3_)?([0-9a-f]{16}) {2}(.+?)\s*$/.exec(line);
      if (bsd) byFile.set(bsd[1]!, BigInt(`0x${bsd[2]}`));
      else if (gnu) byFile.set(gnu[2]!, BigInt(`0x${gnu[1]}`));
    }
    return files.map((f) => {
      const h = byFile.get(f);
      assert.notEqual(h, undefined, `xxhsum printed no hash for ${f}:\n${r.stdout.slice(0, 500)}`);
      return h as bigint;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function lz4CliDecode(frames: Uint8Array): Buffer {
  const r = spawnSync('lz4', ['-d', '-c'], { input: frames, maxBuffer: 1 << 30 });
  assert.equal(r.status, 0, `lz4 -d: ${String(r.stderr)}`);
  return r.stdout;
}

const MAGIC = 0x184d2204;
const BLOCK_MAX = new Map([[4, 64 << 10], [5, 256 << 10], [6, 1 << 20], [7, 4 << 20]]);

/** The npm fallback for `xxhsum -H3`; exported for oracles.test.ts, which checks it against the CLI. */
export function npmXxh3(buffers: Uint8Array[]): bigint[] {
  const { xxh3 } = nodeRsXxhash();
  return buffers.map((b) => xxh3.xxh64(b));
}

/**
 * The npm fallback for `lz4 -d`: the LZ4 frame format (lz4/lz4 doc/lz4_Frame_format.md), checked
 * as strictly as `lz4 -d` checks it. Exported for oracles.test.ts, which checks it against the CLI.
 */
export function npmLz4Decode(frames: Uint8Array): Buffer {
  const { decompressBlock } = lz4js();
  const { xxh32 } = nodeRsXxhash();
  const src = Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength);
  const out: Buffer[] = [];
  let at = 0;
  const need = (n: number, what: string) => { if (at + n > src.length) throw new Error(`lz4 frame cut short in ${what} at byte ${at}`); };
  while (at < src.length) {
    need(4, 'the magic number');
    const magic = src.readUInt32LE(at);
    if ((magic & 0xfffffff0) === 0x184d2a50) { // skippable frame
      need(8, 'a skippable frame');
      at += 8 + src.readUInt32LE(at + 4);
      continue;
    }
    if (magic !== MAGIC) throw new Error(`bad lz4 magic number 0x${magic.toString(16)} at byte ${at}`);
    const start = at + 4;
    need(7, 'the frame header');
    const flg = src[start]!;
    const bd = src[start + 1]!;
    if (flg >> 6 !== 1) throw new Error(`lz4 frame version ${flg >> 6}, not 1`);
    if (flg & 0x02 || bd & 0x8f) throw new Error('lz4 frame header: reserved bits set');
    if (flg & 0x01) throw new Error('lz4 frame with a dictionary ID: not supported by this oracle');
    const blockSums = (flg & 0x10) !== 0;
    const contentSize = (flg & 0x08) !== 0;
    const contentSum = (flg & 0x04) !== 0;
    const blockMax = BLOCK_MAX.get(bd >> 4 & 7);
    if (blockMax === undefined) throw new Error(`lz4 frame: bad block size code ${bd >> 4 & 7}`);
    const headerLen = 2 + (contentSize ? 8 : 0);
    need(4 + headerLen + 1, 'the frame header');
    const declared = contentSize ? src.readBigUInt64LE(start + 2) : undefined;
    if (src[start + headerLen] !== (xxh32(src.subarray(start, start + headerLen), 0) >>> 8 & 0xff)) throw new Error('lz4 frame: header checksum mismatch');
    at = start + headerLen + 1;

    // Walk the blocks first, to size one output for them all (linked blocks refer back across blocks).
    const blocks: { at: number; size: number; raw: boolean }[] = [];
    for (;;) {
      need(4, 'a block size');
      const word = src.readUInt32LE(at);
      at += 4;
      if (word === 0) break;
      const size = word & 0x7fffffff;
      if (size > blockMax) throw new Error(`lz4 block of ${size} bytes above the frame's ${blockMax}`);
      need(size + (blockSums ? 4 : 0), 'a block');
      if (blockSums && src.readUInt32LE(at + size) !== xxh32(src.subarray(at, at + size), 0)) throw new Error(`lz4 block at byte ${at}: checksum mismatch`);
      blocks.push({ at, size, raw: (word & 0x80000000) !== 0 });
      at += size + (blockSums ? 4 : 0);
    }
    const dst = new Uint8Array(blocks.length * blockMax);
    let n = 0;
    for (const b of blocks) {
      const before = n;
      if (b.raw) {
        dst.set(src.subarray(b.at, b.at + b.size), n);
        n += b.size;
      } else {
        n = decompressBlock(src, dst, b.at, b.size, n);
      }
      if (n - before > blockMax) throw new Error(`lz4 block at byte ${b.at} decodes to ${n - before} bytes, above ${blockMax}`);
    }
    const content = Buffer.from(dst.buffer, 0, n);
    if (declared !== undefined && declared !== BigInt(n)) throw new Error(`lz4 frame declares ${declared} bytes and holds ${n}`);
    if (contentSum) {
      need(4, 'the content checksum');
      if (src.readUInt32LE(at) !== xxh32(content, 0)) throw new Error('lz4 frame: content checksum mismatch');
      at += 4;
    }
    out.push(content);
  }
  return Buffer.concat(out);
}

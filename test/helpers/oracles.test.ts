/**
 * The npm fallbacks of oracles.ts are oracles only if they agree with the CLIs they stand in for:
 * known answers (printed by xxhsum 0.8.1 and lz4 1.9.4) always, and, where the CLIs are installed
 * (CI), the same inputs through both. The LZ4 decoder must also refuse what `lz4 -d` refuses.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { prng } from './prng.js';
import { npmLz4Decode, npmXxh3, xxh3Oracle } from './oracles.js';
import { haveTool } from './tools.js';

function bytes(n: number, seed: number): Buffer {
  const rnd = prng(seed);
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 97 < 40 ? rnd() & 0xff : 'page '.charCodeAt(i % 5);
  return b;
}

// `printf 'hello hello hello oracle hello\n%.0s' {1..50} | lz4 -BX -BD --content-size`: linked
// blocks, block checksums, content size and content checksum (FLG 0x7c), 1550 bytes of text.
const TEXT = Buffer.from('hello hello hello oracle hello\n'.repeat(50));
const FRAME = Buffer.from(
  '04224d187c400e06000000000000f8280000006868656c6c6f200600626f7261636c651300180a1900020c000f1f00ffffffffffca50656c6c6f0a682c09d1000000007079f093',
  'hex',
);
/** Where in FRAME each checked field is. */
const HEADER_CHECKSUM = 14;
const BLOCK_CHECKSUM = 59;
const CONTENT_CHECKSUM = FRAME.length - 4;

function flipped(frame: Buffer, at: number): Buffer {
  const b = Buffer.from(frame);
  b[at]! ^= 0x01;
  return b;
}

describe('test oracles: the npm fallbacks agree with xxhsum and lz4', () => {
  it('@node-rs/xxhash gives xxhsum -H3 known answers', () => {
    assert.deepEqual(npmXxh3([Buffer.alloc(0), Buffer.from('abc'), Buffer.from('x'.repeat(300)), Buffer.alloc(5 << 20, 'y')]),
      [0x2d06800538d394c2n, 0x78af5f94892f3950n, 0xa5d1b4607dc83554n, 0xda5ffb28f36b2bdfn]);
  });

  it('@node-rs/xxhash equals xxhsum -H3 on every length class, where xxhsum is installed', (t) => {
    const oracle = xxh3Oracle();
    t.diagnostic(`oracle: ${oracle.name}`);
    const buffers = [...Array.from({ length: 260 }, (_, n) => bytes(n, n)), ...[1023, 1024, 4097, 65537, (1 << 20) + 3].map((n) => bytes(n, n))];
    assert.deepEqual(npmXxh3(buffers), oracle.fn(buffers));
  });

  it('decodes a frame with linked blocks, block and content checksums and a content size', () => {
    assert.deepEqual(npmLz4Decode(FRAME), TEXT);
    // Two frames and a skippable frame between them, as lz4 -d reads a concatenation.
    const skippable = Buffer.from('502a4d1803000000abcdef', 'hex');
    assert.deepEqual(npmLz4Decode(Buffer.concat([FRAME, skippable, FRAME])), Buffer.concat([TEXT, TEXT]));
  });

  it('refuses what lz4 -d refuses: each checksum wrong, a wrong content size, a cut frame', () => {
    const bad: [string, Buffer, RegExp][] = [
      ['header checksum', flipped(FRAME, HEADER_CHECKSUM), /header checksum/],
      ['block checksum', flipped(FRAME, BLOCK_CHECKSUM), /block .*checksum/],
      ['content checksum', flipped(FRAME, CONTENT_CHECKSUM), /content checksum/],
      ['a byte of the block', flipped(FRAME, 30), /block .*checksum/],
      ['content size', flipped(FRAME, 6), /header checksum|declares/],
      ['cut', FRAME.subarray(0, FRAME.length - 6), /cut short/],
      ['magic', flipped(FRAME, 0), /magic/],
    ];
    for (const [what, frame, message] of bad) {
      assert.throws(() => npmLz4Decode(frame), message, what);
      if (haveTool('lz4')) assert.notEqual(spawnSync('lz4', ['-d', '-c'], { input: frame }).status, 0, `lz4 -d refuses it too: ${what}`);
    }
  });

  it('decodes what the lz4 CLI writes, in every block mode, where the CLI is installed', (t) => {
    if (!haveTool('lz4')) {
      t.diagnostic('the lz4 CLI is not installed: the known-answer frame above stands in for it');
      assert.deepEqual(npmLz4Decode(FRAME), TEXT);
      return;
    }
    t.diagnostic('oracle: lz4 (CLI)');
    const raw = bytes(600_000, 7);
    for (const args of [['-1'], ['-9', '-BD'], ['-B4', '-BX'], ['-B4', '-BD', '-BX', '--content-size'], ['-B7', '--no-frame-crc']]) {
      const r = spawnSync('lz4', [...args, '-c'], { input: raw, maxBuffer: 8 << 20 });
      assert.equal(r.status, 0, String(r.stderr));
      assert.deepEqual(npmLz4Decode(r.stdout), raw, `lz4 ${args.join(' ')}`);
    }
  });
});

import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { encodeFrame, frameBound } from '../../../plugins/snapshot-manager/lz4Frame.js';
import { xxh3Hex } from '../../../plugins/snapshot-manager/manifest.js';
import restoreChunk, { giveWriteTurn, takeWriteTurn } from '../../../plugins/snapshot-manager/restoreTask.js';

describe("restore's write turn (one worker writes the data file at a time)", () => {
  it('is taken when free, refused while held, and free again once given back', () => {
    const turn = new Int32Array(new SharedArrayBuffer(4));
    assert.equal(takeWriteTurn(turn, 0), true);
    assert.equal(turn[0], 1);
    assert.equal(takeWriteTurn(turn, 0), false, 'held: not taken twice');
    giveWriteTurn(turn);
    assert.equal(turn[0], 0);
    assert.equal(takeWriteTurn(turn, 0), true);
  });

  it('waits no longer than its limit for a turn never given back (a worker gone mid-write), then lets the writer go on without it', () => {
    const turn = new Int32Array(new SharedArrayBuffer(4));
    turn[0] = 1;
    const t0 = performance.now();
    assert.equal(takeWriteTurn(turn, 120), false);
    const waited = performance.now() - t0;
    assert.ok(waited >= 120 && waited < 5_000, `waited ${waited} ms`);
    assert.equal(turn[0], 1, 'the stale turn is left as it was');
  });

  it("is given back when a chunk's write fails, so the other workers go on writing (and a good write still lands)", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-write-turn-'));
    try {
      const pageSize = 4096;
      const raw = new Uint8Array(3 * pageSize);
      for (let k = 0; k < raw.byteLength; k++) raw[k] = (k * 7 + (k >> 12)) & 0xff;
      const out = new Uint8Array(frameBound(raw.byteLength));
      const frame = out.subarray(0, encodeFrame(raw, out));
      const file = path.join(dir, 'chunk-00000.lz4');
      writeFileSync(file, frame);
      const data = path.join(dir, 'pages.db');
      writeFileSync(data, new Uint8Array(5 * pageSize));
      const turn = new Int32Array(new SharedArrayBuffer(4));
      const input = { file, bytes: frame.byteLength, xxh3: xxh3Hex(frame), rawBytes: raw.byteLength, rawXxh3: xxh3Hex(raw), runs: [1, 2, 4, 1], pageSize, writeTurn: turn };
      // A descriptor open for reading only: its write fails (EBADF) while the turn is held.
      const readOnly = openSync(data, 'r');
      try {
        const r = await restoreChunk({ ...input, fd: readOnly });
        assert.ok('failed' in r && r.failed.code === 'EBADF', JSON.stringify(r));
      } finally {
        closeSync(readOnly);
      }
      assert.equal(turn[0], 0, 'the failed writer gave the turn back');
      const fd = openSync(data, 'r+');
      try {
        assert.deepEqual(await restoreChunk({ ...input, fd }), { pages: 3 });
      } finally {
        closeSync(fd);
      }
      assert.equal(turn[0], 0);
      const want = new Uint8Array(5 * pageSize);
      want.set(raw.subarray(0, 2 * pageSize), pageSize);
      want.set(raw.subarray(2 * pageSize), 4 * pageSize);
      assert.deepEqual(new Uint8Array(readFileSync(data)), want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

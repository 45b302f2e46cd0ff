import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { giveWriteTurn, takeWriteTurn } from '../../../plugins/snapshot-manager/restoreTask.js';

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
});

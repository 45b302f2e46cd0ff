// The control socket's line reader: lines cut at '\n' whatever the chunks, the unfinished rest
// counted (the socket refuses a line over its limit from it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineSplitter } from '../../../plugins/pagestore/lineSplitter.js';
import { prng } from '../../helpers/prng.js';

describe('LineSplitter', () => {
  it('gives the same lines however the text is cut into chunks', () => {
    const rnd = prng(3);
    const lines = Array.from({ length: 200 }, (_, i) => 'x'.repeat(rnd() % 5000) + `#${i}`);
    lines.splice(7, 0, '', '');
    const text = lines.join('\n') + '\ntail';
    for (let round = 0; round < 20; round++) {
      const s = new LineSplitter();
      const got: string[] = [];
      for (let at = 0; at < text.length; ) {
        const n = 1 + (rnd() % (round < 10 ? 7 : 70_000));
        got.push(...s.push(text.slice(at, at + n)));
        at += n;
      }
      assert.deepEqual(got, lines);
      assert.equal(s.pending, 4, 'the unfinished "tail" is kept and counted');
    }
  });
});

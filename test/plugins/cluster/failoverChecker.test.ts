/** The checker of the fault tests, on records written by hand: it passes a clean handover and names a lost commit and each kind of overlap. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { check, parseRecord, readRuns, RecordTail } from './failoverChecker.js';

const a = ['run 10 a', 'start 1 0', 'start 2 0', 'opened 100 5', 'acked 1 2 5 110', 'acked 2 1 5 120', 'acked 3 2 5 130'].join('\n');
const handover = (opened: number, start2: number, acks: string[]): string => ['run 20 b', 'start 1 2', `start 2 ${start2}`, `opened ${opened} 9`, ...acks].join('\n');

describe('failover checker', () => {
  it('passes a handover that kept every acknowledged commit and later epochs strictly after', () => {
    const r = check([...parseRecord('a', a), ...parseRecord('b', handover(200, 3, ['acked 4 1 9 210', 'acked 5 2 9 220']))]);
    assert.deepEqual([r.lost, r.overlaps, r.acks, r.runs], [[], [], 5, 2]);
    assert.deepEqual(r.spans.map((s) => [s.node, s.epoch, s.first, s.last, s.count]), [['a', 5, 110n, 130n, 3], ['b', 9, 210n, 220n, 2]]);
  });

  it('names a commit acknowledged before the new store opened but missing there', () => {
    const r = check([...parseRecord('a', a), ...parseRecord('b', handover(200, 1, ['acked 4 1 9 210']))]);
    assert.equal(r.lost.length, 1);
    assert.match(r.lost[0]!, /page 2 opened on b .* at 1, but commit 3 was acknowledged by a in epoch 5/);
  });

  it('names an old epoch acknowledged after a newer one on another node, and two nodes in one epoch', () => {
    const late = check([...parseRecord('a', `${a}\nacked 6 1 5 215`), ...parseRecord('b', handover(200, 3, ['acked 4 1 9 210']))]);
    assert.equal(late.overlaps.length, 1);
    assert.match(late.overlaps[0]!, /a acknowledged in epoch 5 until 215, after b's first acknowledgement in epoch 9 at 210/);
    const same = check([...parseRecord('a', a), ...parseRecord('b', handover(200, 3, ['acked 4 1 5 210']))]);
    assert.match(same.overlaps.join(), /a and b both acknowledged in epoch 5/);
  });

  it('judges each run against the acknowledgements before its own open, whatever the order of runs and acknowledgements in the records', () => {
    // Acks out of time order within a record (concurrent writers stamp them as their commits
    // resolve); runs opened at 115, 125, 135 and 90 listed in another order.
    const w = ['run 10 a', 'start 1 0', 'start 2 0', 'opened 90 5', 'acked 2 1 5 120', 'acked 1 1 5 110', 'acked 3 2 5 130'].join('\n');
    const early = ['run 20 b', 'start 1 0', 'start 2 0', 'opened 115 5'].join('\n'); // only seq 1 (page 1) was before: missing
    const mid = ['run 21 b', 'start 1 2', 'start 2 0', 'opened 125 5'].join('\n'); // seqs 1, 2 of page 1 before: has them
    const late = ['run 22 b', 'start 1 2', 'start 2 2', 'opened 135 5'].join('\n'); // seq 3 of page 2 before: has 2, missing
    const r = check([...parseRecord('b', late), ...parseRecord('b', early), ...parseRecord('a', w), ...parseRecord('b', mid)]);
    assert.equal(r.lost.length, 2, r.lost.join('\n'));
    assert.match(r.lost[0]!, /page 2 opened on b \(pid 22, epoch 5\) at 2, but commit 3 was acknowledged by a/);
    assert.match(r.lost[1]!, /page 1 opened on b \(pid 20, epoch 5\) at 0, but commit 1 was acknowledged by a/);
  });

  it('ignores a torn last line and a run that died before its store opened', () => {
    const runs = parseRecord('a', `${a}\nrun 11 a\nstart 1 0\nacked 8 2`);
    assert.equal(runs.length, 2);
    assert.equal(runs[1]!.openedNs, null);
    assert.deepEqual(runs[1]!.acks, []);
    const r = check(runs);
    assert.deepEqual([r.lost, r.acks], [[], 3]);
  });

  it('reads a growing record piece by piece as readRuns reads it whole, a line cut mid-write completed later', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ra-tail-'));
    const file = path.join(dir, 'a.record');
    const tail = new RecordTail();
    try {
      assert.deepEqual(tail.read([{ node: 'a', file }]), []); // not there yet
      fs.writeFileSync(file, `${a}\nacked 4 1 5 1`); // "acked 4 1 5 140" cut after its first digit
      assert.equal(tail.read([{ node: 'a', file }])[0]!.acks.length, 3);
      fs.appendFileSync(file, '40\nrun 11 a\nopened 300 5\nacked 5 2 5 310\n');
      const runs = tail.read([{ node: 'a', file }]);
      assert.deepEqual(runs, readRuns([{ node: 'a', file }]));
      assert.deepEqual(runs.map((r) => r.acks.map((x) => x.ns)), [[110n, 120n, 130n, 140n], [310n]]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

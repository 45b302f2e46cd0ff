/** The catch-up rule over member-state tables (core/cluster/eligibility.ts). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catchUp, type CatchUpRule } from '../../../core/cluster/eligibility.js';
import type { ClusterMemberState, PeerState } from '../../../core/contracts/ClusterMemberSource.js';

const me = (durableLsn: number, over: Partial<ClusterMemberState> = {}): ClusterMemberState => ({
  epoch: 5, durableLsn, appliedLsn: durableLsn, health: 'ok', streaming: true, replicationAddress: null, ...over,
});
const peer = (member: string, durableLsn: number, over: Partial<PeerState> = {}): PeerState => ({
  ...me(durableLsn), member, role: 'replica', httpAddress: null, updatedAt: 0, ...over,
});

describe('catchUp: sync mode', () => {
  // 3 replicas, 2 must hold a commit: any 3 − 2 + 1 = 2 answering replicas include one holding it.
  const rule: CatchUpRule = { mode: 'sync', replicas: 3, syncReplicas: 2, maxLagBytes: 0 };
  const table: Array<[string, ClusterMemberState, PeerState[], boolean, RegExp]> = [
    ['the highest of two answering', me(900), [peer('b', 800)], true, /holds the highest durable LSN \(900\) of 2/],
    ['equal to the highest', me(900), [peer('b', 900), peer('c', 100)], true, /900/],
    ['behind another answering replica', me(800), [peer('b', 900)], false, /durable to 800, b holds 900/],
    ['alone: too few answer to know', me(900), [], false, /1 of 3 replicas answer, 2 are needed/],
    ['the old leader answering does not count', me(900), [peer('old', 950, { role: 'leader' })], false, /1 of 3 replicas answer/],
    ['a newer epoch elsewhere', me(900), [peer('b', 10, { epoch: 6 })], false, /epoch 5, older than b's 6/],
    ['an older epoch peer counts as answering, not for the LSN', me(500), [peer('b', 900, { epoch: 4 })], true, /holds the highest durable LSN \(500\) of 2/],
    ['failed', me(900, { health: 'failed' }), [peer('b', 800)], false, /failed/],
  ];
  for (const [name, self, peers, eligible, reason] of table) {
    it(name, () => {
      const e = catchUp(self, peers, rule);
      assert.equal(e.eligible, eligible, e.reason);
      assert.match(e.reason, reason);
    });
  }
  it('syncReplicas = replicas: any one answering replica is enough', () => {
    assert.equal(catchUp(me(10), [], { mode: 'sync', replicas: 2, syncReplicas: 2, maxLagBytes: 0 }).eligible, true);
  });
});

describe('catchUp: async mode', () => {
  const rule: CatchUpRule = { mode: 'async', replicas: 2, syncReplicas: 1, maxLagBytes: 1000 };
  const table: Array<[string, ClusterMemberState, PeerState[], boolean, RegExp]> = [
    ['alone', me(0), [], true, /0 bytes behind/],
    ['within maxLagBytes', me(9000), [peer('b', 10_000)], true, /1000 bytes behind/],
    ['past maxLagBytes', me(8999), [peer('b', 10_000)], false, /1001 bytes behind b, more than maxLagBytes 1000/],
    ['ahead of everyone', me(20_000), [peer('b', 10_000)], true, /0 bytes behind/],
    ['a newer epoch elsewhere', me(20_000), [peer('b', 0, { epoch: 9 })], false, /older than b's 9/],
  ];
  for (const [name, self, peers, eligible, reason] of table) {
    it(name, () => {
      const e = catchUp(self, peers, rule);
      assert.equal(e.eligible, eligible, e.reason);
      assert.match(e.reason, reason);
    });
  }
});

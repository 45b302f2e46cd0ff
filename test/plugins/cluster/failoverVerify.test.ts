// The `cluster-failover` action's verify (plugins/cluster/failover.ts) looks again when a look
// fails: right after `apply` saw the new primary, the old primary's etcd client (its link just
// back) failed one call with "UNAVAILABLE: No connection established", and the failover was
// escalated to a person although the cluster had its primary. A leader key that never names a
// new primary is still "not fixed".
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Failure } from '../../../core/contracts/Failure.js';
import type { HealingContext } from '../../../core/contracts/HealingAction.js';
import { failoverAction, PRIMARY_FAILURE } from '../../../plugins/cluster/failover.js';
import type { LeaderInfo } from '../../../plugins/cluster/member.js';
import { captureLogger } from '../../helpers/logCapture.js';

const failure: Failure = {
  id: 'f-1', kind: PRIMARY_FAILURE, priority: 'P1', subject: 'cluster:c', evidence: { epoch: 10 }, detectedAt: Date.now(), source: 'cluster', fingerprint: `${PRIMARY_FAILURE}:c:10`,
};
const ctx = (): HealingContext => ({ signal: new AbortController().signal, log: captureLogger().log, options: {} });

describe('cluster-failover verify', () => {
  let server: http.Server;
  let leader: LeaderInfo;
  before(async () => {
    server = http.createServer((req, res) => res.writeHead(req.url === '/primary' ? 200 : 404).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    leader = { member: 'b', httpAddress: `127.0.0.1:${(server.address() as AddressInfo).port}`, replicationAddress: null, epoch: 20, lease: '1' };
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  it('an etcd call that fails right after apply is looked at again: verified', async () => {
    const answers: Array<() => LeaderInfo | null> = [
      () => leader, // apply's look
      () => {
        throw new Error('14 UNAVAILABLE: No connection established. Last error: null. Resolution note: ');
      },
      () => leader,
    ];
    let calls = 0;
    const action = failoverAction({ cluster: 'c', fetchLeader: async () => answers[Math.min(calls++, answers.length - 1)]!() });
    assert.ok(action.canHandle(failure));
    await action.apply(failure, ctx());
    assert.equal(await action.verify(failure, ctx()), true);
    assert.equal(calls, 3);
  });

  it('a leader key that still names the lost epoch is not fixed; an etcd that stays unreachable is an error', async () => {
    const stale = failoverAction({ cluster: 'c', fetchLeader: async () => ({ ...leader, epoch: 10 }) });
    assert.equal(await stale.verify(failure, ctx()), false);
    const down = failoverAction({
      cluster: 'c',
      fetchLeader: async () => {
        throw new Error('14 UNAVAILABLE: No connection established');
      },
    });
    await assert.rejects(Promise.resolve(down.verify(failure, ctx())), /UNAVAILABLE/);
  });
});

// The short cluster chaos run of CI (issue #17): one trial of every cluster fault kind
// (faults/cluster.ts: host death, SIGSTOP, the primary cut off from etcd, from its replicas, and
// asymmetrically) back to back on one cluster — a 3-member etcd, three agents in sync mode, every
// link through a fault proxy (cluster/clusterChaos.ts) — with a fixed seed. Asserted for every
// kind: its correct answer (a failover recorded as a recovered `primary-failure` whose RTO agrees
// with the harness's clock; or, cut from the replicas, no acknowledgement and no election while
// the fault holds, commits again after the heal), no acknowledged commit lost, no overlapping
// epochs, no agent crash, the RTO within the seed's target; and at the end, every page of every
// member's store verifying. The long run is `npm run chaos -- --cluster --trials N`.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ClusterChaos } from './cluster/clusterChaos.js';
import { CLUSTER_KINDS, probeCluster } from './faults/cluster.js';
import { assertInvariants, type TrialResult } from './harness.js';

const SEED = 17;

describe('chaos: one trial of every cluster fault kind', { timeout: 180_000 }, () => {
  let chaos: ClusterChaos | null = null;
  after(async () => {
    await chaos?.close([]);
  });

  it('fails over or blocks as each kind asks, loses no acknowledged commit, never overlaps epochs', async () => {
    const why = await probeCluster();
    assert.equal(why, null, `the cluster kinds cannot run on this machine: ${why}`);
    const t0 = Date.now();
    chaos = await ClusterChaos.start();
    const results: TrialResult[] = [];
    for (const [trial, kind] of CLUSTER_KINDS.entries()) {
      const r = await chaos.trial({ seed: SEED, trial, kind, recoveryTimeoutMs: 25_000 });
      results.push(r);
      console.log(`# ${r.kind}: ${r.status} RTO ${r.harnessRtoMs ?? '-'} ms (agent ${r.agentRtoMs ?? '-'} ms, detected after ${r.detectionMs ?? '-'} ms), ${r.acked} acked, ${r.ackedLost} lost, ${r.wallMs} ms; ${[...r.violations, ...r.problems].join(' | ')}`);
    }
    const c = chaos;
    chaos = null;
    await c.close(results);
    console.log(`# ${results.length} trials in ${Date.now() - t0} ms`);

    for (const r of results) {
      const why = assertInvariants(r);
      assert.ok(r.pagesVerified, why);
      assert.equal(r.status, 'passed', why);
      assert.equal(r.outcome, 'recovered', why);
      assert.notEqual(r.rtoAgrees, false, why);
      assert.ok(r.harnessRtoMs !== null && r.harnessRtoMs <= r.targetMs, why);
      const kind = CLUSTER_KINDS.find((k) => k.name === r.kind)!;
      if (kind.answer.type === 'failover') assert.ok(r.agentRtoMs !== null && r.rtoAgrees === true, `${why}: no recorded failover RTO`);
      else assert.ok(r.healToCommitMs !== null, why);
    }
  });
});

/**
 * The replication side of the election (#15 item 1): `ClusterMemberSource` for this agent's one
 * member store. The cluster plugin publishes `state()` under the member's etcd key and campaigns
 * only while `eligible()` says yes; the rule is core/cluster/eligibility.ts's `catchUp`, with the
 * store's own `mode` and `syncReplicas` (the cluster's config knows neither).
 */
import type { ClusterMemberSource, ClusterMemberState } from '../../core/contracts/ClusterMemberSource.js';
import { catchUp } from '../../core/cluster/eligibility.js';
import type { MemberStore } from './memberStore.js';

export function memberSource(m: MemberStore): ClusterMemberSource {
  const state = (): ClusterMemberState => {
    const s = m.state();
    return {
      epoch: s.epoch,
      durableLsn: s.durableLsn,
      appliedLsn: s.appliedLsn,
      // A member whose last role change failed can still serve (the cluster retries it), but
      // the operator should see it: degraded, with the reason in GET /replication.
      health: m.failed() ? 'degraded' : 'ok',
      streaming: s.streaming,
      replicationAddress: s.replicationAddress,
    };
  };
  return {
    state,
    eligible(peers, limits) {
      const s = m.state();
      return catchUp(state(), peers, { mode: s.mode, replicas: Math.max(0, limits.members - 1), syncReplicas: s.syncReplicas, maxLagBytes: limits.maxLagBytes });
    },
  };
}

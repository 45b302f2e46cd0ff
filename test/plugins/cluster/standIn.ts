/** A stand-in ClusterMemberSource for the cluster tests: a mutable state and an eligibility answer. */
import type { ClusterLimits, ClusterMemberSource, ClusterMemberState, Eligibility, PeerState } from '../../../core/contracts/ClusterMemberSource.js';

export interface StandIn extends ClusterMemberSource {
  s: { -readonly [K in keyof ClusterMemberState]: ClusterMemberState[K] };
  /** Replaces the eligibility answer (default: eligible). */
  decide: (peers: readonly PeerState[], limits: ClusterLimits) => Eligibility;
}

export function standIn(over: Partial<ClusterMemberState> = {}): StandIn {
  const src: StandIn = {
    s: { epoch: 0, durableLsn: 0, appliedLsn: 0, health: 'ok', streaming: true, replicationAddress: null, ...over },
    decide: () => ({ eligible: true, reason: 'stand-in: eligible' }),
    state: () => ({ ...src.s }),
    eligible: (peers, limits) => src.decide(peers, limits),
  };
  return src;
}

import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/**
 * What the cluster layer (plugins/cluster) needs to know about this member's replication, and
 * the one decision it cannot make itself: whether this member is caught up enough to become the
 * primary. The replication plugin provides it (#15); the cluster plugin publishes the state under
 * the member's etcd key and campaigns only while `eligible` says so. Tests pass a stand-in.
 *
 * A contract rather than a call into the replication plugin because plugins never import each
 * other: the cluster runs with whatever provides this, or with nothing (election only).
 */

/** This member's replication state, as the cluster publishes it (LSNs are byte offsets in the WAL). */
export interface ClusterMemberState {
  /** The epoch of the log this member holds (the leader key's create revision it followed or led). */
  readonly epoch: number;
  /** The end of the log that is durable here. */
  readonly durableLsn: number;
  /** The end of the log that is applied to pages here. */
  readonly appliedLsn: number;
  /** `failed`: this member cannot serve (never eligible); `degraded`: it can, with a problem reported. */
  readonly health: 'ok' | 'degraded' | 'failed';
  /** True while a replica receives the primary's stream (what `GET /readiness` asks of a replica). */
  readonly streaming: boolean;
  /** Where replicas reach this member's store owner when it is the primary (`host:port`), if it has one. */
  readonly replicationAddress: string | null;
}

/** Another member's state, as read from its etcd key (it may be stale by up to a second). */
export interface PeerState extends ClusterMemberState {
  readonly member: string;
  readonly role: 'leader' | 'replica';
  /** Where its agent's API is reached. */
  readonly httpAddress: string | null;
  /** The publisher's wall clock (ms), for display. */
  readonly updatedAt: number;
}

/** Whether a member may campaign, and why not in words an operator reads in `GET /cluster`. */
export interface Eligibility {
  readonly eligible: boolean;
  readonly reason: string;
}

/** What the cluster's config says about candidates; the replication side adds its mode and sync count. */
export interface ClusterLimits {
  /** How many members the cluster has (`cluster.size`). */
  readonly members: number;
  /** async: how far behind the most advanced answering member a candidate may be (`cluster.maxLagBytes`). */
  readonly maxLagBytes: number;
}

export interface ClusterMemberSource {
  /** This member's state now. Called about once a second; must be cheap and must not throw. */
  state(): ClusterMemberState;
  /**
   * Whether this member may become the primary, given the states of the other live members
   * (those whose keys still exist: their leases are alive). See core/cluster/eligibility.ts for
   * the rule the replication side applies, with its own mode and `syncReplicas`.
   */
  eligible(peers: readonly PeerState[], limits: ClusterLimits): Eligibility;
}

/** Token under which one plugin (replication) provides the `ClusterMemberSource`. */
export const ClusterMemberSource: InjectionToken<ClusterMemberSource> = createToken<ClusterMemberSource>('recovery-agent.ClusterMemberSource');

/** Runtime guard: true when `v` implements `ClusterMemberSource`. */
export function isClusterMemberSource(v: unknown): v is ClusterMemberSource {
  const s = v as ClusterMemberSource | null;
  return typeof s === 'object' && s !== null && typeof s.state === 'function' && typeof s.eligible === 'function';
}

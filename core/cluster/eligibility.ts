/**
 * Which member may become the primary after a failover (#15 item 1): a pure function over the
 * members' published states, so the rule is tested over tables and the replication side (which
 * provides `ClusterMemberSource.eligible`) and the docs agree on one definition.
 *
 * - **sync** (`syncReplicas` of `replicas` must hold a commit before it is acknowledged): every
 *   acknowledged commit is durable on at least `syncReplicas` replicas, so any
 *   `replicas − syncReplicas + 1` of them include at least one that holds it (pigeonhole). With
 *   that many replicas answering, the highest durable LSN among them covers every acknowledged
 *   commit, and a candidate at that LSN loses none. Fewer answering: nobody can know, and nobody
 *   is eligible — the cluster stays without a primary rather than lose an acknowledged commit
 *   (Patroni's `synchronous_mode_strict`).
 * - **async**: a candidate within `maxLagBytes` of the highest durable LSN among the answering
 *   members (the bound on what a failover may lose; `0` demands the most advanced).
 *
 * In both modes a member whose log is of an older epoch than another answering member's is not
 * eligible (its log may have forked from the newer primary's), nor is a `failed` one. When no
 * member is eligible there is no primary until one is (a replica catches up, one comes back):
 * `GET /cluster` shows every member's reason.
 */
import type { ClusterMemberState, Eligibility, PeerState } from '../contracts/ClusterMemberSource.js';

export interface CatchUpRule {
  readonly mode: 'sync' | 'async';
  /** How many replicas the cluster has (its members less the primary). */
  readonly replicas: number;
  /** sync: how many replicas hold a commit before it is acknowledged. */
  readonly syncReplicas: number;
  /** async: how far behind the most advanced answering member a candidate may be. */
  readonly maxLagBytes: number;
}

/** Why a log of `epoch` may not lead beside `peers` (one of them is of a newer epoch: it may have forked from it), or null. */
export function olderEpoch(epoch: number, peers: readonly PeerState[]): string | null {
  const newer = peers.filter((p) => p.epoch > epoch);
  return newer.length === 0 ? null : `its log is of epoch ${epoch}, older than ${newer.map((p) => `${p.member}'s ${p.epoch}`).join(', ')}`;
}

/** Whether `self` may campaign, given the other live members' states (see the module doc). */
export function catchUp(self: ClusterMemberState, peers: readonly PeerState[], rule: CatchUpRule): Eligibility {
  if (self.health === 'failed') return { eligible: false, reason: 'this member reports itself failed' };
  const older = olderEpoch(self.epoch, peers);
  if (older !== null) return { eligible: false, reason: older };
  // Peers of an older epoch still count as answering (they hold what they hold), but their LSNs
  // are positions in another history, so only same-epoch logs set the highest LSN.
  let highest = self.durableLsn;
  let holder = 'this member';
  for (const p of peers) {
    if (p.epoch === self.epoch && p.durableLsn > highest) {
      highest = p.durableLsn;
      holder = p.member;
    }
  }
  if (rule.mode === 'sync') {
    const needed = rule.replicas - rule.syncReplicas + 1;
    // The old leader, if it still answers, is not one of the replicas the pigeonhole counts.
    const answering = 1 + peers.filter((p) => p.role !== 'leader').length;
    if (answering < needed) {
      return { eligible: false, reason: `sync: ${answering} of ${rule.replicas} replicas answer, ${needed} are needed to know the last acknowledged commit` };
    }
    if (self.durableLsn < highest) return { eligible: false, reason: `sync: durable to ${self.durableLsn}, ${holder} holds ${highest}` };
    return { eligible: true, reason: `sync: holds the highest durable LSN (${highest}) of ${answering} answering replicas` };
  }
  const lag = highest - self.durableLsn;
  if (lag > rule.maxLagBytes) return { eligible: false, reason: `async: ${lag} bytes behind ${holder}, more than maxLagBytes ${rule.maxLagBytes}` };
  return { eligible: true, reason: `async: ${lag} bytes behind the most advanced member (maxLagBytes ${rule.maxLagBytes})` };
}

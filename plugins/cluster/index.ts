/**
 * The cluster layer (design: DESIGN.md; issue #15): with a `cluster:` section, this agent is a
 * member of a cluster in etcd — it publishes its state under a lease, campaigns for the leader
 * key when its replication says it is caught up, and knows by its own monotonic clock whether it
 * still leads (member.ts). Without the section it does nothing and loads no etcd client.
 *
 * Contributes the Patroni-compatible routes (`/primary`, `/replica`, `/liveness`, `/readiness`,
 * `/cluster`: routes.ts), the status section `cluster`, the metrics
 * `recovery_agent_cluster_leader`, `…_epoch` and `…_lease_remaining_seconds`, and the failure
 * `network-partition` (P1: no keepalive success for more than ttl/2 — this member has lost etcd,
 * and if it led, it stops leading at its lease deadline).
 *
 * Its replication state and eligibility come from whichever plugin provides the
 * `ClusterMemberSource` contract (replication, #15). With none, the member publishes zero LSNs and
 * every member is eligible: the election is then a plain leader lock, which the log says.
 *
 * With `ReplicationControl` (the replication plugin, for a `replication.role: member` store) the
 * election drives the store (roles.ts): promoted when this member leads, its owner granted the
 * lease deadline after each renewal, following the leader otherwise. A leader lost without a
 * switchover is a `primary-failure` (P1), healed by `cluster-failover` (failover.ts), so the
 * orchestrator records the failover's RTO; `recovery_agent_failovers_total` counts them.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClusterMemberSource as Source, ClusterMemberState } from '../../core/contracts/ClusterMemberSource.js';
import { ClusterMemberSource } from '../../core/contracts/ClusterMemberSource.js';
import { catchUp } from '../../core/cluster/eligibility.js';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import { MAX_SETTLE_MS, type FailureSink } from '../../core/contracts/Failure.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { HttpRoute, isHttpRoute } from '../../core/contracts/HttpRoute.js';
import { ReplicationControl } from '../../core/contracts/ReplicationControl.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { definePlugin, optional } from '../../core/plugin.js';
import { FailureBus, Metrics } from '../../core/tokens.js';
import { clusterSection, defaultMargin } from './configSection.js';
import { clusterPluginErrors } from './errors.js';

export const PLUGIN_ID = 'cluster';
export const NETWORK_PARTITION = 'network-partition';
/** A role change (promote, follow) gets this long; a failed one is tried again after kRoleRetryMs. */
const kRoleTimeoutMs = 30_000;
const kRoleRetryMs = 1000;
/**
 * How long a member's partition from etcd is left to settle (Failure.settlesWithinMs) before it
 * goes to the healer and, nothing healing it, to a person: the member's own answer (it stepped
 * down; it follows whoever leads once it reaches etcd, and then clears the failure) needs only
 * the network back. A partition longer than this (ten lease TTLs, at least a minute, at most the
 * bus's bound) is a network someone should look at.
 */
export function partitionSettleMs(ttlMs: number): number {
  return Math.min(MAX_SETTLE_MS, Math.max(60_000, 10 * ttlMs));
}

/** With no ClusterMemberSource: nothing replicated, so any member may lead (a leader lock). */
export function lockOnlySource(): Source {
  const state: ClusterMemberState = { epoch: 0, durableLsn: 0, appliedLsn: 0, health: 'ok', streaming: false, replicationAddress: null };
  return {
    state: () => state,
    eligible: (peers, limits) => catchUp(state, peers, { mode: 'async', replicas: limits.members - 1, syncReplicas: 1, maxLagBytes: limits.maxLagBytes }),
  };
}

export default definePlugin({
  id: PLUGIN_ID,
  contractVersion: '^1.4.0',
  config: [clusterSection],
  errorCodes: clusterPluginErrors,
  deps: { source: optional(ClusterMemberSource), control: optional(ReplicationControl), bus: FailureBus, metrics: optional(Metrics) },
  provides: [Detector, StatusSection, HttpRoute, HealingAction],
  async register(ctx, { source, control, metrics }) {
    const { config, log } = ctx;
    const c = config.cluster;
    if (c === undefined) return;
    // Loaded only here: an agent in no cluster never loads gRPC.
    const { ClusterMember, defaultMemberId } = await import('./member.js');
    const { clusterDoc, clusterRoutes } = await import('./routes.js');
    const { RoleDriver } = await import('./roles.js');
    const { FailoverWatch, PRIMARY_FAILURE, failoverAction } = await import('./failover.js');
    const { Switchover } = await import('./switchover.js');
    if (!source) log.warn('cluster: no plugin provides this member\'s replication state (ClusterMemberSource): electing a leader lock only');
    const src = source ?? lockOnlySource();
    let sink: FailureSink | null = null;
    const memberId = c.member ?? defaultMemberId();
    // One member store per agent (the replication plugin refuses more): the one the cluster drives.
    const store = control?.members()[0]?.store;
    if (control && store === undefined) log.warn('cluster: no store here has replication.role: member: the election drives no store');
    let roles: InstanceType<typeof RoleDriver> | null = null;
    let failovers: Counter | null = null;
    let failover: InstanceType<typeof FailoverWatch> | null = null;
    /**
     * The partitions this member reported, until it reaches etcd again (a lease renewed): then
     * each is over by itself — the member stepped down and follows whoever leads — and is cleared
     * rather than escalated as a failure nobody healed (every failover of a chaos run logged one).
     */
    const partitions: Array<string | undefined> = [];
    const partitionsOver = (): void => {
      for (const id of partitions.splice(0)) {
        if (id === undefined) continue;
        try {
          sink?.resolve?.(id, 'the member reaches etcd again: its lease was renewed');
        } catch {
          // Already over (resolved, or no longer known to the bus).
        }
      }
    };
    const member = new ClusterMember({
      cluster: c.name,
      member: memberId,
      etcd: c.etcd,
      ttlMs: c.ttl,
      marginMs: c.renewMargin ?? defaultMargin(c.ttl),
      pollMs: c.pollInterval,
      httpAddress: c.httpAddress ?? config.agent.http.listen,
      source: src,
      limits: { members: c.size, maxLagBytes: c.maxLagBytes },
      log,
      onPartition(evidence) {
        partitions.push(
          sink?.publish({
            kind: NETWORK_PARTITION,
            priority: 'P1',
            subject: `cluster:${c.name}`,
            evidence,
            fingerprint: `${NETWORK_PARTITION}:${c.name}:${memberId}:${Date.now()}`,
            settlesWithinMs: partitionSettleMs(c.ttl),
          }).id,
        );
      },
      onRenewed: (deadline) => {
        partitionsOver();
        roles?.renewed(deadline);
      },
      onPass() {
        roles?.reconcile();
        failover?.observe();
      },
    });
    if (control && store !== undefined) {
      roles = new RoleDriver({ control, store, memberId, view: member, timeoutMs: kRoleTimeoutMs, retryMs: kRoleRetryMs, stepAsideHoldMs: Math.max(10_000, 3 * c.ttl), log });
    }
    const switchover = new Switchover(member, src, { ttlMs: c.ttl, pollMs: c.pollInterval, log });
    failover = new FailoverWatch({
      cluster: c.name,
      view: member,
      publish: (f) => sink?.publish(f),
      onFailover(from, to) {
        failovers?.inc();
        log.warn({ from: from.member, fromEpoch: from.epoch, to: to.member, toEpoch: to.epoch }, 'cluster: failover: a new leader');
      },
      // A leader that handed over in a switchover did not fail (its record in etcd says so).
      planned: (lost) => switchover.handedOver(lost),
      log,
    });
    ctx.provide(HealingAction, failoverAction({ cluster: c.name, fetchLeader: () => member.fetchLeader() }), isHealingAction);


    ctx.provide(
      Detector,
      {
        id: ctx.id,
        kinds: [NETWORK_PARTITION, PRIMARY_FAILURE],
        start(s) {
          sink = s;
        },
        stop() {
          sink = null;
        },
      },
      isDetector,
    );
    const rolesView = roles ?? undefined;
    ctx.provide(StatusSection, { name: 'cluster', snapshot: () => clusterDoc(c.name, member, src, rolesView, switchover) }, isStatusSection);
    for (const r of clusterRoutes(c.name, member, src, rolesView, switchover)) ctx.provide(HttpRoute, r, isHttpRoute);
    if (metrics) {
      registerMetrics(metrics, member);
      failovers = new Counter({ name: 'recovery_agent_failovers_total', help: 'Leaders of this cluster lost without a planned switchover and replaced by a new one, as this member saw them', registers: [metrics] });
    }

    return {
      start() {
        log.info({ cluster: c.name, member: memberId, etcd: c.etcd, ttlMs: c.ttl }, 'cluster: joining');
        member.start();
      },
      async stop() {
        roles?.stop();
        await member.stop();
      },
    };
  },
});

interface MetricView {
  isLeader(): boolean;
  epoch(): number | null;
  leaseRemainingSeconds(): number;
}

function registerMetrics(registry: Registry, m: MetricView): void {
  new Gauge({
    name: 'recovery_agent_cluster_leader',
    help: '1 while this member leads its cluster (holds the leader key within its own lease deadline), else 0',
    registers: [registry],
    collect() {
      this.set(m.isLeader() ? 1 : 0);
    },
  });
  new Gauge({
    name: 'recovery_agent_cluster_epoch',
    help: 'The epoch (leader key create revision) this member leads or follows; absent while no leader is known',
    registers: [registry],
    collect() {
      this.reset();
      const e = m.epoch();
      if (e !== null) this.set(e);
    },
  });
  new Gauge({
    name: 'recovery_agent_cluster_lease_remaining_seconds',
    help: 'Seconds until this member\'s lease deadline by its own monotonic clock (0: no valid lease)',
    registers: [registry],
    collect() {
      this.set(m.leaseRemainingSeconds());
    },
  });
}

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
 */
import { Gauge, type Registry } from 'prom-client';
import type { ClusterMemberSource as Source, ClusterMemberState } from '../../core/contracts/ClusterMemberSource.js';
import { ClusterMemberSource } from '../../core/contracts/ClusterMemberSource.js';
import { catchUp } from '../../core/cluster/eligibility.js';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import { HttpRoute, isHttpRoute } from '../../core/contracts/HttpRoute.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { definePlugin, optional } from '../../core/plugin.js';
import { FailureBus, Metrics } from '../../core/tokens.js';
import { clusterSection, defaultMargin } from './configSection.js';
import { clusterPluginErrors } from './errors.js';

export const PLUGIN_ID = 'cluster';
export const NETWORK_PARTITION = 'network-partition';

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
  deps: { source: optional(ClusterMemberSource), bus: FailureBus, metrics: optional(Metrics) },
  provides: [Detector, StatusSection, HttpRoute],
  async register(ctx, { source, metrics }) {
    const { config, log } = ctx;
    const c = config.cluster;
    if (c === undefined) return;
    // Loaded only here: an agent in no cluster never loads gRPC.
    const { ClusterMember, defaultMemberId } = await import('./member.js');
    const { clusterDoc, clusterRoutes } = await import('./routes.js');
    const { Switchover } = await import('./switchover.js');
    if (!source) log.warn('cluster: no plugin provides this member\'s replication state (ClusterMemberSource): electing a leader lock only');
    const src = source ?? lockOnlySource();
    let sink: FailureSink | null = null;
    const memberId = c.member ?? defaultMemberId();
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
        sink?.publish({ kind: NETWORK_PARTITION, priority: 'P1', subject: `cluster:${c.name}`, evidence, fingerprint: `${NETWORK_PARTITION}:${c.name}:${memberId}:${Date.now()}` });
      },
    });

    const switchover = new Switchover(member, src, { ttlMs: c.ttl, pollMs: c.pollInterval, log });

    ctx.provide(
      Detector,
      {
        id: ctx.id,
        kinds: [NETWORK_PARTITION],
        start(s) {
          sink = s;
        },
        stop() {
          sink = null;
        },
      },
      isDetector,
    );
    ctx.provide(StatusSection, { name: 'cluster', snapshot: () => clusterDoc(c.name, member, src, switchover) }, isStatusSection);
    for (const r of clusterRoutes(c.name, member, src, switchover)) ctx.provide(HttpRoute, r, isHttpRoute);
    if (metrics) registerMetrics(metrics, member);

    return {
      start() {
        log.info({ cluster: c.name, member: memberId, etcd: c.etcd, ttlMs: c.ttl }, 'cluster: joining');
        member.start();
      },
      async stop() {
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

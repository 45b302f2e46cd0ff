/**
 * The cluster fault family of the chaos suite (issue #17, "for cluster faults, the three-node
 * cluster with etcd"): faults of the primary of a running cluster — a 3-member etcd and three
 * agents in sync mode, every link through a fault proxy (test/plugins/cluster/clusterHarness.ts)
 * — injected by test/chaos/cluster/clusterChaos.ts, which runs them back to back on one cluster.
 *
 * These kinds do not fit `FaultFamily` (one agent, one store per trial): each acts on a
 * `Cluster` and its primary, and says which answer is correct:
 *
 * - `failover`: another member is elected (a larger epoch), its writer acknowledges commits, and
 *   the surviving agents record a `primary-failure` recovered (its RTO from the old leader's
 *   last sign of life). The old primary acknowledges nothing after the new one's first commit
 *   (the checker's overlapping epochs), and rejoins as a replica once healed.
 * - `block`: the primary keeps the leader key (it still reaches etcd, so nothing may be
 *   elected), and in sync mode it acknowledges no commit no replica holds: commits block while
 *   the fault holds, and go on in the same epoch once it is healed. Failing over instead, or
 *   acknowledging meanwhile, is wrong.
 */
import { haveTool } from '../../helpers/tools.js';
import { TTL_MS, type Cluster, type Node } from '../../plugins/cluster/clusterHarness.js';
import type { SeedTarget } from './types.js';

export type ClusterAnswer =
  /** A new primary; `minHoldMs`: the fault is healed no sooner than this after the injection. */
  | { readonly type: 'failover'; readonly minHoldMs: number }
  /** No failover, no acknowledgement for `holdMs`; then healed, commits resume in the same epoch. */
  | { readonly type: 'block'; readonly holdMs: number };

export interface ClusterInjected {
  readonly what: string;
  /** Undoes the fault: heals the proxies, thaws the host, starts the dead host's agent again. */
  heal(): Promise<void>;
}

export interface ClusterFaultKind {
  readonly name: string;
  readonly description: string;
  readonly target: SeedTarget;
  readonly answer: ClusterAnswer;
  /** A failure the faulted primary itself must report (it lost etcd), besides the survivors' `primary-failure`. */
  readonly primaryReports?: string;
  inject(c: Cluster, primary: Node): Promise<ClusterInjected>;
}

export const CLUSTER_FAMILY = 'cluster';

/** Null when this machine can run the cluster kinds, else why not (then each is `unsupported`). */
export async function probeCluster(): Promise<string | null> {
  if (!haveTool('etcd')) return 'the etcd command is not installed (apt-get install -y etcd-server)';
  return null;
}

export const CLUSTER_KINDS: readonly ClusterFaultKind[] = [
  {
    name: 'primary-host-death',
    description: 'SIGKILL of the primary\'s agent and writer together; failover',
    target: 'primary-node-failure',
    answer: { type: 'failover', minHoldMs: 0 },
    async inject(_c, p) {
      await p.kill();
      return {
        what: `SIGKILL of ${p.name}'s agent and writer`,
        // The host comes back: its agent on the same store, data dir and ports (it rejoins).
        heal: async () => {
          if (!p.running) p.start();
        },
      };
    },
  },
  {
    name: 'primary-sigstop',
    description: 'SIGSTOP of the primary\'s agent and writer for 2x TTL; failover, the old writer fenced',
    target: 'primary-node-failure',
    answer: { type: 'failover', minHoldMs: 2 * TTL_MS },
    async inject(_c, p) {
      const writer = p.freeze();
      if (writer === null) throw new Error(`${p.name} has no writer running to freeze`);
      return { what: `SIGSTOP of ${p.name}'s agent and writer (pid ${writer})`, heal: async () => p.thaw(writer) };
    },
  },
  {
    name: 'primary-cut-etcd',
    description: 'the primary cut off from every etcd member (both ways); failover',
    target: 'network-partition',
    answer: { type: 'failover', minHoldMs: 0 },
    primaryReports: 'network-partition',
    async inject(_c, p) {
      for (const x of p.etcdProxies) x.cut();
      return { what: `${p.name} cut off from the ${p.etcdProxies.length} etcd members`, heal: async () => p.etcdProxies.forEach((x) => x.heal()) };
    },
  },
  {
    name: 'primary-cut-replicas',
    description: 'the primary cut off from its replicas (both ways), not from etcd; block, no failover',
    target: 'network-partition',
    answer: { type: 'block', holdMs: 2 * TTL_MS },
    async inject(_c, p) {
      p.replProxy.cut();
      return { what: `${p.name}'s replication link cut both ways`, heal: async () => p.replProxy.heal() };
    },
  },
  {
    // Asymmetric: the replicas' bytes to the primary stop (their acknowledgements, and the
    // handshake of a new connection), while the primary's WAL stream still reaches them. A
    // primary that took "sent" for "held" would acknowledge here; the correct answer is the
    // same as cut both ways — it still reaches etcd, so no failover, and no acknowledgement.
    name: 'primary-cut-asymmetric',
    description: 'replicas → primary bytes dropped, primary → replicas flowing; block, no failover',
    target: 'network-partition',
    answer: { type: 'block', holdMs: 2 * TTL_MS },
    async inject(_c, p) {
      p.replProxy.cutOneWay('to-target');
      return { what: `${p.name}'s replication link: replicas → primary dropped, primary → replicas flowing`, heal: async () => p.replProxy.heal() };
    },
  },
];

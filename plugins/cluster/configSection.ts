/**
 * The cluster plugin's config section, `cluster:` at the top level (design: DESIGN.md). Absent:
 * this agent is in no cluster. A module of its own with no import beyond zod and the config's
 * value types, so `config check` validates it without loading etcd's client.
 *
 *   cluster: { name: shop, etcd: [http://10.0.0.1:2379], ttl: 10s, size: 3 }
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';
import { duration, id, listen, size } from '../../core/config/valueTypes.js';

const ClusterSchema = z
  .strictObject({
    /** The cluster's name: its keys live under `/recovery-agent/<name>/`. */
    name: id,
    /** This member's id (default: the host name, lowercased). */
    member: id.optional(),
    /** etcd's client URLs. */
    etcd: z.array(z.string().regex(/^https?:\/\/[^/\s]+\/?$/, { error: 'expected an etcd client URL such as http://127.0.0.1:2379' })).min(1),
    /**
     * The lease's TTL, whole seconds: a primary cut off from etcd stops being one within it, and a
     * failover starts after it. Patroni's default is 30 s; 2–10 s suits a LAN.
     */
    ttl: duration.default(10_000),
    /**
     * How much earlier than etcd this member counts its lease as gone, for clock-rate
     * differences and the time between a keepalive's answer and our reading of it (default:
     * a quarter of the TTL, at most 2 s).
     */
    renewMargin: duration.optional(),
    /**
     * How many members the cluster has: in sync mode (the store's `replication.mode`) a candidate
     * needs `size − 1 − syncReplicas + 1` replicas answering to know it holds every acknowledged
     * commit (core/cluster/eligibility.ts).
     */
    size: z.number().int().min(1).max(64).default(3),
    /** In async mode, how far behind the most advanced member a candidate may be. */
    maxLagBytes: size.default(16 * 2 ** 20),
    /** The address other members and the CLI reach this agent's API at (default: agent.http.listen). */
    httpAddress: listen.optional(),
    /** How often the leader key and the members are read when the watch says nothing (watch streams can die silently). */
    pollInterval: duration.default(1000),
  })
  .superRefine((c, ctx) => {
    const issue = (path: string[], message: string, input: unknown) => ctx.addIssue({ code: 'custom', message, path, input });
    if (c.ttl < 2000 || c.ttl % 1000 !== 0) issue(['ttl'], 'expected whole seconds, at least 2s (an etcd lease TTL)', c.ttl);
    const margin = c.renewMargin ?? defaultMargin(c.ttl);
    if (margin <= 0 || margin * 2 >= c.ttl) issue(['renewMargin'], `expected a margin above 0 and under half the ttl (${c.ttl / 2} ms)`, margin);
    if (c.pollInterval < 100 || c.pollInterval > c.ttl / 2) issue(['pollInterval'], `expected from 100ms to half the ttl (${c.ttl / 2} ms)`, c.pollInterval);
  });

/** The default renew margin: a quarter of the TTL, at most 2 s. */
export function defaultMargin(ttlMs: number): number {
  return Math.min(2000, Math.floor(ttlMs / 4));
}

/** The validated `cluster:` section. */
export type ClusterConfig = z.output<typeof ClusterSchema>;

export const clusterSection = defineConfigSection({
  plugin: 'cluster',
  key: 'cluster',
  scope: 'root',
  schema: ClusterSchema.optional(),
});

declare module '../../core/config/section.js' {
  interface PluginConfigSections {
    /** Absent: the agent is in no cluster. */
    cluster?: ClusterConfig;
  }
}

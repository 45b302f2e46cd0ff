/**
 * The cluster's HTTP surface, Patroni-compatible so HAProxy and Kubernetes probes work unchanged
 * (open GETs, like Patroni's): `/primary`, `/replica` (`?lag=<bytes>`), `/liveness`,
 * `/readiness`, and `/cluster` (members, roles, epochs, lag, leader — `patronictl list`'s table,
 * which `recovery-agent cluster status` prints).
 *
 * Every answer reads the member's monotonic clock at the moment of the request: `/primary` is
 * 200 only while this member holds the leader key *and* its own lease deadline is ahead.
 */
import type { HttpRoute, HttpResponse } from '../../core/contracts/HttpRoute.js';
import type { ClusterMemberSource } from '../../core/contracts/ClusterMemberSource.js';
import { raError } from '../../core/errors.js';
import { parseSize } from '../../core/config/units.js';
import type { ClusterMember } from './member.js';
import type { RolesDoc } from './roles.js';

/** The role driver as the routes see it (absent: no member store here, the cluster is a leader lock). */
export interface RolesView {
  writable(): boolean;
  doc(): RolesDoc;
}
import type { SwitchoverRecord } from './switchover.js';
import { switchoverRoute, type SwitchoverView } from './switchoverRoute.js';

/** One row of `GET /cluster`. */
export interface ClusterRow {
  member: string;
  role: 'leader' | 'replica';
  epoch: number;
  durableLsn: number;
  appliedLsn: number;
  /** Bytes between the leader's durable LSN and this member's applied LSN; null when no leader is known. */
  lagBytes: number | null;
  health: string;
  streaming: boolean;
  httpAddress: string | null;
  replicationAddress: string | null;
  updatedAt: number | null;
}

/** The `GET /cluster` document. */
export interface ClusterDoc {
  cluster: string;
  member: string;
  leader: { member: string; epoch: number; httpAddress: string | null; replicationAddress: string | null } | null;
  self: {
    leader: boolean;
    leaseRemainingSeconds: number;
    /** The lease deadline, process.hrtime.bigint() ns (CLOCK_MONOTONIC of this host) as a decimal string; null: no lease. */
    leaseDeadline: string | null;
    eligible: boolean;
    reason: string;
    partitioned: boolean;
    /** The last changes of leadership, with their monotonic stamps (ns strings). */
    leadership: Array<{ leader: boolean; epoch: number | null; at: string; deadline: string | null; reason: string }>;
    /** This member's store as the cluster drives it: the last promote / follow, its error, the last lease grant. */
    roles?: RolesDoc;
  };
  members: ClusterRow[];
  /** The last switchover run on this member, with its steps (absent: none since the agent started). */
  switchover?: SwitchoverRecord;
}

export function clusterDoc(cluster: string, m: ClusterMember, source: ClusterMemberSource, roles?: RolesView, switchover?: SwitchoverView): ClusterDoc {
  const s = source.state();
  const leading = m.isLeader();
  const leader = m.knownLeader();
  const rows: ClusterRow[] = [
    {
      member: m.member, role: leading ? 'leader' : 'replica', epoch: leading ? m.epoch()! : s.epoch, durableLsn: s.durableLsn, appliedLsn: s.appliedLsn,
      lagBytes: null, health: s.health, streaming: s.streaming, httpAddress: m.httpAddress, replicationAddress: s.replicationAddress, updatedAt: Date.now(),
    },
    ...m.knownPeers().map((p) => ({
      member: p.member, role: p.role, epoch: p.epoch, durableLsn: p.durableLsn, appliedLsn: p.appliedLsn, lagBytes: null,
      health: p.health, streaming: p.streaming, httpAddress: p.httpAddress, replicationAddress: p.replicationAddress, updatedAt: p.updatedAt,
    })),
  ];
  const top = leader ? rows.find((r) => r.member === leader.member) : undefined;
  for (const r of rows) r.lagBytes = top ? Math.max(0, top.durableLsn - r.appliedLsn) : null;
  rows.sort((a, b) => a.member.localeCompare(b.member));
  const e = m.eligibility();
  return {
    cluster,
    member: m.member,
    leader: leader ? { member: leader.member, epoch: leader.epoch, httpAddress: leader.httpAddress, replicationAddress: leader.replicationAddress } : null,
    self: {
      leader: leading,
      leaseRemainingSeconds: round3(m.leaseRemainingSeconds()),
      leaseDeadline: m.leaseDeadline()?.toString() ?? null,
      eligible: e.eligible,
      reason: e.reason,
      partitioned: m.partitionedFromEtcd(),
      leadership: m.leadershipHistory().map((x) => ({ leader: x.leader, epoch: x.epoch, at: x.at.toString(), deadline: x.deadline?.toString() ?? null, reason: x.reason })),
      ...(roles ? { roles: roles.doc() } : {}),
    },
    members: rows,
    ...(switchover?.last() ? { switchover: switchover.last()! } : {}),
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

const ok = (body: unknown): HttpResponse => ({ status: 200, body });
const unavailable = (body: unknown): HttpResponse => ({ status: 503, body });

/**
 * The routes, for one member. With `roles`, `/primary` is 200 only once the store serves the
 * epoch this member leads (promoted here), not merely while it holds the leader key.
 */
export function clusterRoutes(cluster: string, m: ClusterMember, source: ClusterMemberSource, roles?: RolesView, switchover?: SwitchoverView): HttpRoute[] {
  const primary = (): boolean => m.isLeader() && (roles === undefined || roles.writable());
  const brief = (): Record<string, unknown> => {
    const s = source.state();
    return { cluster, member: m.member, role: m.isLeader() ? 'leader' : 'replica', epoch: m.epoch(), leaseRemainingSeconds: round3(m.leaseRemainingSeconds()), durableLsn: s.durableLsn, appliedLsn: s.appliedLsn, health: s.health };
  };
  return [
    {
      method: 'GET', path: '/primary', access: 'open',
      handler: () => (primary() ? ok(brief()) : unavailable(brief())),
    },
    {
      method: 'GET', path: '/replica', access: 'open',
      // `lag` as Patroni takes it: bytes, or a size with a unit (`16MB`, `1GiB`).
      schema: { querystring: { type: 'object', properties: { lag: { type: 'string', maxLength: 32 } } } },
      handler: (req) => {
        const body = brief();
        const s = source.state();
        if (m.isLeader() || m.leaseRemainingSeconds() === 0 || s.health === 'failed') return unavailable(body);
        // A member with a store is a replica to route reads to only while it streams from the
        // primary (an old primary not yet following, a refused or cut-off replica is not).
        if (roles !== undefined && !s.streaming) return unavailable({ ...body, reason: 'not streaming from the primary' });
        const lagParam = req.query.lag;
        if (lagParam === undefined) return ok(body);
        const bound = typeof lagParam === 'string' ? parseSize(lagParam) : undefined;
        if (bound === undefined || !Number.isSafeInteger(bound)) throw raError('RA_ERR_USAGE', `lag must be a size in bytes, e.g. 1048576 or 16MB (got ${JSON.stringify(lagParam)})`);
        const doc = clusterDoc(cluster, m, source, roles);
        const lag = doc.members.find((r) => r.member === m.member)?.lagBytes ?? null;
        const withLag = { ...body, lagBytes: lag };
        return lag !== null && lag <= bound ? ok(withLag) : unavailable(withLag);
      },
    },
    {
      method: 'GET', path: '/liveness', access: 'open',
      handler: () => (m.loopAlive() ? ok({ alive: true }) : unavailable({ alive: false })),
    },
    {
      method: 'GET', path: '/readiness', access: 'open',
      handler: () => {
        const s = source.state();
        const ready = m.isLeader() || (m.leaseRemainingSeconds() > 0 && s.streaming && s.health !== 'failed');
        return ready ? ok({ ready: true, ...brief() }) : unavailable({ ready: false, ...brief() });
      },
    },
    {
      method: 'GET', path: '/cluster', access: 'open',
      handler: () => ok(clusterDoc(cluster, m, source, roles, switchover)),
    },
    ...(switchover ? [switchoverRoute(switchover)] : []),
  ];
}

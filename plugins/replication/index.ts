/**
 * Replication, the agent's side (design: DESIGN.md). Per store with a `replication:` section:
 *
 * - `role: replica`: a ReplicaSession (replicaSession.ts) holds the replica store open through
 *   the engine face, streams the primary's log into it and applies it on the worker pool.
 * - `role: primary`: the store's owner streams (pagestore's sender); the agent writes the
 *   owner's settings, `<store>/replication.json` (primarySettings.ts), at registration — before
 *   the crash detector (registered after this plugin) starts the owner — and reads the owner's
 *   status for lag.
 *
 * Contributes a page source (`replica`: a primary's corrupt page from its lowest-lag replica,
 * pageSource.ts), `GET /replication`, the status section `replication`, the metrics
 * `recovery_agent_replication_lag_bytes{store,replica}` and `…_lag_seconds{store,replica}`, and
 * failures: `replication-refused` (P1: the primary refused this replica — auth, divergence,
 * epoch, too far behind — nothing is applied until fixed) and `replica-lagging` (P2: lag past
 * `maxLagBytes` or `maxLagMs`; published once per episode, and the episode closes by itself when
 * the lag is back under both bounds, which the status and the log say), and `replica-failed` (P1:
 * a replica store cannot be opened, its log cannot be written, or a damaged page stops its apply;
 * once per episode — that store's failure, never the plugin's: the other stores replicate on), and
 * `replica-log-cut` (P2: a damaged record in a replica's log; the log was cut there, the cut part
 * kept aside, and the primary streams the rest again).
 */
import path from 'node:path';
import { Gauge, type Registry } from 'prom-client';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import type { FailureInput, FailureSink } from '../../core/contracts/Failure.js';
import { HttpRoute, isHttpRoute } from '../../core/contracts/HttpRoute.js';
import { PageSource, isPageSource } from '../../core/contracts/PageSource.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { describeError, raError } from '../../core/errors.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { ProcessGate, isProcessGate } from '../../core/contracts/ProcessGate.js';
import { ReplicationControl, isReplicationControl } from '../../core/contracts/ReplicationControl.js';
import { ClusterMemberSource, isClusterMemberSource } from '../../core/contracts/ClusterMemberSource.js';
import { memberSource } from './clusterSource.js';
import { FailureBus, Metrics, WorkerPool } from '../../core/tokens.js';
import { replicationSection, type PrimaryConfig, type ReplicaConfig } from './configSection.js';
import { MemberStore } from './memberStore.js';
import { replicaRepairAction } from './replicaHealing.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { replicationPluginErrors } from './errors.js';
import { primarySettings, writePrimarySettings } from './primarySettings.js';
import { replicaPageSource } from './pageSource.js';
import { PrimaryWatch } from './primaryWatch.js';
import { ReplicaSession } from './replicaSession.js';
import { readSecret } from './secret.js';

export const PLUGIN_ID = 'replication';
export const REPLICATION_REFUSED = 'replication-refused';
export const REPLICA_LAGGING = 'replica-lagging';
export const REPLICA_FAILED = 'replica-failed';
export const REPLICA_LOG_CUT = 'replica-log-cut';
const kLagCheckMs = 1000;
/**
 * How long a refusal the replica session answers itself (a deposed primary's diverged log moved
 * aside and the store made again from a base copy, or `autoReinit`) may take before it goes to the
 * healer and, nothing healing it, to a person: the whole copy of a large store over the network.
 */
export const REBUILD_SETTLE_MS = 10 * 60_000;

/**
 * The `replication-refused` failure of a store. A refusal the session answers itself by a rebuild
 * is left to settle (Failure.settlesWithinMs): it is cleared when the replica streams again, and
 * pages nobody unless the rebuild does not work. Each failover paged a human for the old
 * primary's refusal while it rejoined by itself.
 */
export function refusalFailure(storeId: string, code: string, reason: string, rebuild: { why: 'diverged' | 'replaced' } | undefined, primary?: string): FailureInput {
  return {
    kind: REPLICATION_REFUSED,
    priority: 'P1',
    subject: `store:${storeId}`,
    evidence: {
      store: storeId,
      ...(primary !== undefined ? { primary } : {}),
      code,
      reason,
      ...(rebuild ? { answer: rebuild.why === 'diverged' ? 'the diverged store is moved aside (kept) and made again from a base copy of the primary' : 'the store is moved aside (kept) and made again from a base copy of the primary (autoReinit)' } : {}),
    },
    ...(rebuild ? { settlesWithinMs: REBUILD_SETTLE_MS } : {}),
  };
}

/** One replica's lag, as the API and the metrics show it. */
export interface ReplicaLag {
  replica: string;
  lagBytes: number | null;
  lagMs: number | null;
}

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

export default definePlugin({
  id: PLUGIN_ID,
  contractVersion: '^1.0.0',
  config: [replicationSection],
  errorCodes: replicationPluginErrors,
  deps: { engines: many(StorageEngine), bus: FailureBus, pool: optional(WorkerPool), metrics: optional(Metrics) },
  provides: [Detector, StatusSection, HttpRoute, PageSource, ProcessGate, ReplicationControl, HealingAction, ClusterMemberSource],
  async register(ctx, { engines, bus, pool, metrics }) {
    const { config, log } = ctx;
    void bus;
    const replicated = config.stores.filter((s) => s.replication !== undefined);
    const { usable, skipped } = storesWithPageEngines(engines, replicated);
    for (const { store: s, reason } of skipped) log.warn({ store: s.id }, `store not replicated: ${reason}`);

    let sink: FailureSink | null = null;
    /** Failures of replica stores found before the detector starts (a store that cannot open at start) wait for it. */
    const early: Array<Parameters<FailureSink['publish']>[0]> = [];
    const publish = (f: Parameters<FailureSink['publish']>[0]): void => {
      if (sink) sink.publish(f);
      else early.push(f);
    };
    const sessions = new Map<string, ReplicaSession>();
    const primaries = new Map<string, PrimaryWatch>();
    /** Cluster members (#15): their role is the cluster plugin's to set, through ReplicationControl. */
    const members = new Map<string, MemberStore>();
    const gateListeners = new Set<() => void>();
    const roleChanged = () => {
      for (const l of gateListeners) l();
    };
    /** Lagging episodes open, by `store/replica`. */
    const lagging = new Map<string, { since: number }>();
    const limits = new Map<string, { maxLagBytes: number; maxLagMs: number }>();

    /**
     * The refusal each store reported last. One that streams again (an old primary rejoined
     * after its rebuild, a secret fixed) clears it: over by itself, not escalated as a failure
     * nobody healed (every failover of a chaos run logged one such escalation).
     */
    const refusedOf = new Map<string, string | undefined>();
    const refusalOver = (storeId: string): void => {
      const id = refusedOf.get(storeId);
      refusedOf.delete(storeId);
      if (id === undefined) return;
      try {
        sink?.resolve?.(id, 'the replica streams from its primary again');
      } catch {
        // Already over (resolved, or no longer known to the bus): nothing to clear.
      }
    };

    for (const s of usable) {
      const r = s.replication!;
      const secret = readSecret(s.id, r);
      limits.set(s.id, { maxLagBytes: r.maxLagBytes, maxLagMs: r.maxLagMs });
      if (r.role === 'member') {
        members.set(
          s.id,
          new MemberStore({
            storeId: s.id,
            dir: s.path,
            engine: s.pageEngine,
            cfg: r,
            secret,
            pool,
            log,
            onRoleChange: roleChanged,
            onRefused(code, reason, rebuild) {
              refusedOf.set(s.id, sink?.publish(refusalFailure(s.id, code, reason, rebuild)).id);
            },
            onStreaming: () => refusalOver(s.id),
          }),
        );
      } else if (r.role === 'primary') {
        // Before the owner starts (the crash detector registers after this plugin): a sync
        // store must never acknowledge a commit its replicas do not have.
        const file = await writePrimarySettings(s.path, primarySettings(r, secret));
        log.info({ store: s.id, file, listen: r.listen, mode: r.mode }, 'primary replication settings written');
        const pc: PrimaryConfig = r;
        primaries.set(s.id, new PrimaryWatch({ storeId: s.id, dir: s.path, engine: s.pageEngine, listen: pc.listen, mode: pc.mode, log }));
      } else {
        const rc: ReplicaConfig = r;
        const { host, port } = hostPort(rc.primary);
        sessions.set(
          s.id,
          new ReplicaSession({
            storeId: s.id,
            dir: s.path,
            engine: s.pageEngine,
            host,
            port,
            secret,
            id: rc.id ?? s.id,
            autoReinit: rc.autoReinit,
            pool,
            log,
            onRefused(code, reason, rebuild) {
              refusedOf.set(s.id, sink?.publish(refusalFailure(s.id, code, reason, rebuild, rc.primary)).id);
            },
            onStreaming: () => refusalOver(s.id),
            onLogCut(cut) {
              publish({ kind: REPLICA_LOG_CUT, priority: 'P2', subject: `store:${s.id}`, evidence: { store: s.id, ...cut } });
            },
            onFailed(code, reason) {
              publish({ kind: REPLICA_FAILED, priority: 'P1', subject: `store:${s.id}`, evidence: { store: s.id, primary: rc.primary, code, reason } });
            },
          }),
        );
      }
    }

    /** Per store: its role and state, for the API and the status section. */
    const snapshot = (): Record<string, unknown> => {
      const out: Record<string, unknown> = {};
      for (const [id, sess] of sessions) out[id] = { ...sess.status(), lagging: lagging.has(`${id}/${sess.status().id}`) };
      for (const [id, w] of primaries) {
        const st = w.status();
        out[id] = { ...st, replicas: st.replicas.map((x) => ({ ...x, lagging: measured(x) && lagging.has(`${id}/${x.id}`) })) };
      }
      for (const [id, m] of members) out[id] = m.status();
      return out;
    };

    /**
     * A primary's replica with a position of its own: connected and past its hello. Gone sessions
     * (the owner lists its last few as history, frozen where they stopped), handshakes and base
     * copies are never in the lags, the metrics nor the lag check: a replica that reconnected
     * would otherwise have its old session's frozen lag reported beside its live one. Nor is a
     * session before its replica's first ack: its applied position is not known yet (the owner
     * shows 0, a lag of the whole log).
     */
    const connected = (state: string): boolean => state === 'streaming' || state === 'catching-up';
    const measured = (x: { state: string; lastAckAt: number | null }): boolean => connected(x.state) && x.lastAckAt !== null;

    const lags = (): Array<{ store: string } & ReplicaLag> => {
      const out: Array<{ store: string } & ReplicaLag> = [];
      for (const [id, sess] of sessions) {
        const st = sess.status();
        out.push({ store: id, replica: st.id, lagBytes: st.lagBytes, lagMs: st.lagMs });
      }
      for (const [id, w] of primaries) {
        for (const x of w.status().replicas) if (measured(x)) out.push({ store: id, replica: x.id, lagBytes: x.lagBytes, lagMs: x.lagMs });
      }
      return out;
    };

    /** Opens and closes `replica-lagging` episodes. */
    const checkLag = (): void => {
      for (const l of lags()) {
        const lim = limits.get(l.store)!;
        const key = `${l.store}/${l.replica}`;
        const over = (l.lagBytes ?? 0) > lim.maxLagBytes || (l.lagMs ?? 0) > lim.maxLagMs;
        if (over && !lagging.has(key)) {
          lagging.set(key, { since: Date.now() });
          log.warn({ store: l.store, replica: l.replica, lagBytes: l.lagBytes, lagMs: l.lagMs }, 'replica lagging');
          sink?.publish({ kind: REPLICA_LAGGING, priority: 'P2', subject: `store:${l.store}`, evidence: { store: l.store, replica: l.replica, lagBytes: l.lagBytes, lagMs: l.lagMs, ...lim }, fingerprint: `${REPLICA_LAGGING}:${key}:${Date.now()}` });
        } else if (!over && lagging.has(key)) {
          lagging.delete(key);
          log.info({ store: l.store, replica: l.replica }, 'replica no longer lagging');
        }
      }
    };

    let lagTimer: NodeJS.Timeout | null = null;
    const detector: Detector = {
      id: ctx.id,
      kinds: [REPLICATION_REFUSED, REPLICA_LAGGING, REPLICA_FAILED, REPLICA_LOG_CUT],
      start(s) {
        sink = s;
        for (const f of early.splice(0)) s.publish(f);
        if (lagTimer) return;
        lagTimer = setInterval(checkLag, kLagCheckMs);
        lagTimer.unref();
      },
      stop() {
        if (lagTimer) clearInterval(lagTimer);
        lagTimer = null;
      },
    };

    ctx.provide(Detector, detector, isDetector);
    // No section where no store is replicated: the status (and the dashboard's replication panel)
    // shows replication only where it exists.
    if (replicated.length > 0) ctx.provide(StatusSection, { name: 'replication', snapshot }, isStatusSection);
    ctx.provide(
      HttpRoute,
      {
        method: 'GET',
        path: '/replication',
        access: 'read',
        handler: () => ({ status: 200, body: { stores: snapshot() } }),
      },
      isHttpRoute,
    );
    if (metrics) registerMetrics(metrics, lags);
    // The application of a store that is not the primary here does not run (a static replica, or
    // a member the cluster has not made the primary).
    const replicaIds = new Set(usable.filter((s) => s.replication!.role === 'replica').map((s) => s.id));
    ctx.provide(
      ProcessGate,
      {
        id: 'replication',
        hold: (p) => {
          if (p.store === undefined) return null;
          if (replicaIds.has(p.store)) return `store ${p.store} is a replica on this host`;
          return members.get(p.store)?.holds() ?? null;
        },
        subscribe(listener) {
          gateListeners.add(listener);
          return () => gateListeners.delete(listener);
        },
      },
      isProcessGate,
    );
    // A replica's corrupt page comes back from its primary (replicaHealing.ts).
    ctx.provide(HealingAction, replicaRepairAction((storeId) => sessions.get(storeId) ?? members.get(storeId)?.replicaPages()), isHealingAction);
    const member = (store: string): MemberStore => {
      const m = members.get(store);
      if (!m) throw raError('RA_ERR_REPL_PROMOTE', `store ${JSON.stringify(store)} is not a cluster member here (replication.role: member)`);
      return m;
    };
    ctx.provide(
      ReplicationControl,
      {
        members: () => [...members.values()].map((m) => m.state()),
        promote: (store, epoch, o) => member(store).promote(epoch, o?.timeoutMs, o?.signal),
        follow: (store, address, epoch, o) => member(store).follow(address, epoch, o?.timeoutMs, o?.signal, o?.replicaId),
        grantLease: (store, epoch, untilNs) => member(store).grantLease(epoch, untilNs),
      },
      isReplicationControl,
    );
    // The election's view of this member (the cluster plugin's optional dependency).
    const theMember = [...members.values()][0];
    if (theMember) ctx.provide(ClusterMemberSource, memberSource(theMember), isClusterMemberSource);
    // Corrupt pages of a primary come back from its lowest-lag replica (pageSource.ts).
    const primaryPaths = new Set(usable.filter((s) => s.replication!.role === 'primary').map((s) => path.resolve(s.path)));
    ctx.provide(PageSource, replicaPageSource((store) => primaries.has(store.id) || members.get(store.id)?.role === "primary" || primaryPaths.has(path.resolve(store.path))), isPageSource);

    return {
      async start() {
        for (const w of primaries.values()) w.start();
        for (const [id, m] of members) {
          try {
            await m.start();
          } catch (err) {
            log.error({ store: id, err: describeError(err) }, 'cannot open the member store');
            throw err;
          }
        }
        // A replica store that cannot be opened is its own failure (state `failed`, replica-failed,
        // tried again with backoff): ReplicaSession.start does not throw for it.
        for (const sess of sessions.values()) await sess.start();
      },
      async stop() {
        for (const w of primaries.values()) w.stop();
        await Promise.all([...sessions.values()].map((s) => s.stop()));
        await Promise.all([...members.values()].map((m) => m.stop()));
      },
    };
  },
});

function registerMetrics(registry: Registry, lags: () => Array<{ store: string } & ReplicaLag>): void {
  new Gauge({
    name: 'recovery_agent_replication_lag_bytes',
    help: 'Bytes of log flushed on the primary and not yet applied on the replica',
    labelNames: ['store', 'replica'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const l of lags()) if (l.lagBytes !== null) this.set({ store: l.store, replica: l.replica }, l.lagBytes);
    },
  });
  new Gauge({
    name: 'recovery_agent_replication_lag_seconds',
    help: 'How long ago the oldest record not yet applied on the replica was flushed on the primary',
    labelNames: ['store', 'replica'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const l of lags()) if (l.lagMs !== null) this.set({ store: l.store, replica: l.replica }, l.lagMs / 1000);
    },
  });
}

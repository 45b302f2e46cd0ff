/**
 * Cluster trials of the chaos suite (issue #17): one cluster — a 3-member etcd and three agents
 * in sync mode, each supervising the fault writer, every link through a fault proxy
 * (test/plugins/cluster/clusterHarness.ts) — started once per run (starting is slow) and taken
 * through the cluster kinds (faults/cluster.ts) back to back, settled between trials: every
 * proxy healed, every host up, one primary acknowledging, the other two streaming replicas.
 *
 * Per trial: the fault on the current primary; the answer awaited — for `failover` kinds a new
 * primary and its first acknowledged commit (the harness's RTO, as `bench:failover` measures it)
 * and the survivors' recorded `primary-failure` recovery (the agent's RTO); for `block` kinds no
 * acknowledgement and no election while the fault holds, then commits again in the same epoch
 * after the heal — and the whole history checked by the failover checker (failoverChecker.ts: no
 * acknowledged commit missing where a store opened, no overlapping epochs). The result is a
 * `TrialResult` like the single-host trials', so `summary.ts` reports both alike; the pages of
 * every member's store are verified once, when the run closes the cluster.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError } from '../../../core/errors.js';
import type { RecoveryRecord } from '../../../core/orchestrator/journal.js';
import { escalatedNow } from '../../../core/orchestrator/stats.js';
import type { RecordedFailure as Failure } from '../../../core/orchestrator/orchestrator.js';
import { readControl } from '../../../plugins/pagestore/control.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { dataFileOf } from '../../../plugins/pagestore/storeFiles.js';
import { Prng } from '../../crash/pattern.js';
import { Cluster, TTL_MS, now, type Node } from '../../plugins/cluster/clusterHarness.js';
import { CLUSTER_FAMILY, type ClusterFaultKind, type ClusterInjected } from '../faults/cluster.js';
import { SEED_TARGETS } from '../faults/types.js';
import { mostUrgent, RTO_TOLERANCE, replayCommand, trialSeed, type TrialResult } from '../harness.js';

/**
 * How far the agent's end of a failover may be from the harness's: `RTO_TOLERANCE` plus the
 * failover action's own poll (100 ms) and its `/primary` request to the new leader, and the
 * harness's poll of three members' `/primary` and `/cluster`.
 */
export const CLUSTER_RTO_TOLERANCE = { fixedMs: RTO_TOLERANCE.fixedMs + 350, relative: RTO_TOLERANCE.relative } as const;
/** Commits the primary's replication may still acknowledge after a cut (a replica's answer already on its way). */
const kBlockGraceMs = 500;

const ms = (ns: bigint): number => Math.round(Number(ns) / 1e6);

export interface ClusterTrialOptions {
  seed: number;
  trial: number;
  kind: ClusterFaultKind;
  /** How long to wait for each step of the answer (a new primary, its commits, the recorded recovery, the rejoin). */
  recoveryTimeoutMs: number;
  log?: (line: string) => void;
}

interface Seen {
  failures: Set<string>;
  recoveries: Set<string>;
}

async function journal(n: Node): Promise<{ failures: Failure[]; recoveries: RecoveryRecord[] } | null> {
  const [f, r] = await Promise.all([n.get('/failures?limit=500'), n.get('/recoveries?limit=500')]);
  if (f?.status !== 200 || r?.status !== 200) return null;
  return { failures: (f.body as { failures: Failure[] }).failures, recoveries: (r.body as { recoveries: RecoveryRecord[] }).recoveries };
}

export class ClusterChaos {
  /** Trials that failed: the cluster's directory is kept at close. */
  private failedTrials = 0;
  /** Agents that ended without the harness killing them (crashes), by node name. */
  private readonly crashes: string[] = [];

  /**
   * Stalls of the harness's own thread since the last trial ended: its fault proxies carry every
   * member's etcd and replication links, so a stall of half the lease TTL cuts them all at once
   * (an election nobody injected). A failed trial names the longest.
   */
  private readonly stalls = monitorEventLoopDelay({ resolution: 20 });

  private constructor(readonly cluster: Cluster) {
    this.stalls.enable();
  }

  /** Starts the cluster and waits until it has a primary acknowledging and two streaming replicas. */
  static async start(): Promise<ClusterChaos> {
    const cluster = await Cluster.start({ etcdMembers: 3 });
    const chaos = new ClusterChaos(cluster);
    try {
      await chaos.settle(60_000);
    } catch (err) {
      await cluster.close();
      throw err;
    }
    return chaos;
  }

  get dir(): string {
    return this.cluster.dir;
  }

  /**
   * Heals whatever a trial left (proxies, a frozen or dead host — a dead agent the harness did not
   * kill is a crash, counted), and waits for one primary acknowledging and the others streaming.
   * The cluster may elect again meanwhile (nothing is injected, but an election between trials is
   * no fault of the agents: seed 9's primary-cut-etcd trial 40 waited 45 s for commits from a
   * primary that had lost its lease to a stall of the harness's own thread, which carries every
   * etcd link): then it settles on the new primary. `say` is told of each such election.
   */
  async settle(ms = 45_000, say?: (line: string) => void): Promise<{ primary: Node; epoch: number }> {
    const c = this.cluster;
    for (const n of c.nodes) {
      n.replProxy.heal();
      for (const x of n.etcdProxies) x.heal();
      n.thaw(n.writerPid());
      if (!n.running) {
        if (n.child !== null && !this.killed.has(n)) this.crashes.push(`${n.name}'s agent ended with ${n.child.signalCode ?? `exit code ${n.child.exitCode}`}`);
        n.start();
      }
    }
    this.killed.clear();
    const deadline = Date.now() + ms;
    const { node: primary, epoch } = await c.steadyPrimary(5, ms, { onElection: (l) => say?.(`settling: ${l}; settling on it`) });
    for (const n of c.nodes) if (n !== primary) await c.replicaAgain(n, Math.max(1, deadline - Date.now()));
    return { primary, epoch };
  }

  /** The history's check at the end of the last trial. */
  private lastCheck: ReturnType<Cluster['check']> | null = null;

  /** Nodes a fault killed on purpose (host death): not crashes. */
  private readonly killed = new Set<Node>();

  private async seen(): Promise<Map<Node, Seen>> {
    const out = new Map<Node, Seen>();
    for (const n of this.cluster.nodes) {
      const j = await journal(n);
      out.set(n, { failures: new Set(j?.failures.map((f) => f.id) ?? []), recoveries: new Set(j?.recoveries.map((x) => x.id) ?? []) });
    }
    return out;
  }

  /** What `n` reported since `before`: its new failures and recoveries. */
  private async news(n: Node, before: Map<Node, Seen>): Promise<{ failures: Failure[]; recoveries: RecoveryRecord[] }> {
    const j = await journal(n);
    const b = before.get(n);
    return {
      failures: (j?.failures ?? []).filter((f) => !b?.failures.has(f.id)),
      recoveries: (j?.recoveries ?? []).filter((x) => !b?.recoveries.has(x.id)),
    };
  }

  async trial(o: ClusterTrialOptions): Promise<TrialResult> {
    const say = o.log ?? (() => undefined);
    const begun = Date.now();
    const log = (line: string): void => say(`[${((Date.now() - begun) / 1000).toFixed(2)} s] ${line}`);
    const c = this.cluster;
    const kind = o.kind;
    const r: TrialResult = {
      kind: kind.name, family: CLUSTER_FAMILY, seed: o.seed, trial: o.trial, replay: `${replayCommand(o.seed, o.trial, kind.name)} --cluster`,
      status: 'failed', injected: null, detectionMs: null, agentRtoMs: null, harnessRtoMs: null, harnessSpanMs: null, healToCommitMs: null, rtoAgrees: null,
      targetMs: SEED_TARGETS[kind.target].ms, priority: null, outcome: null, failures: [], escalations: 0, acked: 0, ackedLost: 0,
      // The stores' pages are verified when the run closes the cluster (`close`), not per trial.
      pagesVerified: false, snapshotsVerified: false,
      agentCrashes: 0, violations: [], problems: [], dir: c.dir, wallMs: 0,
    };
    const crashesBefore = this.crashes.length;
    // The last trial's final check is this one's start: the check walks the whole history on the
    // harness's thread, and two back to back stalled it (see settle).
    const before = this.lastCheck ?? c.check();
    const acksBefore = before.acks;
    let injected: ClusterInjected | null = null;
    let healed = false;
    const heal = async (): Promise<void> => {
      if (injected && !healed) {
        healed = true;
        await injected.heal();
      }
    };
    try {
      const { primary: p, epoch } = await this.settle(undefined, log);
      const others = c.nodes.filter((n) => n !== p);
      const rng = new Prng(trialSeed(o.seed, o.trial));
      await sleep(rng.int(100, 800));
      const seen = await this.seen();
      const faultWall = Date.now();
      const t0 = now();
      injected = await kind.inject(c, p);
      if (kind.name === 'primary-host-death') this.killed.add(p);
      r.injected = injected.what;
      log(`trial ${o.trial} ${kind.name}: ${injected.what} (primary ${p.name}, epoch ${epoch})`);

      if (kind.answer.type === 'failover') {
        const next = await c.newPrimary(`a new primary after ${kind.name}`, o.recoveryTimeoutMs, { among: others, after: epoch });
        const primarySeenMs = ms(now() - t0);
        const firstAck = await c.acksAfter(next.node, next.epoch, t0, 1, o.recoveryTimeoutMs);
        r.harnessRtoMs = ms(firstAck - t0);
        log(`${next.node.name} primary of epoch ${next.epoch} seen after ${primarySeenMs} ms, first commit after ${r.harnessRtoMs} ms`);
        // The survivors' journal: the new primary's `primary-failure`, recovered.
        const end = Date.now() + o.recoveryTimeoutMs;
        let rec: RecoveryRecord | undefined;
        let failure: Failure | undefined;
        while (Date.now() < end) {
          const n = await this.news(next.node, seen);
          failure = n.failures.find((f) => f.kind === 'primary-failure');
          rec = n.recoveries.find((x) => x.kind === 'primary-failure' && (failure === undefined || x.failureId === failure.id));
          if (rec) break;
          await sleep(100);
        }
        const wait = Math.max(0, kind.answer.minHoldMs - ms(now() - t0));
        if (wait > 0) await sleep(wait);
        await heal();
        const healedAt = now();
        log('healed');
        if (!failure) r.problems.push(`not detected: ${next.node.name} (the new primary) reported no primary-failure within ${o.recoveryTimeoutMs / 1000} s`);
        else {
          r.detectionMs = failure.detectedAt - faultWall;
          if (!rec) r.problems.push(`primary-failure detected ${r.detectionMs} ms after the fault, but no recovery recorded within ${o.recoveryTimeoutMs / 1000} s`);
          else {
            r.outcome = rec.outcome;
            r.agentRtoMs = rec.rtoMs;
            if (rec.outcome !== 'recovered') r.problems.push(`recovery of primary-failure: ${rec.outcome}${rec.escalated ? ', escalated' : ''}${rec.reason ? `: ${rec.reason}` : ''}`);
            // The agent counts from the old leader's last sign of life (before the fault); its end
            // of the failover (start + RTO, wall clock of the same host) against the harness's
            // fault → the new primary's /primary 200 seen.
            const startedAt = rec.occurredAt ?? rec.detectedAt;
            const agentEndMs = startedAt + rec.rtoMs - faultWall;
            r.harnessSpanMs = primarySeenMs;
            const tol = CLUSTER_RTO_TOLERANCE.fixedMs + CLUSTER_RTO_TOLERANCE.relative * rec.rtoMs;
            r.rtoAgrees = startedAt <= faultWall + CLUSTER_RTO_TOLERANCE.fixedMs && Math.abs(agentEndMs - primarySeenMs) <= tol;
            if (!r.rtoAgrees) r.problems.push(`the agent's RTO ${rec.rtoMs} ms from ${startedAt - faultWall} ms after the fault ends ${agentEndMs} ms after it; the harness saw the new primary ${primarySeenMs} ms after it (tolerance ${Math.round(tol)} ms)`);
          }
        }
        if (kind.primaryReports) {
          const own = (await this.news(p, seen)).failures.filter((f) => f.kind === kind.primaryReports);
          if (own.length === 0) r.problems.push(`${p.name} (the faulted primary) reported no ${kind.primaryReports}`);
        }
        // The old primary acknowledges nothing in its epoch once healed, and rejoins as a replica.
        await c.replicaAgain(p, o.recoveryTimeoutMs);
        const late = c.runs().filter((x) => x.node === p.name).flatMap((x) => x.acks).filter((a) => a.epoch === epoch && a.ns >= healedAt).length;
        if (late > 0) r.violations.push(`${p.name} acknowledged ${late} commit(s) in its old epoch ${epoch} after the heal`);
        await c.acksAfter(next.node, next.epoch, now(), 5, o.recoveryTimeoutMs);
      } else {
        await sleep(kBlockGraceMs);
        const blockedFrom = now();
        await sleep(Math.max(0, kind.answer.holdMs - kBlockGraceMs));
        const acked = c.runs().flatMap((x) => x.acks).filter((a) => a.ns >= blockedFrom);
        if (acked.length > 0) r.violations.push(`${acked.length} commit(s) acknowledged (by ${[...new Set(acked.map((a) => `${a.node}@${a.epoch}`))].join(', ')}) while no replica could hold them`);
        const primaries = (await c.primaries()).map((n) => n.name);
        const epochNow = (await p.cluster())?.leader?.epoch;
        if (primaries.join() !== p.name || epochNow !== epoch) r.problems.push(`failed over while the primary still reached etcd: primaries [${primaries.join(', ')}], epoch ${epochNow} (was ${p.name} at ${epoch})`);
        const healedAt = now();
        await heal();
        log('healed');
        const first = await c.acksAfter(p, epoch, healedAt, 1, o.recoveryTimeoutMs);
        r.healToCommitMs = ms(first - healedAt);
        // The RTO of a fault whose right answer is to wait: from the heal to commits again.
        r.harnessRtoMs = r.healToCommitMs;
        r.outcome = 'recovered';
        for (const n of others) await c.replicaAgain(n, o.recoveryTimeoutMs);
        await c.acksAfter(p, epoch, now(), 5, o.recoveryTimeoutMs);
      }
      // Every failure reported meanwhile, by any member.
      for (const n of c.nodes) {
        const news = await this.news(n, seen);
        r.failures.push(...news.failures.map((f) => `${n.name}: ${f.kind} ${f.subject}${f.state === 'cleared' ? ' (cleared)' : ''}`));
        r.priority = mostUrgent([r.priority, ...news.failures.map((f) => f.priority)]);
        // Once per failure, whichever attempt escalated it (as the single-host trials count).
        const escalated = news.recoveries.filter((x) => escalatedNow(x));
        r.escalations += escalated.length;
        r.failures.push(...escalated.map((x) => `${n.name}: ${x.kind} ${x.subject} escalated${x.reason ? `: ${x.reason.slice(0, 160)}` : ''}`));
      }
    } catch (err) {
      // A wait that timed out says each member's view and log tail (clusterHarness's explain).
      r.problems.push(`harness: ${describeError(err)}`);
    } finally {
      await heal().catch((err: unknown) => r.problems.push(`harness: healing: ${describeError(err)}`));
    }
    // The history so far: what this trial added to it.
    const after = c.check();
    this.lastCheck = after;
    r.acked = after.acks - acksBefore;
    const lost = after.lost.filter((l) => !before.lost.includes(l));
    const overlaps = after.overlaps.filter((l) => !before.overlaps.includes(l));
    r.ackedLost = lost.length;
    r.violations.push(...lost.map((l) => `an acknowledged commit is lost: ${l}`), ...overlaps.map((l) => `overlapping epochs: ${l}`));
    if (r.acked === 0) r.problems.push('no commit was acknowledged during the trial');
    for (const n of c.nodes) if (!n.running && !this.killed.has(n)) this.crashes.push(`${n.name}'s agent ended with ${n.child?.signalCode ?? `exit code ${n.child?.exitCode}`}`);
    const crashed = this.crashes.slice(crashesBefore);
    r.agentCrashes = crashed.length;
    r.problems.push(...crashed.map((x) => `agent crash: ${x}`));
    if (r.harnessRtoMs !== null && r.harnessRtoMs > r.targetMs) r.problems.push(`RTO ${r.harnessRtoMs} ms is over the seed's target for ${SEED_TARGETS[kind.target].label} (${r.targetMs} ms)`);
    const stalledMs = Math.round(this.stalls.max / 1e6);
    this.stalls.reset();
    if (stalledMs >= TTL_MS / 4) log(`the harness's thread stalled up to ${stalledMs} ms since the last trial (its proxies carry every etcd link; members call etcd lost after ${TTL_MS / 2} ms)`);
    r.status = r.violations.length === 0 && r.problems.length === 0 ? 'passed' : 'failed';
    if (r.status === 'failed') {
      this.failedTrials++;
      r.problems.push(`(context) the harness's thread stalled up to ${stalledMs} ms since the last trial`);
    }
    r.wallMs = Date.now() - begun;
    return r;
  }

  /**
   * Stops the cluster (SIGKILL: every store then opens by crash recovery), verifies every page
   * of every member's store as left, and sets each trial's `pagesVerified` (a bad page is a
   * violation of the last trial). Keeps the directory when a trial failed or `keep`.
   */
  async close(results: TrialResult[], keep = false): Promise<void> {
    this.stalls.disable();
    const c = this.cluster;
    await c.close(true);
    const bad: string[] = [];
    for (const n of c.nodes) {
      try {
        const { pageSize, pageCount } = await readControl(n.store);
        const file = readFileSync(dataFileOf(n.store));
        for (let id = 0; id < pageCount && (id + 1) * pageSize <= file.byteLength; id++) {
          const fault = verifyPage(file.subarray(id * pageSize, (id + 1) * pageSize), id);
          if (fault !== null) bad.push(`${n.name} page ${id} (${fault})`);
        }
      } catch (err) {
        bad.push(`${n.name}: ${describeError(err)}`);
      }
    }
    for (const r of results) r.pagesVerified = bad.length === 0;
    const last = results.at(-1);
    if (last && bad.length > 0) {
      last.violations.push(`as the agents left the stores, ${bad.length} page(s) fail their check: ${bad.slice(0, 5).join(', ')}`);
      last.status = 'failed';
      this.failedTrials++;
    }
    if (this.failedTrials === 0 && !keep) rmSync(c.dir, { recursive: true, force: true });
    else for (const r of results) r.dir = path.resolve(c.dir);
  }
}

/**
 * The mixed schedule of the chaos suite (issue #17, "a held-out fault schedule mixing kinds back
 * to back while the workload runs"): one agent, one store and one writer for the whole schedule
 * (`npm run chaos -- --schedule mixed --seed S`), and a seeded random sequence of fault kinds
 * injected into it one after another — each awaited as its own trial is (harness.ts `runTrial`
 * with a `session`), with no restart, no fresh store and no pause of the workload between them.
 * With `--cluster` the sequence also draws the cluster kinds, run on one cluster
 * (cluster/clusterChaos.ts) while the single agent's workload goes on.
 *
 * Checked after each fault: the agent's answer as in a single trial, no agent crash, the writer
 * committing again, and the history so far — every run of the writer the faults restarted,
 * settled by the next run's opening (history.ts `judgeRunsSoFar`). When the schedule ends: the
 * agent stopped, every page as it left them, the whole history against the recovered store, the
 * snapshots and the archive (harness.ts `checkStore`); what that finds is the last fault's row.
 *
 * Only kinds that need nothing of their own (no `prepare`, no agent extras: a tmpfs, an
 * LD_PRELOAD library, a faked clock, a memory limit) can share one agent; the others are listed
 * as left out. Kinds the agent cannot detect yet (KNOWN_GAPS) are left out unless named: the
 * damage they leave would stay in the one store for every later fault.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Prng } from '../crash/pattern.js';
import { ClusterChaos } from './cluster/clusterChaos.js';
import { CLUSTER_FAMILY, type ClusterFaultKind } from './faults/cluster.js';
import { KNOWN_GAPS } from './faults/index.js';
import type { FaultFamily, FaultKind } from './faults/types.js';
import { checkStore, newAgent, runTrial, stopAgent, trialSeed, type Session, type TrialResult } from './harness.js';
import { judgeRunsSoFar, readRecord } from './history.js';
import { CHAOS_PAGE_SIZE } from './protocol.js';

export type ScheduleKind = { family: FaultFamily; kind: FaultKind; cluster?: undefined } | { cluster: ClusterFaultKind; family?: undefined; kind?: undefined };

export interface ScheduleOptions {
  seed: number;
  /** Faults in the schedule. */
  length: number;
  /** The kinds to draw from (single-host and, with --cluster, cluster kinds). */
  kinds: readonly ScheduleKind[];
  /** Whether the kinds were named (--kinds): then KNOWN_GAPS kinds are drawn too. */
  named: boolean;
  /** Each family's probe answer (null: it can run). */
  probes: ReadonlyMap<string, string | null>;
  recoveryTimeoutMs: number;
  keep?: boolean;
  log?: (line: string) => void;
}

/** Why a single-host kind cannot share the schedule's one agent, or null. */
export function notMixable(family: FaultFamily, kind: FaultKind): string | null {
  if (family.prepare) return `${kind.name}: its family shapes the store's environment first (prepare)`;
  if (kind.agent) return `${kind.name}: it runs its own agent configuration (environment, limits, health)`;
  return null;
}

const name = (k: ScheduleKind): string => (k.cluster ? k.cluster.name : k.kind.name);

export function replaySchedule(o: { seed: number; length: number; cluster: boolean }): string {
  return `npm run chaos -- --schedule mixed --seed ${o.seed} --length ${o.length}${o.cluster ? ' --cluster' : ''}`;
}

export interface ScheduleReport {
  results: TrialResult[];
  /** Kinds not drawn, with why (cannot share one agent, a known gap, unsupported here). */
  leftOut: string[];
  order: string[];
}

export async function runSchedule(o: ScheduleOptions): Promise<ScheduleReport> {
  const say = o.log ?? (() => undefined);
  const leftOut: string[] = [];
  const pool: ScheduleKind[] = [];
  for (const k of o.kinds) {
    const why = k.cluster ? o.probes.get(CLUSTER_FAMILY) : o.probes.get(k.family.name);
    if (why) leftOut.push(`${name(k)}: unsupported: ${why}`);
    else if (!k.cluster && notMixable(k.family, k.kind)) leftOut.push(notMixable(k.family, k.kind)!);
    else if (!k.cluster && !o.named && KNOWN_GAPS.has(k.kind.name)) leftOut.push(`${k.kind.name}: no detector yet (KNOWN_GAPS), its damage would stay for every later fault`);
    else pool.push(k);
  }
  if (pool.length === 0) throw new Error(`no kind can run in a mixed schedule: ${leftOut.join('; ')}`);
  const rng = new Prng(trialSeed(o.seed, 0x5c4ed));
  const order = Array.from({ length: o.length }, () => pool[rng.int(0, pool.length - 1)]!);
  const withCluster = order.some((k) => k.cluster);
  const replay = replaySchedule({ seed: o.seed, length: o.length, cluster: o.kinds.some((k) => k.cluster) });
  say(`schedule (seed ${o.seed}): ${order.map(name).join(' → ')}`);

  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-chaos-mixed-'));
  const agent = await newAgent(dir, 64, rng.u32());
  const session: Session = { dir, paths: agent.p, agent };
  const results: TrialResult[] = [];
  const hostResults: TrialResult[] = [];
  const clusterResults: TrialResult[] = [];
  let cluster: ClusterChaos | null = null;
  const geometry = { pageCount: agent.p.pages, pageSize: CHAOS_PAGE_SIZE };
  let seenViolations = new Set<string>();
  agent.start();
  try {
    for (const [i, k] of order.entries()) {
      const log = (l: string): void => say(`  ${l}`);
      let r: TrialResult;
      if (k.cluster) {
        if (cluster === null) {
          say('  starting the cluster (3-member etcd, three agents)');
          cluster = await ClusterChaos.start();
        }
        r = await cluster.trial({ seed: o.seed, trial: i, kind: k.cluster, recoveryTimeoutMs: o.recoveryTimeoutMs, log });
        clusterResults.push(r);
      } else {
        r = await runTrial({ seed: o.seed, trial: i, family: k.family, kind: k.kind, unsupported: null, recoveryTimeoutMs: o.recoveryTimeoutMs, log, session });
        // The history so far: every writer run the faults ended, settled by the next one's opening.
        const verdict = judgeRunsSoFar(readRecord(agent.p.record), geometry);
        const fresh = verdict.violations.filter((v) => !seenViolations.has(v));
        seenViolations = new Set(verdict.violations);
        r.violations.push(...fresh);
        r.ackedLost = fresh.filter((v) => v.includes('an acknowledged commit is lost')).length;
        if (fresh.length > 0) r.status = 'failed';
        hostResults.push(r);
      }
      r.replay = `${replay}    (fault ${i} of the schedule)`;
      results.push(r);
      say(`fault ${i} ${name(k)}: ${r.status.toUpperCase()}${r.harnessRtoMs === null ? '' : ` RTO ${r.harnessRtoMs} ms (agent ${r.agentRtoMs ?? '-'} ms)`}, ${r.acked} acked${[...r.violations, ...r.problems].length ? `; ${[...r.violations, ...r.problems].slice(0, 4).join(' | ')}` : ''}`);
    }
  } finally {
    const stopped = await stopAgent(agent);
    const last = hostResults.at(-1);
    if (last) {
      if (stopped) last.problems.push(stopped);
      const crashes = agent.unexpectedExits.length - hostResults.reduce((s, r) => s + r.agentCrashes, 0);
      if (crashes > 0) {
        last.agentCrashes += crashes;
        last.problems.push(...agent.unexpectedExits.slice(-crashes).map((e) => `agent crash: ${e}`));
      }
      // The whole history, the pages as the agent left them, the snapshots: the last fault's row.
      const c = await checkStore(agent.p);
      for (const r of hostResults) {
        r.pagesVerified = c.pagesVerified;
        r.snapshotsVerified = c.snapshotsVerified;
      }
      const fresh = c.violations.filter((v) => !seenViolations.has(v));
      last.violations.push(...fresh);
      last.ackedLost += fresh.filter((v) => v.includes('an acknowledged commit is lost')).length;
      last.problems.push(...c.problems);
      if (fresh.length > 0 || c.problems.length > 0 || stopped) last.status = 'failed';
    }
    if (cluster !== null) await cluster.close(clusterResults, o.keep);
    const failed = hostResults.some((r) => r.status === 'failed');
    if (!failed && !o.keep) rmSync(dir, { recursive: true, force: true });
    for (const r of hostResults) r.dir = failed || o.keep ? dir : null;
  }
  if (!withCluster) say('  (no cluster kind drawn)');
  return { results, leftOut, order: order.map(name) };
}

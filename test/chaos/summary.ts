/**
 * Per fault kind: the trials' figures as the issue's report asks for them — detection time and
 * RTO p50/p95/p99/max against the seed's target, recoveries verified, escalations, acknowledged
 * commits lost, agent crashes — and the table printed from them.
 */
import { mostUrgent, type TrialResult } from './harness.js';

/** The goal for a P0/P1 kind: RTO p95 under 5 s (the seed asks < 2 min); other kinds: their seed target. */
export const URGENT_P95_GOAL_MS = 5000;

export interface Dist {
  n: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export interface KindSummary {
  kind: string;
  family: string;
  trials: number;
  passed: number;
  failed: number;
  unsupported: number;
  targetMs: number;
  /** The most urgent priority the agent gave this kind's failures in any trial (null: none reported). */
  priority: string | null;
  /** RTO p95 the kind must stay under: URGENT_P95_GOAL_MS for P0/P1, else the seed's target. */
  goalMs: number;
  /**
   * Every supported trial passed, RTO p95 (if the kind has one) under goalMs, 0 acknowledged
   * commits lost, 0 agent crashes; null when every trial was unsupported (not exercised: never a pass).
   */
  goalMet: boolean | null;
  /** Recovered trials whose harness-measured RTO was within the target. */
  withinTarget: number;
  detectionMs: Dist;
  /** Fault → recovered, on the harness's monotonic clock (recovered trials only). */
  rtoMs: Dist;
  /** The agent's own recorded RTO (detection → verified fix). */
  agentRtoMs: Dist;
  recoveriesVerified: number;
  rtoDisagreements: number;
  escalations: number;
  ackedCommits: number;
  ackedLost: number;
  agentCrashes: number;
  invariantViolations: number;
  /** The first problems seen, for the report. */
  problems: string[];
}

/** Nearest-rank percentiles. */
export function dist(values: readonly number[]): Dist {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number): number | null => (v.length === 0 ? null : v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)]!);
  return { n: v.length, p50: at(50), p95: at(95), p99: at(99), max: v.length ? v[v.length - 1]! : null };
}

export function summarize(results: readonly TrialResult[]): KindSummary[] {
  const kinds = [...new Set(results.map((r) => r.kind))];
  return kinds.map((kind) => {
    const rs = results.filter((r) => r.kind === kind);
    const nums = (f: (r: TrialResult) => number | null): number[] => rs.map(f).filter((x): x is number => x !== null);
    const priority = mostUrgent(rs.map((r) => r.priority ?? null));
    const goalMs = priority === 'P0' || priority === 'P1' ? URGENT_P95_GOAL_MS : rs[0]!.targetMs;
    const rtoMs = dist(nums((r) => (r.outcome === 'recovered' ? r.harnessRtoMs : null)));
    const supported = rs.filter((r) => r.status !== 'unsupported');
    const goalMet = supported.length === 0 ? null
      // A kind with nothing to recover (clock-jump: the agent must only ride it out) has no RTO.
      : supported.every((r) => r.status === 'passed' && r.ackedLost === 0 && r.agentCrashes === 0) && (rtoMs.p95 === null || rtoMs.p95 < goalMs);
    return {
      kind,
      family: rs[0]!.family,
      trials: rs.length,
      passed: rs.filter((r) => r.status === 'passed').length,
      failed: rs.filter((r) => r.status === 'failed').length,
      unsupported: rs.filter((r) => r.status === 'unsupported').length,
      targetMs: rs[0]!.targetMs,
      priority,
      goalMs,
      goalMet,
      withinTarget: rs.filter((r) => r.outcome === 'recovered' && r.harnessRtoMs !== null && r.harnessRtoMs <= r.targetMs).length,
      detectionMs: dist(nums((r) => r.detectionMs)),
      rtoMs,
      agentRtoMs: dist(nums((r) => r.agentRtoMs)),
      recoveriesVerified: rs.filter((r) => r.outcome === 'recovered' && r.pagesVerified && r.violations.length === 0).length,
      rtoDisagreements: rs.filter((r) => r.rtoAgrees === false).length,
      escalations: rs.reduce((s, r) => s + r.escalations, 0),
      ackedCommits: rs.reduce((s, r) => s + r.acked, 0),
      ackedLost: rs.reduce((s, r) => s + r.ackedLost, 0),
      agentCrashes: rs.reduce((s, r) => s + r.agentCrashes, 0),
      invariantViolations: rs.reduce((s, r) => s + r.violations.length, 0),
      problems: [...new Set(rs.flatMap((r) => r.problems))].slice(0, 5),
    };
  });
}

const s = (ms: number | null): string => (ms === null ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(0)}s` : `${(ms / 1000).toFixed(2)}s`);

/** The table: one row per kind. */
export function formatTable(rows: readonly KindSummary[]): string {
  const head = ['kind', 'prio', 'trials', 'pass', 'fail', 'unsup', 'detect p50/p95/p99/max', 'RTO p50/p95/p99/max', 'target', 'in tgt', 'goal p95', 'met', 'verified', 'esc', 'acked', 'lost', 'crash'];
  const body = rows.map((k) => [
    k.kind, k.priority ?? '-', String(k.trials), String(k.passed), String(k.failed), String(k.unsupported),
    `${s(k.detectionMs.p50)}/${s(k.detectionMs.p95)}/${s(k.detectionMs.p99)}/${s(k.detectionMs.max)}`,
    `${s(k.rtoMs.p50)}/${s(k.rtoMs.p95)}/${s(k.rtoMs.p99)}/${s(k.rtoMs.max)}`,
    s(k.targetMs), String(k.withinTarget), `<${s(k.goalMs)}`, k.goalMet === null ? '-' : k.goalMet ? 'yes' : 'NO', String(k.recoveriesVerified), String(k.escalations), String(k.ackedCommits), String(k.ackedLost), String(k.agentCrashes),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), ...body.map(line)].join('\n');
}

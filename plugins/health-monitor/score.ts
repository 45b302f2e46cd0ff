/**
 * The health score: each probe scores 0–100; probes group into components by the part of their
 * id before `:` (`disk:/var` and `disk:/srv` are both `disk`); a component scores as its worst
 * probe; the host scores as the weighted mean of its components, but never more than its worst
 * weighted component plus the weakest-link margin (default 30). So one failing part cannot hide
 * behind many good ones: a component below 50 makes the host degraded, below 20 critical.
 */

/** 80–100 healthy, 50–79 degraded, below 50 critical. */
export type HealthLevel = 'healthy' | 'degraded' | 'critical';

export const HEALTHY_FROM = 80;
export const DEGRADED_FROM = 50;

export function levelOf(score: number): HealthLevel {
  return score >= HEALTHY_FROM ? 'healthy' : score >= DEGRADED_FROM ? 'degraded' : 'critical';
}

/** How bad a level is, for comparisons: higher is worse. */
export const LEVEL_RANK: Record<HealthLevel, number> = { healthy: 0, degraded: 1, critical: 2 };

/** A reading's score on a line: `good` or better scores 100, `bad` or worse 0, linear between. */
export interface ScoreLine {
  readonly good: number;
  readonly bad: number;
}

export function lineScore(value: number, line: ScoreLine): number {
  if (!Number.isFinite(value)) return 100;
  const t = (value - line.good) / (line.bad - line.good);
  return 100 * (1 - Math.min(1, Math.max(0, t)));
}

/** The component a probe belongs to: its id up to the first `:`. */
export function componentOf(probeId: string): string {
  const i = probeId.indexOf(':');
  return i < 0 ? probeId : probeId.slice(0, i);
}

export interface ProbeScore {
  readonly id: string;
  readonly score: number;
}

export interface ComponentScore {
  readonly component: string;
  readonly score: number;
  readonly weight: number;
  /** Its probes, worst first. */
  readonly probes: readonly ProbeScore[];
}

export interface Combined {
  readonly score: number;
  readonly level: HealthLevel;
  /** Every component, worst first (weight 0 ones too: shown, not counted). */
  readonly components: readonly ComponentScore[];
}

/** Combines probe scores into the host's score. With no weighted component, the host is healthy (100). */
export function combineScores(probes: readonly ProbeScore[], weightOf: (component: string) => number, margin: number): Combined {
  const groups = new Map<string, ProbeScore[]>();
  for (const p of probes) {
    const c = componentOf(p.id);
    const list = groups.get(c) ?? [];
    list.push({ id: p.id, score: clampScore(p.score) });
    groups.set(c, list);
  }
  const components: ComponentScore[] = [...groups].map(([component, list]) => {
    list.sort((a, b) => a.score - b.score);
    return { component, score: list[0]!.score, weight: Math.max(0, weightOf(component)), probes: list };
  });
  components.sort((a, b) => a.score - b.score || a.component.localeCompare(b.component));
  const counted = components.filter((c) => c.weight > 0);
  if (counted.length === 0) return { score: 100, level: 'healthy', components };
  const weightSum = counted.reduce((a, c) => a + c.weight, 0);
  const mean = counted.reduce((a, c) => a + c.weight * c.score, 0) / weightSum;
  const score = round1(Math.min(mean, counted[0]!.score + margin));
  return { score, level: levelOf(score), components };
}

/**
 * The components to blame for a score: those below the healthy line, worst first; when none is
 * (several moderately low ones pulled the mean down), the two lowest weighted ones.
 */
export function blame(c: Combined): ComponentScore[] {
  const low = c.components.filter((x) => x.weight > 0 && x.score < HEALTHY_FROM);
  return low.length > 0 ? low : c.components.filter((x) => x.weight > 0).slice(0, 2);
}

export function clampScore(v: number): number {
  return Number.isFinite(v) ? Math.min(100, Math.max(0, v)) : 0;
}

export function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

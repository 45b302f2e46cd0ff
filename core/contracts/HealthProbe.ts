import type { InjectionToken } from 'tsyringe';

/**
 * A health probe samples one aspect of the host or a store (CPU, memory, disk, a store's WAL…)
 * and scores it. The health monitor calls every probe once per interval.
 */

/** One sample from a probe. */
export interface HealthSample {
  /** Raw readings, named with units (`mem_available_bytes`, `cpu_busy_ratio`). */
  readonly metrics: Readonly<Record<string, number>>;
  /** 0 (failing) to 100 (perfect); the monitor weighs it into the overall score. */
  readonly score: number;
}

export interface HealthProbe {
  /** Stable id, also the component name in the score (`cpu`, `memory`, `disk:/var`). */
  readonly id: string;
  /** Takes one sample. Must be cheap: it runs every interval. */
  sample(): Promise<HealthSample>;
}

/** Token under which probe plugins provide their `HealthProbe`. */
export const HealthProbe: InjectionToken<HealthProbe> = Symbol.for('recovery-agent.HealthProbe');

/** Runtime guard: true when `v` implements `HealthProbe`. */
export function isHealthProbe(v: unknown): v is HealthProbe {
  const p = v as HealthProbe | null;
  return typeof p === 'object' && p !== null && typeof p.id === 'string' && p.id.length > 0 && typeof p.sample === 'function';
}

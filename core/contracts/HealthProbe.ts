import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/**
 * A health probe samples one aspect of the host or a store (CPU, memory, disk, a store's WAL…)
 * and scores it. The health monitor calls every probe once per interval.
 */

/**
 * A resource that can run out (a filesystem's bytes, memory, …). The monitor fits a trend to
 * it and publishes a `predicted-exhaustion` failure before it runs out.
 */
export interface HealthResource {
  /** What is left, in `unit`; exhaustion is 0. */
  readonly available: number;
  /** The total, in `unit` (the guard compares available / total with its threshold). */
  readonly total: number;
  /** `bytes`, `inodes`, … */
  readonly unit: string;
  /**
   * Optional: a counter of what one consumer has used (e.g. WAL bytes since the last
   * checkpoint). Then its growth is fitted against `available`, and a drop is a reset.
   */
  readonly consumed?: number;
  /** The failure's subject (default: the resource's name). */
  readonly subject?: string;
  /** Ids of stores whose checkpoint may free this resource (for the `checkpoint-store` action). */
  readonly stores?: readonly string[];
}

/** One sample from a probe. */
export interface HealthSample {
  /** Raw readings, named with units (`mem_available_bytes`, `cpu_busy_ratio`). */
  readonly metrics: Readonly<Record<string, number>>;
  /** 0 (failing) to 100 (perfect); the monitor weighs it into the overall score. */
  readonly score: number;
  /** Optional: resources that can run out, by name (`disk:/var`, `memory`), for prediction. */
  readonly resources?: Readonly<Record<string, HealthResource>>;
  /** Optional: why the score is low, for people (`/status`): e.g. a store that cannot be opened. */
  readonly reason?: string;
}

export interface HealthProbe {
  /** Stable id, also the component name in the score (`cpu`, `memory`, `disk:/var`). */
  readonly id: string;
  /** Takes one sample. Must be cheap: it runs every interval. */
  sample(): Promise<HealthSample>;
}

/** Token under which probe plugins provide their `HealthProbe`. */
export const HealthProbe: InjectionToken<HealthProbe> = createToken<HealthProbe>('recovery-agent.HealthProbe');

/** Runtime guard: true when `v` implements `HealthProbe`. */
export function isHealthProbe(v: unknown): v is HealthProbe {
  const p = v as HealthProbe | null;
  return typeof p === 'object' && p !== null && typeof p.id === 'string' && p.id.length > 0 && typeof p.sample === 'function';
}

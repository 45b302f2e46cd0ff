import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';
import type { Failure } from './Failure.js';

/**
 * A healer turns a failure into a recovery: it picks the healing actions for it and runs them.
 * The orchestrator hands each failure, in priority order and within the concurrency limit, to
 * the healer (the SelfHealer plugin provides one), and measures the result against the RTO.
 */

/** What became of one healing action. */
export interface ActionAttempt {
  readonly action: string;
  readonly applied: boolean;
  readonly verified: boolean;
  readonly undone: boolean;
  /** Applied, but the action cannot observe whether it fixed the failure (verify said 'unobservable'). */
  readonly unobservable?: boolean;
  readonly durationMs: number;
  readonly summary?: string;
  readonly error?: string;
}

export interface HealResult {
  /** `recovered`: every step applied and verified; `applied-unverified`: every step applied, but
   *  some only by an action that cannot observe its effect; `failed`: a step had no action that
   *  applied and verified; `no-action`: nothing is configured or able to handle the failure. */
  readonly outcome: 'recovered' | 'applied-unverified' | 'failed' | 'no-action';
  readonly attempts: readonly ActionAttempt[];
  readonly reason?: string;
}

export interface Healer {
  readonly id: string;
  /** Recovers from `failure`; aborted through `signal` when the agent stops. Never throws. */
  heal(failure: Failure, signal: AbortSignal): Promise<HealResult>;
}

/** Token under which the self-healer provides itself to the orchestrator. */
export const Healer: InjectionToken<Healer> = createToken<Healer>('recovery-agent.Healer');

/** Runtime guard: true when `v` implements `Healer`. */
export function isHealer(v: unknown): v is Healer {
  const h = v as Healer | null;
  return typeof h === 'object' && h !== null && typeof h.id === 'string' && typeof h.heal === 'function';
}

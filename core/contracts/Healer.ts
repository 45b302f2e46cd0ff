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
  /**
   * A `failed` recovery whose cause may be transient (the store's disk full or not answering,
   * an I/O error): the healer asks to run it again. The orchestrator keeps the failure open as
   * `retrying` and starts the next attempt when `wait` resolves; without it, the failure stays
   * escalated. The healer applies its own cap (it is told the attempt number).
   */
  readonly retry?: RetryPlan;
}

/** When and why the next attempt of a failed recovery runs. */
export interface RetryPlan {
  /** The attempt that will run next (the first recovery is attempt 1). */
  readonly nextAttempt: number;
  /** The healer's cap: no attempt after this one. */
  readonly maxAttempts: number;
  /** What would let the next attempt succeed, for people: "free space on /srv (12 KiB free)". */
  readonly waitingFor: string;
  /** The latest time (epoch ms) the next attempt starts: the backoff. */
  readonly notAfter: number;
  /**
   * Resolves when the next attempt should start: `condition` when what blocked the recovery
   * cleared, `backoff` when `notAfter` came first. Rejects when `signal` aborts.
   */
  wait(signal: AbortSignal): Promise<'condition' | 'backoff'>;
}

/** What the orchestrator tells the healer about a recovery besides the failure. */
export interface HealContext {
  /** 1 for the first recovery of a failure, 2 for its first retry, … */
  readonly attempt: number;
}

export interface Healer {
  readonly id: string;
  /** Recovers from `failure`; aborted through `signal` when the agent stops. Never throws. */
  heal(failure: Failure, signal: AbortSignal, context?: HealContext): Promise<HealResult>;
}

/** Token under which the self-healer provides itself to the orchestrator. */
export const Healer: InjectionToken<Healer> = createToken<Healer>('recovery-agent.Healer');

/** Runtime guard: true when `v` implements `Healer`. */
export function isHealer(v: unknown): v is Healer {
  const h = v as Healer | null;
  return typeof h === 'object' && h !== null && typeof h.id === 'string' && typeof h.heal === 'function';
}

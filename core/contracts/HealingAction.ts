import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';
import type { Logger } from 'pino';
import type { Failure } from './Failure.js';

/**
 * A healing action: one step the self-healer may try against a failure. The healer calls
 * `canHandle`, then `apply`, then `verify`; when `verify` says no, it calls `undo` (if any) and
 * tries the next action of the rule.
 */

/** What an action is given besides the failure. */
export interface HealingContext {
  /** Aborted when the action's timeout passes or the agent stops; long work should honour it. */
  readonly signal: AbortSignal;
  /** The action plugin's logger, bound to the failure id. */
  readonly log: Logger;
  /** Options from the healing rule that chose this action. */
  readonly options: Readonly<Record<string, unknown>>;
}

/** What `apply` may report; it is kept in the recovery journal. */
export interface HealingOutcome {
  /** A one-line account of what was done. */
  readonly summary?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface HealingAction {
  /** Stable id, the name used in `healing.rules[].do`. */
  readonly id: string;
  /**
   * True when this action applies to the failure (kind, subject, evidence). May answer with a
   * promise (since contract 1.1.0): an isolated plugin's action is asked across threads, so
   * callers must `await` it, under a timeout.
   */
  canHandle(failure: Failure): boolean | Promise<boolean>;
  /** Does the repair. Throws when it could not. */
  apply(failure: Failure, ctx: HealingContext): Promise<HealingOutcome | void>;
  /** Checks, independently of `apply`'s own account, that the failure is gone. */
  verify(failure: Failure, ctx: HealingContext): Promise<VerifyResult>;
  /** Reverts what `apply` did, when that is possible and `verify` failed. */
  undo?(failure: Failure, ctx: HealingContext): Promise<void>;
}

/**
 * What `verify` observed: true, the failure is gone; false, it is not; `'unobservable'`, this
 * action has no way to observe its effect (a notification, a command with no check). Never
 * answer true on `apply`'s word: the recovery is then recorded as applied-unverified, not
 * recovered.
 */
export type VerifyResult = boolean | 'unobservable';

/** Token under which action plugins provide their `HealingAction`. */
export const HealingAction: InjectionToken<HealingAction> = createToken<HealingAction>('recovery-agent.HealingAction');

/** Runtime guard: true when `v` implements `HealingAction`. */
export function isHealingAction(v: unknown): v is HealingAction {
  const a = v as HealingAction | null;
  return typeof a === 'object' && a !== null && typeof a.id === 'string' && a.id.length > 0 &&
    typeof a.canHandle === 'function' && typeof a.apply === 'function' && typeof a.verify === 'function' &&
    (a.undo === undefined || typeof a.undo === 'function');
}

/**
 * Application-defined healing actions: what an application that owns a store registers on the
 * store's control socket, so the agent can heal what only the application understands (grow
 * its connection pool, drop a memo table, reload a config):
 *
 *   store.control.registerAction('expand-pool', {
 *     description: 'doubles the connection pool',
 *     apply: async (options) => { pool.resize(pool.size * 2); return { size: pool.size }; },
 *     verify: async () => pool.idle() > 0,
 *   });
 *
 * The agent lists them (control op `actions`) and runs one (`app-action`, phase `apply` or
 * `verify`) through the `app-action` healing action. Each run has a time limit here, in the
 * owner: a hanging action is answered with RA_ERR_APP_ACTION_TIMEOUT (its promise is left to
 * settle on its own; nothing can cancel it), a throwing one with RA_ERR_APP_ACTION and its
 * message, so neither blocks the socket nor takes the owner or the agent down.
 */
import { describeError, raError } from '../../core/errors.js';

/** What `apply` and `verify` are given: the healing rule's options (JSON). */
export type AppActionOptions = Readonly<Record<string, unknown>>;

export interface AppAction {
  /** One line for people (`actions` lists it). */
  readonly description?: string;
  /** Does the repair; what it returns (JSON) is kept in the agent's journal. Throws when it could not. */
  apply(options: AppActionOptions): Promise<unknown> | unknown;
  /** True when the trouble is gone, observed by the application itself. */
  verify(options: AppActionOptions): Promise<boolean> | boolean;
}

export type AppActionPhase = 'apply' | 'verify';

/** Default and largest time limit of one run, ms. */
export const APP_ACTION_DEFAULT_MS = 10_000;
export const APP_ACTION_MAX_MS = 600_000;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** The registry behind `store.control`. */
export class AppActions {
  private readonly actions = new Map<string, AppAction>();

  /** Registers (or replaces) the action `name` (letters, digits, `.`, `_`, `-`; up to 64). */
  registerAction(name: string, action: AppAction): void {
    if (!NAME.test(name)) throw raError('RA_ERR_USAGE', `an application action name must be 1–64 letters, digits, ".", "_" or "-" (got ${JSON.stringify(name)})`);
    if (typeof action?.apply !== 'function' || typeof action.verify !== 'function') throw raError('RA_ERR_USAGE', `application action "${name}" needs apply and verify functions`);
    this.actions.set(name, action);
  }

  unregisterAction(name: string): boolean {
    return this.actions.delete(name);
  }

  list(): Array<{ name: string; description: string | null }> {
    return [...this.actions].map(([name, a]) => ({ name, description: a.description ?? null }));
  }

  /** Runs one phase of `name` within `timeoutMs`; `apply` answers its result, `verify` a boolean. */
  async run(name: string, phase: AppActionPhase, options: AppActionOptions, timeoutMs = APP_ACTION_DEFAULT_MS): Promise<unknown> {
    const a = this.actions.get(name);
    if (!a) throw raError('RA_ERR_APP_ACTION', `this application registered no action "${name}" (it has: ${[...this.actions.keys()].join(', ') || 'none'})`, { details: { action: name } });
    const limit = Math.min(Math.max(1, timeoutMs), APP_ACTION_MAX_MS);
    let timer: NodeJS.Timeout | undefined;
    const work = Promise.resolve().then(() => (phase === 'apply' ? a.apply(options) : a.verify(options)));
    try {
      const r = await Promise.race([
        work,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(raError('RA_ERR_APP_ACTION_TIMEOUT', `application action "${name}" (${phase}) did not finish within ${limit} ms`, { details: { action: name, phase, timeoutMs: limit } })), limit);
        }),
      ]);
      if (phase === 'verify') return r === true;
      return r === undefined ? null : JSON.parse(JSON.stringify(r)) as unknown;
    } catch (err) {
      if (err instanceof Error && 'code' in err && err.code === 'RA_ERR_APP_ACTION_TIMEOUT') {
        work.catch(() => undefined);
        throw err;
      }
      throw raError('RA_ERR_APP_ACTION', `application action "${name}" (${phase}) failed: ${describeError(err)}`, { cause: err, details: { action: name, phase } });
    } finally {
      clearTimeout(timer);
    }
  }
}

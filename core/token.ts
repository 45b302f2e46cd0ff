/**
 * The one factory for injection tokens, core and plugin alike (VS Code's `createDecorator`):
 *
 *   export const WorkerPool = createToken<WorkerPool>('recovery-agent.WorkerPool');
 *
 * Why a factory: two tokens with one id are one token to the container (and to an isolated
 * plugin's process, where a token travels as its id), so a second `createToken` with an id
 * already made is a mistake that would make two services silently replace each other. It
 * throws RA_ERR_PLUGIN_LOAD naming both places, and the module that made the second one fails
 * to load.
 *
 * Identity across copies: the token is `Symbol.for(id)`, so two copies of this package in one
 * process (a plugin that bundles its own) make the same symbols and agree on every token, and a
 * token sent to a plugin's process by its id (`tokenId`) is the same token there. The duplicate
 * check is per copy of this module: each copy makes each of its tokens once.
 */
import type { InjectionToken } from 'tsyringe';
import { raError } from './errors.js';

/** `<namespace>.<Name>`: `recovery-agent.WorkerPool`, `crash-detector.ProcessSupervisor`. */
const ID = /^[a-z0-9][a-z0-9_-]*(\.[a-z0-9][a-z0-9_-]*)*\.[A-Za-z][A-Za-z0-9]*$/;

/** Where each id was made (the caller's source line), for the duplicate message. */
const made = new Map<string, string>();

/**
 * Makes the token `id`, once. `T` is what the container resolves it to. Throws RA_ERR_PLUGIN_LOAD
 * for a malformed id or one already made, naming where.
 */
export function createToken<T>(id: string): InjectionToken<T> {
  const here = callerSite();
  if (typeof id !== 'string' || !ID.test(id)) {
    throw raError('RA_ERR_PLUGIN_LOAD', `token id ${JSON.stringify(id)} (at ${here}) must be "<namespace>.<Name>", e.g. "recovery-agent.WorkerPool" or "acme-pager.Pager"`);
  }
  const first = made.get(id);
  if (first !== undefined) {
    throw raError('RA_ERR_PLUGIN_LOAD', `token "${id}" is made twice: first at ${first}, again at ${here}; a token id names one service, so give the second one an id of its own`, {
      details: { token: id, first, second: here },
    });
  }
  made.set(id, here);
  return Symbol.for(id);
}

/** The id of a token, for messages and for crossing to a plugin's process: `recovery-agent.WorkerPool`. */
export function tokenId(token: InjectionToken<unknown>): string {
  if (typeof token === 'symbol') return Symbol.keyFor(token) ?? token.description ?? String(token);
  if (typeof token === 'function') return token.name || '(anonymous class)';
  return String(token);
}

/**
 * The token an id names, made by `createToken` here, in another copy of this package or in a
 * plugin's process: how a token that crossed as its id becomes a token again. A look-up, not a
 * definition, so it is not checked for duplicates.
 */
export function tokenOf<T = unknown>(id: string): InjectionToken<T> & symbol {
  return Symbol.for(id);
}

/** The `file:line` of the code that called `createToken`, from the stack. */
function callerSite(): string {
  const stack = new Error().stack?.split('\n') ?? [];
  // [0] "Error", [1] callerSite, [2] createToken, [3] its caller.
  const frame = stack[3]?.trim().replace(/^at\s+/, '') ?? 'an unknown place';
  return frame.replace(/^.*\((.*)\)$/, '$1');
}

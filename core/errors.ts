/**
 * The catalogue of recovery-agent errors. Every error has a stable code (`RA_ERR_…`) that
 * scripts and tests may rely on, a message that says what was wrong, the offending value and
 * what was expected, and an optional `cause` for the error underneath.
 *
 * The core lists here the codes it raises itself and those that belong to its contracts, which
 * any plugin may raise or test for: usage and config, plugins and their isolation, the worker
 * pool, and the generic store and page codes of the StorageEngine contract (a store that is
 * locked, missing, invalid or closed; a page out of range or corrupt), which mean the same
 * whatever the engine. A plugin's own codes (the page store's WAL, the snapshots', the process
 * supervisor's) live in its `errors.ts`, defined with `defineErrorCodes`, which registers them
 * here: a code defined twice with another meaning is refused, so a code means one thing to
 * every script. The same module adds its codes to PluginErrorCodes by declaration merging,
 * which keeps `raError(code, …)` checked against every known code.
 *
 * Add a code once, to the catalogue of the part that raises it, before throwing it anywhere.
 */

/** What a code means: the exit code the CLI uses when it is the reason a command stops, and when it is raised. */
export interface ErrorCodeDefinition {
  readonly exit: number;
  readonly description: string;
}

/** The core's codes. */
export const CoreErrorCodes = {
  RA_ERR_CONFIG: { exit: 2, description: 'The config file is missing, unreadable, not YAML, or does not match the schema.' },
  RA_ERR_USAGE: { exit: 2, description: 'A command-line argument is missing or malformed.' },
  RA_ERR_PLUGIN_LOAD: { exit: 1, description: 'A plugin could not be loaded (module not found, no default export, not a plugin).' },
  RA_ERR_PLUGIN_CONTRACT: { exit: 1, description: 'A plugin targets a contract version this core does not provide.' },
  RA_ERR_PLUGIN_DUPLICATE: { exit: 1, description: 'Two plugins share an id.' },
  RA_ERR_PLUGIN_MISSING_DEPENDENCY: { exit: 1, description: 'A plugin depends on a plugin that is not registered.' },
  RA_ERR_PLUGIN_CYCLE: { exit: 1, description: 'Plugins depend on each other in a cycle.' },
  RA_ERR_PLUGIN_CONFLICT: { exit: 1, description: 'Two plugins contribute the same config section, or the same error code with another meaning.' },
  RA_ERR_PLUGIN_START: { exit: 1, description: 'A plugin threw while registering or starting.' },
  RA_ERR_PLUGIN_TIMEOUT: { exit: 1, description: 'A plugin did not finish starting or stopping within its timeout, or an isolated plugin did not answer a call in time.' },
  RA_ERR_PLUGIN_CRASHED: { exit: 1, description: 'An isolated plugin\'s worker died: an uncaught exception, an unhandled rejection, or process.exit().' },
  RA_ERR_PLUGIN_MEMORY: { exit: 1, description: 'An isolated plugin went over its memory limits (agent.pluginResourceLimits) and was stopped.' },
  RA_ERR_PLUGIN_ISOLATION: { exit: 1, description: 'An isolated plugin asked for what cannot cross to its worker (a token, an extension point, a value that cannot be cloned).' },
  RA_ERR_PLUGIN_UNAVAILABLE: { exit: 1, description: 'A call reached an isolated plugin that is not running (it failed, or the agent stopped it).' },
  RA_ERR_CONTRACT: { exit: 1, description: 'A value handed to a contract does not implement it.' },
  RA_ERR_TASK_PAYLOAD: { exit: 1, description: 'A worker-pool task was given a payload that is not a view on a SharedArrayBuffer.' },
  RA_ERR_POOL_CLOSED: { exit: 1, description: 'The worker pool has been shut down.' },
  RA_ERR_RING: { exit: 1, description: 'A ring buffer was given a geometry or a record that does not fit it.' },
  RA_ERR_NATIVE_MISSING: { exit: 1, description: 'The native addon is missing or failed to load.' },
  RA_ERR_HTTP_LISTEN: { exit: 2, description: 'The HTTP API\'s address (agent.http.listen) cannot be bound: the port is in use, privileged, or the address is not this host\'s. Checked before any plugin starts.' },
  RA_ERR_AGENT_UNREACHABLE: { exit: 1, description: 'No agent answers at the HTTP API address (`status`): it is not running, or listens elsewhere.' },
  RA_ERR_AGENT_UNHEALTHY: { exit: 1, description: 'The agent answers but reports itself unhealthy (`status`), with the reasons.' },
  RA_ERR_AGENT_STATE: { exit: 1, description: 'The agent is already running or has been stopped.' },
  RA_ERR_STORE_LOCKED: { exit: 3, description: 'Another live process holds the store\'s lock.' },
  RA_ERR_STORE_NOT_FOUND: { exit: 2, description: 'The directory holds no store (no control file).' },
  RA_ERR_STORE_INVALID: { exit: 2, description: 'A store\'s files are damaged or disagree with each other (geometry, ids).' },
  RA_ERR_STORE_CLOSED: { exit: 1, description: 'The store is closed, or broken after a failed write and must be reopened.' },
  RA_ERR_PAGE_RANGE: { exit: 1, description: 'A page id, offset or length lies outside the store or the page payload.' },
  RA_ERR_PAGE_CORRUPT: { exit: 4, description: 'A page read from disk fails its checksum or header check.' },
} as const satisfies Readonly<Record<string, ErrorCodeDefinition>>;

export type CoreErrorCode = keyof typeof CoreErrorCodes;

/**
 * The codes plugins define, by code. Empty here; each plugin's errors.ts adds its catalogue:
 * `declare module '…/core/errors.js' { interface PluginErrorCodes extends MyCodes {} }`.
 * Two plugins declaring one code with different meanings do not compile, as they do not load.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface PluginErrorCodes {}

/** Every known code: the core's and the plugins'. */
export type ErrorCode = CoreErrorCode | Extract<keyof PluginErrorCodes, string>;

/** A plugin's (or the core's) codes, as registered. */
export interface ErrorCatalogue<C extends Readonly<Record<string, ErrorCodeDefinition>> = Readonly<Record<string, ErrorCodeDefinition>>> {
  /** Who defines them: `core` or a plugin id. */
  readonly owner: string;
  readonly codes: C;
}

/** The exit code of an error whose code no loaded catalogue defines: a failure, like any unexpected error. */
const kUnknownCodeExit = 1;

const CODE = /^RA_ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/;

/** Every registered code, with its owner. */
const registry = new Map<string, { readonly owner: string; readonly definition: ErrorCodeDefinition }>();

/** The base of every error recovery-agent throws on purpose. */
export class RecoveryAgentError extends Error {
  readonly code: ErrorCode;
  /** Structured facts about the error, safe to log. */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RecoveryAgentError';
    this.code = code;
    this.details = options.details ?? {};
  }

  /** The process exit code the CLI uses when this error ends a command. */
  get exitCode(): number {
    return exitCodeOf(this.code);
  }
}

/** Creates a catalogued error; the one way code in this repository should make one. */
export function raError(
  code: ErrorCode,
  message: string,
  options: { cause?: unknown; details?: Record<string, unknown> } = {},
): RecoveryAgentError {
  return new RecoveryAgentError(code, message, options);
}

/** True when `err` is a recovery-agent error, optionally with the given code. */
export function isRaError(err: unknown, code?: ErrorCode): err is RecoveryAgentError {
  return err instanceof RecoveryAgentError && (code === undefined || err.code === code);
}

/**
 * Defines and registers `owner`'s error codes (an extension point: each plugin's errors.ts calls
 * it once, at import). All or none: a malformed code, or a code already defined with another
 * exit code or description, is refused with RA_ERR_PLUGIN_CONFLICT (RA_ERR_PLUGIN_LOAD for a
 * malformed one) and registers nothing. The same definition again (the module loaded twice, or
 * a second engine raising the core's meaning of a code) is accepted.
 */
export function defineErrorCodes<const C extends Readonly<Record<string, ErrorCodeDefinition>>>(owner: string, codes: C): ErrorCatalogue<C> {
  for (const [code, def] of Object.entries(codes)) {
    const where = `error code ${JSON.stringify(code)} of ${JSON.stringify(owner)}`;
    if (!CODE.test(code)) throw raError('RA_ERR_PLUGIN_LOAD', `${where}: expected RA_ERR_ and uppercase words joined by "_"`);
    if (!Number.isInteger(def?.exit) || def.exit < 1 || def.exit > 125) {
      throw raError('RA_ERR_PLUGIN_LOAD', `${where}: exit must be an integer from 1 to 125 (got ${JSON.stringify(def?.exit)})`);
    }
    if (typeof def.description !== 'string' || def.description.length === 0) throw raError('RA_ERR_PLUGIN_LOAD', `${where}: expected a description`);
    const known = registry.get(code);
    if (known && (known.definition.exit !== def.exit || known.definition.description !== def.description)) {
      throw raError('RA_ERR_PLUGIN_CONFLICT', `${where} (exit ${def.exit}: ${def.description}) is already defined by ${JSON.stringify(known.owner)} with another meaning (exit ${known.definition.exit}: ${known.definition.description})`, {
        details: { code, owners: [known.owner, owner] },
      });
    }
  }
  for (const [code, def] of Object.entries(codes)) {
    if (!registry.has(code)) registry.set(code, Object.freeze({ owner, definition: Object.freeze({ exit: def.exit, description: def.description }) }));
  }
  return Object.freeze({ owner, codes: Object.freeze({ ...codes }) });
}

/** The core's catalogue, registered first. */
export const coreErrors = defineErrorCodes('core', CoreErrorCodes);

/** True when `code` is defined by the core or a loaded catalogue. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && registry.has(code);
}

/** What `code` means and who defines it, or undefined when no loaded catalogue defines it. */
export function errorCodeDefinition(code: string): (ErrorCodeDefinition & { readonly owner: string }) | undefined {
  const known = registry.get(code);
  return known && { ...known.definition, owner: known.owner };
}

/**
 * The exit code for `code`. A plugin code is known once its catalogue is loaded; before that it
 * maps to 1, like any unexpected error, so the CLI loads the built-in catalogues before mapping
 * an error it does not know (cli/main.ts).
 */
export function exitCodeOf(code: string): number {
  return registry.get(code)?.definition.exit ?? kUnknownCodeExit;
}

/** The message of `err` and of every cause under it, joined: for one-line logs and the CLI. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 8; depth++) {
    if (cur instanceof Error) {
      const code = (cur as { code?: unknown }).code;
      parts.push(typeof code === 'string' && !cur.message.includes(code) ? `${cur.message} [${code}]` : cur.message);
      cur = cur.cause;
    } else {
      parts.push(String(cur));
      break;
    }
  }
  return parts.join(': caused by: ');
}

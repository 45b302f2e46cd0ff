/**
 * The one catalogue of recovery-agent errors. Every error has a stable code (`RA_ERR_…`) that
 * scripts and tests may rely on, a message that says what was wrong, the offending value and
 * what was expected, and an optional `cause` for the error underneath.
 *
 * Add a code here, once, before throwing it anywhere.
 */

/** Every error code, with the exit code the CLI uses when it is the reason it stops. */
export const ErrorCodes = {
  /** The config file is missing, unreadable, not YAML, or does not match the schema. */
  RA_ERR_CONFIG: { exit: 2 },
  /** A command-line argument is missing or malformed. */
  RA_ERR_USAGE: { exit: 2 },
  /** A plugin could not be loaded (module not found, no default export, not a plugin). */
  RA_ERR_PLUGIN_LOAD: { exit: 1 },
  /** A plugin targets a contract version this core does not provide. */
  RA_ERR_PLUGIN_CONTRACT: { exit: 1 },
  /** Two plugins share an id. */
  RA_ERR_PLUGIN_DUPLICATE: { exit: 1 },
  /** A plugin depends on a plugin that is not registered. */
  RA_ERR_PLUGIN_MISSING_DEPENDENCY: { exit: 1 },
  /** Plugins depend on each other in a cycle. */
  RA_ERR_PLUGIN_CYCLE: { exit: 1 },
  /** A plugin threw while registering or starting. */
  RA_ERR_PLUGIN_START: { exit: 1 },
  /** A plugin did not finish starting or stopping within its timeout, or an isolated plugin did not answer a call in time. */
  RA_ERR_PLUGIN_TIMEOUT: { exit: 1 },
  /** An isolated plugin's worker died: an uncaught exception, an unhandled rejection, or process.exit(). */
  RA_ERR_PLUGIN_CRASHED: { exit: 1 },
  /** An isolated plugin went over its memory limits (agent.pluginResourceLimits) and was stopped. */
  RA_ERR_PLUGIN_MEMORY: { exit: 1 },
  /** An isolated plugin asked for what cannot cross to its worker (a token, an extension point, a value that cannot be cloned). */
  RA_ERR_PLUGIN_ISOLATION: { exit: 1 },
  /** A call reached an isolated plugin that is not running (it failed, or the agent stopped it). */
  RA_ERR_PLUGIN_UNAVAILABLE: { exit: 1 },
  /** A value handed to a contract does not implement it. */
  RA_ERR_CONTRACT: { exit: 1 },
  /** A worker-pool task was given a payload that is not a view on a SharedArrayBuffer. */
  RA_ERR_TASK_PAYLOAD: { exit: 1 },
  /** The worker pool has been shut down. */
  RA_ERR_POOL_CLOSED: { exit: 1 },
  /** A ring buffer was given a geometry or a record that does not fit it. */
  RA_ERR_RING: { exit: 1 },
  /** The native addon is missing or failed to load. */
  RA_ERR_NATIVE_MISSING: { exit: 1 },
  /** The agent is already running or has been stopped. */
  RA_ERR_AGENT_STATE: { exit: 1 },
  /** Another live process holds the store's lock. */
  RA_ERR_STORE_LOCKED: { exit: 3 },
  /** The directory holds no store (no control file). */
  RA_ERR_STORE_NOT_FOUND: { exit: 2 },
  /** A store's files are damaged or disagree with each other (geometry, ids). */
  RA_ERR_STORE_INVALID: { exit: 2 },
  /** A store option (page size, page count, segment size) is out of range. */
  RA_ERR_STORE_OPTIONS: { exit: 2 },
  /** The store is closed, or broken after a failed write and must be reopened. */
  RA_ERR_STORE_CLOSED: { exit: 1 },
  /** A page id, offset or length lies outside the store or the page payload. */
  RA_ERR_PAGE_RANGE: { exit: 1 },
  /** A page read from disk fails its checksum or header check. */
  RA_ERR_PAGE_CORRUPT: { exit: 4 },
  /** The transaction was chosen as a deadlock victim and has been rolled back. */
  RA_ERR_DEADLOCK: { exit: 1 },
  /** The transaction has already committed or aborted. */
  RA_ERR_TX_STATE: { exit: 1 },
  /** A WAL record does not fit in a segment. */
  RA_ERR_WAL_RECORD_TOO_LARGE: { exit: 1 },
  /** Writing or syncing the WAL failed; the store must be reopened. */
  RA_ERR_WAL_WRITE: { exit: 1 },
  /** A damaged WAL record is followed by valid ones, or a segment is missing: corruption, not a crash. */
  RA_ERR_WAL_CORRUPT: { exit: 4 },
  /** A snapshot's manifest, chunk or archived WAL segment fails its checksum or cannot be read. */
  RA_ERR_SNAPSHOT_CORRUPT: { exit: 4 },
  /** A snapshot directory or a snapshot request cannot be used (no snapshot, wrong store, bad target LSN). */
  RA_ERR_SNAPSHOT_INVALID: { exit: 2 },
  /** The WAL chain from a snapshot to the restore target has a hole; the message names the missing LSN range. */
  RA_ERR_WAL_GAP: { exit: 4 },
  /** A store that archives its WAL was checkpointed without an archiver: the segments it would have recycled are kept. */
  RA_ERR_WAL_NOT_ARCHIVED: { exit: 1 },
  /** A restore target already holds a store (and --force was not given). */
  RA_ERR_RESTORE_TARGET: { exit: 2 },
  /** A store's control socket is absent or refuses connections (no owner, or an owner without one). */
  RA_ERR_CONTROL_UNAVAILABLE: { exit: 3 },
  /** A control-socket request failed: bad request, no answer in time, or a malformed reply. */
  RA_ERR_CONTROL: { exit: 1 },
  /** No source (store cache, snapshot + WAL) could rebuild a page to a verified image. */
  RA_ERR_REPAIR_NO_SOURCE: { exit: 4 },
  /** A store's owner refused an image offered to repair a page: the page is not bad, the image is older than what the owner knows, or it is not this store's. */
  RA_ERR_REPAIR_REFUSED: { exit: 4 },
  /** A supervised process could not be started (command not found, cwd missing, spawn refused). */
  RA_ERR_PROCESS_SPAWN: { exit: 1 },
  /** A process cannot do what was asked in its state (restart an attached process, restart while the agent stops). */
  RA_ERR_PROCESS_STATE: { exit: 1 },
  /** A process started more than `restart.limit.burst` times within `restart.limit.within`: the agent gave up on it. */
  RA_ERR_PROCESS_GIVEN_UP: { exit: 1 },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

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
    return ErrorCodes[this.code].exit;
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

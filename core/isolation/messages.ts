/**
 * Every message that crosses between the agent's main thread and an isolated plugin's worker
 * thread. The narrow RPC of plugin isolation: the main thread asks (`load`, `start`, `invoke`,
 * `stop`), the worker answers each request once, by `callId`; the worker on its own only logs,
 * publishes failures and reports going over its memory limit.
 *
 * Rules: everything here is structured-clone data (no functions, no class instances); tokens
 * travel as their `Symbol.for` key; errors travel as `WireError`.
 */
import type { MessagePort, ResourceLimits } from 'node:worker_threads';
import type { AgentConfig } from '../config/schema.js';
import type { Failure, FailureInput } from '../contracts/Failure.js';
import { ErrorCodes, raError } from '../errors.js';

/** What the worker is started with (`workerData`). */
export interface PluginWorkerData {
  /** The module to import, as a URL (file: URL for paths). */
  readonly url: string;
  /** How the config names it (a path or a package name), for messages. */
  readonly specifier: string;
  /** `plugins[].options`, as plain data. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly config: AgentConfig;
  /** The level of the agent's logger, so the worker does not send lines the agent drops. */
  readonly logLevel: string;
  /** `Symbol.for` keys of the tokens the plugin's container can resolve. */
  readonly resolvable: readonly string[];
  /** Buffers and ArrayBuffers the plugin may hold, checked by the worker's memory watchdog. */
  readonly maxExternalMemoryMb: number;
  /** How long a failure publication waits for the main thread's answer. */
  readonly publishTimeoutMs: number;
  /** The main thread answers `publish` requests on this port (synchronous for the plugin). */
  readonly publishPort: MessagePort;
  /** One Int32 at `kPublishAnswered`: the main thread stores the answered sequence number. */
  readonly publishSignal: SharedArrayBuffer;
}

/** Index of the Int32 in `publishSignal`: the sequence number of the last answered publication. */
export const kPublishAnswered = 0;

/** An error as it crosses threads. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

// ---- main thread → worker -----------------------------------------------------------------

/** Import the module and describe the plugin definition it exports. Answer: `LoadedPlugin`. */
export interface LoadRequest {
  readonly kind: 'load';
  readonly callId: number;
}

/** Call `register(ctx)`, then the `start` hook. Answer: `ProvidedValue[]`. */
export interface StartRequest {
  readonly kind: 'start';
  readonly callId: number;
}

/** Call a method of a provided value. Answer: the method's result (clonable data). */
export interface InvokeRequest {
  readonly kind: 'invoke';
  readonly callId: number;
  /** `ProvidedValue.target` of the value. */
  readonly target: number;
  readonly method: string;
  readonly args: readonly unknown[];
  /** For HealingAction apply/verify/undo: the HealingContext to append to `args`. */
  readonly healing?: { readonly options: Readonly<Record<string, unknown>>; readonly logBindings: Readonly<Record<string, unknown>> };
}

/** Abort the signal of a pending `invoke` (its HealingContext's); it is not answered. */
export interface CancelRequest {
  readonly kind: 'cancel';
  readonly callId: number;
}

/** Abort `ctx.signal` and call the `stop` hook. Answer: nothing. */
export interface StopRequest {
  readonly kind: 'stop';
  readonly callId: number;
}

export type ToWorker = LoadRequest | StartRequest | InvokeRequest | CancelRequest | StopRequest;

// ---- worker → main thread -----------------------------------------------------------------

/** The plugin definition a module exports, as data. */
export interface LoadedPlugin {
  readonly id: string;
  readonly dependsOn: readonly string[];
  readonly contractVersion: string;
}

/** A value the plugin provided through `ctx.provide`, described so the main thread can proxy it. */
export interface ProvidedValue {
  /** `Symbol.for` key of the token, e.g. `recovery-agent.HealingAction`. */
  readonly token: string;
  /** Index the worker keeps the value under; `InvokeRequest.target`. */
  readonly target: number;
  /** The value's `id`. */
  readonly id: string;
  /** Names of its methods (optional ones, like `undo`, only when present). */
  readonly methods: readonly string[];
}

/** The answer to a request. */
export type Response =
  | { readonly kind: 'response'; readonly callId: number; readonly ok: true; readonly value: unknown }
  | { readonly kind: 'response'; readonly callId: number; readonly ok: false; readonly error: WireError };

/** One log line of the plugin, for its child logger in the main thread. */
export interface LogLine {
  readonly kind: 'log';
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** From `log.child(bindings)` calls inside the plugin. */
  readonly bindings: Readonly<Record<string, unknown>>;
  /** The merge object, as plain data. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg?: string;
}

/** A failure the plugin publishes on the FailureBus; answered with `PublishAnswer` on the publish port. */
export interface PublishRequest {
  readonly kind: 'publish';
  readonly seq: number;
  readonly input: FailureInput;
}

/** The memory watchdog found the plugin over `maxExternalMemoryMb`; the worker exits next. */
export interface MemoryExceeded {
  readonly kind: 'memory-exceeded';
  readonly externalMb: number;
  readonly limitMb: number;
}

export type FromWorker = Response | LogLine | PublishRequest | MemoryExceeded;

/** Sent on the publish port, then signalled through `publishSignal`. */
export type PublishAnswer =
  | { readonly seq: number; readonly ok: true; readonly failure: Failure }
  | { readonly seq: number; readonly ok: false; readonly error: WireError };

/** The Node resource limits a plugin worker gets, as configured. */
export type PluginResourceLimits = Pick<ResourceLimits, 'maxOldGenerationSizeMb' | 'maxYoungGenerationSizeMb' | 'stackSizeMb'>;

export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

/** Rebuilds a WireError: a catalogued recovery-agent error as one (same code), anything else as an Error with its name, message and code. */
export function fromWireError(w: WireError): Error {
  if (w.name === 'RecoveryAgentError' && w.code !== undefined && Object.hasOwn(ErrorCodes, w.code)) {
    return raError(w.code as keyof typeof ErrorCodes, w.message);
  }
  const err = new Error(w.message) as Error & { code?: string };
  err.name = w.name;
  if (w.code !== undefined) err.code = w.code;
  return err;
}

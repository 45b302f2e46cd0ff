/**
 * Every message that crosses between the agent and an isolated plugin's child process (over
 * the child's IPC channel, `serialization: 'advanced'`, so structured clones). The narrow RPC of
 * plugin isolation: the agent asks (`load`, `start`, `invoke`, `stop`), the child answers each
 * request once, by `callId`; the child on its own only logs, publishes failures, reports going
 * over its memory limit, and reports the uncaught error it is about to die of.
 *
 * Rules: everything here is structured-clone data (no functions, no class instances); tokens
 * travel as their id (`Symbol.for` key, `tokenId`); errors travel as `WireError`. Answers to `publish` do not
 * use the IPC channel (the plugin waits for them synchronously): see publishChannel.ts.
 */
import type { AgentConfig } from '../config/schema.js';
import type { Failure, FailureInput } from '../contracts/Failure.js';
import { isErrorCode, raError } from '../errors.js';

/** What the child is told first, in its `load` request. */
export interface PluginProcessData {
  /** The module to import, as a URL (file: URL for paths). */
  readonly url: string;
  /** How the config names it (a path or a package name), for messages. */
  readonly specifier: string;
  /** `plugins[].options`, as plain data. */
  readonly options: Readonly<Record<string, unknown>>;
  readonly config: AgentConfig;
  /** The level of the agent's logger, so the child does not send lines the agent drops. */
  readonly logLevel: string;
  /** `Symbol.for` keys of the tokens the plugin's container can resolve. */
  readonly resolvable: readonly string[];
  /** Buffers and ArrayBuffers the plugin may hold, checked by the child's memory watchdog. */
  readonly maxExternalMemoryMb: number;
  /** How long a failure publication waits for the agent's answer. */
  readonly publishTimeoutMs: number;
}

/** The child's file descriptor on which the agent writes `PublishAnswer` frames (stdio[3]). */
export const kPublishAnswerFd = 3;

/** An error as it crosses to the agent. */
export interface WireError {
  readonly name: string;
  readonly message: string;
  readonly code?: string;
}

// ---- agent → child ------------------------------------------------------------------------

/** The first request: take `data`, import the module and describe the plugin definition it exports. Answer: `LoadedPlugin`. */
export interface LoadRequest {
  readonly kind: 'load';
  readonly callId: number;
  readonly data: PluginProcessData;
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

export type ToPlugin = LoadRequest | StartRequest | InvokeRequest | CancelRequest | StopRequest;

// ---- child → agent ------------------------------------------------------------------------

/** The plugin definition a module exports, as data. */
export interface LoadedPlugin {
  readonly id: string;
  readonly dependsOn: readonly string[];
  /** Its `deps`, tokens by their `Symbol.for` key, so the agent orders it after their providers. */
  readonly deps: ReadonlyArray<{ readonly name: string; readonly token: string; readonly kind: 'required' | 'optional' | 'many' }>;
  /** `Symbol.for` keys of the tokens it declares in `provides`; absent when it declares none. */
  readonly provides?: readonly string[];
  readonly contractVersion: string;
}

/** A value the plugin provided through `ctx.provide`, described so the agent can proxy it. */
export interface ProvidedValue {
  /** `Symbol.for` key of the token, e.g. `recovery-agent.HealingAction`. */
  readonly token: string;
  /** Index the child keeps the value under; `InvokeRequest.target`. */
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

/** One log line of the plugin, for its child logger in the agent. */
export interface LogLine {
  readonly kind: 'log';
  readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  /** From `log.child(bindings)` calls inside the plugin. */
  readonly bindings: Readonly<Record<string, unknown>>;
  /** The merge object, as plain data. */
  readonly fields: Readonly<Record<string, unknown>>;
  readonly msg?: string;
}

/** A failure the plugin publishes on the FailureBus; answered with a `PublishAnswer` frame on `kPublishAnswerFd`. */
export interface PublishRequest {
  readonly kind: 'publish';
  readonly seq: number;
  readonly input: FailureInput;
}

/** The memory watchdog found the plugin over `maxExternalMemoryMb`; the child exits next. */
export interface MemoryExceeded {
  readonly kind: 'memory-exceeded';
  readonly externalMb: number;
  readonly limitMb: number;
}

/** The plugin threw where nobody catches it (or left a rejection unhandled); the child exits next. */
export interface Uncaught {
  readonly kind: 'uncaught';
  readonly error: WireError;
}

export type FromPlugin = Response | LogLine | PublishRequest | MemoryExceeded | Uncaught;

/** Written by the agent on `kPublishAnswerFd` (see publishChannel.ts). */
export type PublishAnswer =
  | { readonly seq: number; readonly ok: true; readonly failure: Failure }
  | { readonly seq: number; readonly ok: false; readonly error: WireError };

/** The V8 limits a plugin's process gets, as configured (`agent.pluginResourceLimits`); see childProcessOptions.ts. */
export interface PluginResourceLimits {
  readonly maxOldGenerationSizeMb?: number;
  readonly maxYoungGenerationSizeMb?: number;
  readonly stackSizeMb?: number;
}

export function toWireError(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

/** Rebuilds a WireError: a catalogued recovery-agent error as one (same code), anything else as an Error with its name, message and code. */
export function fromWireError(w: WireError): Error {
  if (w.name === 'RecoveryAgentError' && isErrorCode(w.code)) {
    return raError(w.code, w.message);
  }
  const err = new Error(w.message) as Error & { code?: string };
  err.name = w.name;
  if (w.code !== undefined) err.code = w.code;
  return err;
}

/**
 * The main thread's handle on one isolated plugin's worker thread: starts it with its resource
 * limits, sends requests and matches answers (each with a timeout), forwards its log lines to
 * the plugin's child logger, answers its failure publications, and turns its death into one
 * catalogued error.
 *
 * Rules: the main thread never waits synchronously on the worker. Every pending request is
 * settled exactly once: by the answer, its timeout, its caller's abort signal, or the worker's
 * death (which rejects them all). The worker is unref'd: it never keeps the agent's process
 * alive on its own (a plugin's leftover `setInterval` included).
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import { describeError, raError, type RecoveryAgentError } from '../errors.js';
import type { FailureBus } from '../failureBus.js';
import {
  fromWireError,
  kPublishAnswered,
  toWireError,
  type FromWorker,
  type InvokeRequest,
  type LogLine,
  type PluginResourceLimits,
  type PluginWorkerData,
  type PublishAnswer,
  type PublishRequest,
  type ToWorker,
} from './messages.js';

export interface PluginWorkerOptions {
  /** The module, as a URL. */
  url: string;
  /** As the config names it. */
  specifier: string;
  options: Readonly<Record<string, unknown>>;
  config: AgentConfig;
  /** The agent's logger; the plugin's lines go to a child bound to `{ plugin: id }`. */
  log: Logger;
  resourceLimits: PluginResourceLimits;
  maxExternalMemoryMb: number;
  /** Where the plugin's failures go; without one, the plugin cannot resolve FailureBus. */
  bus?: FailureBus;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer?: NodeJS.Timeout;
}

/** Keys pino sets itself; a plugin's log fields must not overwrite them (or claim another plugin's id). */
const RESERVED_LOG_KEYS = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'plugin']);
const LOG_LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal']);

type RequestWithoutId = { [K in ToWorker['kind']]: Omit<Extract<ToWorker, { kind: K }>, 'callId'> }[Exclude<ToWorker['kind'], 'cancel'>];

export class PluginWorker {
  private readonly worker: Worker;
  private readonly publishPort: MessagePort;
  private readonly publishAnswered: Int32Array;
  private readonly pending = new Map<number, Pending>();
  private readonly deathListeners: Array<(err: RecoveryAgentError) => void> = [];
  private nextCallId = 1;
  private pluginId: string | undefined;
  private log: Logger;
  /** Why the worker is gone; null while it lives. */
  private death: RecoveryAgentError | null = null;
  private terminating: Promise<void> | null = null;

  constructor(private readonly o: PluginWorkerOptions) {
    this.log = o.log.child({ pluginModule: o.specifier });
    const channel = new MessageChannel();
    this.publishPort = channel.port1;
    this.publishPort.unref(); // only ever posted to; like the worker, it must not hold the process
    const publishSignal = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    this.publishAnswered = new Int32Array(publishSignal);
    const data: PluginWorkerData = {
      url: o.url,
      specifier: o.specifier,
      options: o.options,
      config: o.config,
      logLevel: o.log.level,
      resolvable: ['recovery-agent.Config', ...(o.bus ? ['recovery-agent.FailureBus'] : [])],
      maxExternalMemoryMb: o.maxExternalMemoryMb,
      publishTimeoutMs: 5_000,
      publishPort: channel.port2,
      publishSignal,
    };
    this.worker = new Worker(new URL('./pluginWorkerMain.js', import.meta.url), {
      workerData: data,
      transferList: [channel.port2],
      resourceLimits: nodeResourceLimits(o.resourceLimits),
    });
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err: Error & { code?: string }) => this.die(this.crashError(err)));
    this.worker.on('exit', (code) => {
      this.die(
        this.terminating
          ? raError('RA_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is not running: the agent stopped it`)
          : raError('RA_ERR_PLUGIN_CRASHED', `plugin ${this.name} exited with code ${code} (process.exit() in a plugin ends only its worker)`, { details: { plugin: this.pluginId ?? this.o.specifier, exitCode: code } }),
      );
      this.publishPort.close();
    });
    // After the listeners: adding a 'message' listener to a Worker refs its port again.
    this.worker.unref();
  }

  /** `"id"` once loaded, else `module <specifier>`: how messages name the plugin. */
  get name(): string {
    return this.pluginId ? `"${this.pluginId}"` : `module ${this.o.specifier}`;
  }

  /** Called once the module is loaded: from now on logs and errors name the plugin's id. */
  identify(id: string): void {
    this.pluginId = id;
    this.log = this.o.log.child({ plugin: id });
  }

  /** Why the worker is gone, or null while it runs. */
  get deathError(): RecoveryAgentError | null {
    return this.death;
  }

  /** Called once if the worker dies without the agent asking (crash, exit, memory). */
  onDeath(listener: (err: RecoveryAgentError) => void): void {
    this.deathListeners.push(listener);
  }

  /** Sends a request; resolves with the worker's answer. `timeoutMs` undefined: no timeout of its own. */
  request(msg: RequestWithoutId, timeoutMs: number | undefined, what: string): Promise<unknown> {
    return this.send(msg, timeoutMs, what).promise;
  }

  /** Calls a method of a provided value; `signal` cancels it (here, and in the worker). */
  invoke(call: Omit<InvokeRequest, 'kind' | 'callId'>, timeoutMs: number, signal?: AbortSignal): Promise<unknown> {
    if (signal?.aborted) return Promise.reject(abortReason(signal));
    const { callId, promise } = this.send({ kind: 'invoke', ...call }, timeoutMs, call.method);
    if (!signal) return promise;
    const onAbort = () => {
      this.post({ kind: 'cancel', callId });
      this.settle(callId, (p) => p.reject(abortReason(signal)));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return promise.finally(() => signal.removeEventListener('abort', onAbort));
  }

  /** Stops the thread at once (it may be spinning) and rejects what is pending. Idempotent. */
  terminate(): Promise<void> {
    this.terminating ??= this.worker.terminate().then(() => undefined);
    return this.terminating;
  }

  private send(msg: RequestWithoutId, timeoutMs: number | undefined, what: string): { callId: number; promise: Promise<unknown> } {
    const callId = this.nextCallId++;
    if (this.death) {
      const err = this.death.code === 'RA_ERR_PLUGIN_UNAVAILABLE' ? this.death : raError('RA_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is not running: ${this.death.message}`, { cause: this.death });
      return { callId, promise: Promise.reject(err) };
    }
    const promise = new Promise<unknown>((resolve, reject) => {
      const pending: Pending = { resolve, reject };
      if (timeoutMs !== undefined) {
        pending.timer = setTimeout(() => {
          if (msg.kind === 'invoke') this.post({ kind: 'cancel', callId });
          this.settle(callId, (p) => p.reject(raError('RA_ERR_PLUGIN_TIMEOUT', `plugin ${this.name} did not answer ${what} within ${timeoutMs} ms`)));
        }, timeoutMs);
      }
      this.pending.set(callId, pending);
    });
    try {
      this.worker.postMessage({ ...msg, callId });
    } catch (err) {
      this.settle(callId, (p) => p.reject(raError('RA_ERR_PLUGIN_ISOLATION', `cannot send ${what} to plugin ${this.name}: ${describeError(err)}`, { cause: err })));
    }
    return { callId, promise };
  }

  private settle(callId: number, how: (p: Pending) => void): void {
    const p = this.pending.get(callId);
    if (!p) return;
    this.pending.delete(callId);
    clearTimeout(p.timer);
    how(p);
  }

  private post(msg: ToWorker): void {
    if (!this.death) this.worker.postMessage(msg);
  }

  private onMessage(m: FromWorker): void {
    // The plugin could post on the worker's port itself: anything unexpected is ignored.
    if (typeof m !== 'object' || m === null) return;
    switch (m.kind) {
      case 'response':
        this.settle(m.callId, (p) => (m.ok ? p.resolve(m.value) : p.reject(fromWireError(m.error))));
        return;
      case 'log':
        this.forwardLog(m);
        return;
      case 'publish':
        this.answerPublish(m);
        return;
      case 'memory-exceeded':
        this.die(
          raError('RA_ERR_PLUGIN_MEMORY', `plugin ${this.name} held ${m.externalMb} MB in Buffers/ArrayBuffers, over agent.pluginResourceLimits.maxExternalMemoryMb (${m.limitMb}), and was stopped`, {
            details: { plugin: this.pluginId ?? this.o.specifier, externalMb: m.externalMb, limitMb: m.limitMb },
          }),
        );
        void this.worker.terminate();
        return;
    }
  }

  private forwardLog(m: LogLine): void {
    if (!LOG_LEVELS.has(m.level)) return;
    const safe = (o: unknown) => Object.fromEntries(Object.entries(typeof o === 'object' && o !== null ? o : {}).filter(([k]) => !RESERVED_LOG_KEYS.has(k)));
    const log = Object.keys(m.bindings ?? {}).length > 0 ? this.log.child(safe(m.bindings)) : this.log;
    if (typeof m.msg === 'string') log[m.level](safe(m.fields), m.msg);
    else log[m.level](safe(m.fields));
  }

  private answerPublish(m: PublishRequest): void {
    let answer: PublishAnswer;
    try {
      if (!this.o.bus) throw raError('RA_ERR_PLUGIN_ISOLATION', 'this agent has no failure bus');
      answer = { seq: m.seq, ok: true, failure: this.o.bus.publish(this.pluginId ?? this.o.specifier, m.input) };
    } catch (err) {
      answer = { seq: m.seq, ok: false, error: toWireError(err) };
    }
    this.publishPort.postMessage(answer);
    Atomics.store(this.publishAnswered, kPublishAnswered, m.seq); // publish step: the worker may read the answer now
    Atomics.notify(this.publishAnswered, kPublishAnswered);
  }

  private crashError(err: Error & { code?: string }): RecoveryAgentError {
    const plugin = this.pluginId ?? this.o.specifier;
    if (err?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
      const limit = this.o.resourceLimits.maxOldGenerationSizeMb;
      return raError('RA_ERR_PLUGIN_MEMORY', `plugin ${this.name} ran out of its JS heap (agent.pluginResourceLimits.maxOldGenerationSizeMb: ${limit}) and was stopped`, {
        cause: err,
        details: { plugin, maxOldGenerationSizeMb: limit },
      });
    }
    return raError('RA_ERR_PLUGIN_CRASHED', `plugin ${this.name} crashed with an uncaught exception or unhandled rejection: ${describeError(err)}`, { cause: err, details: { plugin } });
  }

  /** The first cause of death wins; every pending request is rejected with it. */
  private die(err: RecoveryAgentError): void {
    if (this.death) return;
    this.death = err;
    for (const callId of [...this.pending.keys()]) this.settle(callId, (p) => p.reject(err));
    if (this.terminating) return; // the agent asked for it: nobody needs telling
    for (const listener of this.deathListeners) listener(err);
  }
}

/** Only the keys Node's Worker knows, and only those set (the config carries the agent's own limits too). */
function nodeResourceLimits(l: PluginResourceLimits): PluginResourceLimits {
  const { maxOldGenerationSizeMb, maxYoungGenerationSizeMb, stackSizeMb } = l;
  return Object.fromEntries(Object.entries({ maxOldGenerationSizeMb, maxYoungGenerationSizeMb, stackSizeMb }).filter(([, v]) => v !== undefined));
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));
}

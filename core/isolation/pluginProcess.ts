/**
 * The agent's handle on one isolated plugin's child process: forks it with its memory limits,
 * sends requests and matches answers (each with a timeout), forwards its log lines and its
 * stdout/stderr to the plugin's child logger, answers its failure publications, and turns its
 * death into one catalogued error.
 *
 * Rules: the agent never waits synchronously on the child. Every pending request is settled
 * exactly once: by the answer, its timeout, its caller's abort signal, or the child's death
 * (which rejects them all). The child, its IPC channel and its pipes are unref'd: they never
 * keep the agent's process alive on their own (a plugin's leftover `setInterval` included; only
 * a request awaiting its answer refs the channel, as any pending I/O would), and
 * a child still running when the agent's process exits is killed then. A child whose agent was
 * killed outright ends by itself (pluginProcessMain.ts).
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { AgentConfig } from '../config/schema.js';
import { describeError, raError, type RecoveryAgentError } from '../errors.js';
import type { FailureBus } from '../failureBus.js';
import { pluginEnv, pluginExecArgv } from './childProcessOptions.js';
import {
  fromWireError,
  toWireError,
  type FromPlugin,
  type InvokeRequest,
  type LogLine,
  type PluginResourceLimits,
  type PluginProcessData,
  type PublishAnswer,
  type PublishRequest,
  type ToPlugin,
} from './messages.js';
import { writePublishAnswer } from './publishChannel.js';
import { tokenId } from '../token.js';
import { Config, FailureBus as FailureBusToken } from '../tokens.js';

export interface PluginProcessOptions {
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

type RequestWithoutId = { [K in ToPlugin['kind']]: Omit<Extract<ToPlugin, { kind: K }>, 'callId'> }[Exclude<ToPlugin['kind'], 'cancel'>];

/** Lines of the child's stderr kept for the message when it dies, and the longest line forwarded. */
const kStderrTailLines = 12;
const kMaxLineChars = 4_096;
/** After an unexpected exit, how long to wait for the rest of its stderr and IPC messages before judging it. */
const kExitSettleMs = 500;
/** V8 prints one of these before it aborts a process that ran out of heap. */
const OUT_OF_HEAP = /JavaScript heap out of memory|Reached heap limit|Ineffective mark-compacts near heap limit/;

/** Children still running; killed when this process exits (short of SIGKILL, which the children notice themselves). */
const living = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of living) child.kill('SIGKILL');
});

export class PluginProcess {
  private readonly child: ChildProcess;
  /** stdio[3] of the child: where answers to its publications go. */
  private readonly publishOut: Writable;
  private readonly stderrTail: string[] = [];
  /** V8 said on stderr that the heap ran out (the native stack it prints next pushes the line out of the tail). */
  private saidOutOfHeap = false;
  private readonly pending = new Map<number, Pending>();
  private readonly deathListeners: Array<(err: RecoveryAgentError) => void> = [];
  private nextCallId = 1;
  private pluginId: string | undefined;
  private log: Logger;
  /** Why the child is gone; null while it lives. */
  private death: RecoveryAgentError | null = null;
  private exited = false;
  private terminating: Promise<void> | null = null;

  constructor(private readonly o: PluginProcessOptions) {
    this.log = o.log.child({ pluginModule: o.specifier });
    const child = fork(fileURLToPath(new URL('./pluginProcessMain.js', import.meta.url)), [String(process.pid)], {
      execArgv: pluginExecArgv(o.resourceLimits),
      env: pluginEnv(),
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    living.add(child);
    this.publishOut = child.stdio[3] as Writable;
    const [stdout, stderr] = [child.stdout!, child.stderr!];
    // A pipe to a dead child fails with EPIPE/ECONNRESET: its death is reported by 'exit'.
    for (const stream of [stdout, stderr, this.publishOut]) stream.on('error', () => undefined);
    eachLine(stdout, (line) => this.log.info({ stream: 'stdout' }, line));
    eachLine(stderr, (line) => {
      this.stderrTail.push(line);
      if (OUT_OF_HEAP.test(line)) this.saidOutOfHeap = true;
      if (this.stderrTail.length > kStderrTailLines) this.stderrTail.shift();
      this.log.warn({ stream: 'stderr' }, line);
    });
    const drained = Promise.all([new Promise((resolve) => stderr.once('close', resolve)), new Promise((resolve) => (child.connected ? child.once('disconnect', resolve) : resolve(undefined)))]);
    child.on('message', (m: FromPlugin) => this.onMessage(m));
    child.on('error', (err) => {
      if (child.pid !== undefined) return; // a failed kill or send: 'exit' or the send's callback says the rest
      this.exited = true;
      living.delete(child);
      this.die(raError('RA_ERR_PLUGIN_CRASHED', `plugin ${this.name}: its process could not be started: ${describeError(err)}`, { cause: err }));
    });
    child.on('exit', (code, signal) => {
      this.exited = true;
      living.delete(child);
      this.publishOut.destroy();
      if (this.terminating) {
        this.die(raError('RA_ERR_PLUGIN_UNAVAILABLE', `plugin ${this.name} is not running: the agent stopped it`));
        return;
      }
      // Judge once its last words (stderr, IPC) are in: they say whether it ran out of heap.
      const timer = setTimeout(() => this.die(this.exitError(code, signal)), kExitSettleMs);
      timer.unref();
      void drained.then(() => {
        clearTimeout(timer);
        this.die(this.exitError(code, signal));
      });
    });
    // After the listeners: a 'message' listener refs the channel again unless it was unref'd explicitly.
    child.unref();
    child.channel?.unref();
    for (const stream of [stdout, stderr, this.publishOut]) (stream as Socket).unref?.();
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

  /** The child's pid (undefined if it could not be started). */
  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Why the child is gone, or null while it runs. */
  get deathError(): RecoveryAgentError | null {
    return this.death;
  }

  /** Called once if the child dies without the agent asking (crash, exit, memory). */
  onDeath(listener: (err: RecoveryAgentError) => void): void {
    this.deathListeners.push(listener);
  }

  /** Sends a request; resolves with the child's answer. `timeoutMs` undefined: no timeout of its own. */
  request(msg: RequestWithoutId, timeoutMs: number | undefined, what: string): Promise<unknown> {
    return this.send(msg, timeoutMs, what).promise;
  }

  /** Calls a method of a provided value; `signal` cancels it (here, and in the child). */
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

  /** Kills the child at once (SIGKILL: it may be spinning) and rejects what is pending. Idempotent. */
  terminate(): Promise<void> {
    this.terminating ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      this.child.once('exit', () => resolve());
      this.child.ref(); // whoever awaits this waits for the exit, which takes a moment after SIGKILL
      this.child.kill('SIGKILL');
    });
    return this.terminating;
  }

  /** The load request, sent first, carries what the child needs to know. */
  load(timeoutMs: number): Promise<unknown> {
    return this.send({ kind: 'load', data: this.processData() }, timeoutMs, 'load').promise;
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
      this.child.channel?.ref(); // an answer awaited holds the process, as any pending I/O does; an idle plugin never does
    });
    const cannotSend = (err: unknown) =>
      this.settle(callId, (p) => p.reject(raError('RA_ERR_PLUGIN_ISOLATION', `cannot send ${what} to plugin ${this.name}: ${describeError(err)}`, { cause: err })));
    try {
      this.post({ ...msg, callId } as ToPlugin, (err) => {
        if (err && !this.death) cannotSend(err);
      });
    } catch (err) {
      cannotSend(err); // an argument that cannot be cloned
    }
    return { callId, promise };
  }

  private settle(callId: number, how: (p: Pending) => void): void {
    const p = this.pending.get(callId);
    if (!p) return;
    this.pending.delete(callId);
    if (this.pending.size === 0) this.child.channel?.unref();
    clearTimeout(p.timer);
    how(p);
  }

  /** Throws when `msg` cannot be cloned; `done` gets the error when the channel is closed. */
  private post(msg: ToPlugin, done: (err: Error | null) => void = () => undefined): void {
    if (!this.death) this.child.send(msg, undefined, {}, done);
  }

  private onMessage(m: FromPlugin): void {
    // The plugin could call process.send itself: anything unexpected is ignored.
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
        this.child.kill('SIGKILL');
        return;
      case 'uncaught':
        this.die(
          raError('RA_ERR_PLUGIN_CRASHED', `plugin ${this.name} crashed with an uncaught exception or unhandled rejection: ${m.error?.name}: ${m.error?.message}`, {
            cause: fromWireError(m.error),
            details: { plugin: this.pluginId ?? this.o.specifier },
          }),
        );
        this.child.kill('SIGKILL'); // it is exiting anyway; what it still runs meanwhile is the plugin's
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
    if (!this.exited) writePublishAnswer(this.publishOut, answer);
  }

  private processData(): PluginProcessData {
    const { o } = this;
    return {
      url: o.url,
      specifier: o.specifier,
      options: o.options,
      config: o.config,
      logLevel: o.log.level,
      resolvable: [tokenId(Config), ...(o.bus ? [tokenId(FailureBusToken)] : [])],
      maxExternalMemoryMb: o.maxExternalMemoryMb,
      publishTimeoutMs: 5_000,
    };
  }

  /** Why a child the agent did not stop has exited: out of heap (V8 says so on stderr, then aborts), or crashed. */
  private exitError(code: number | null, signal: NodeJS.Signals | null): RecoveryAgentError {
    const plugin = this.pluginId ?? this.o.specifier;
    const stderr = this.stderrTail.join('\n');
    const details = { plugin, exitCode: code, signal, stderr };
    if ((signal === 'SIGABRT' || code === 134) && this.saidOutOfHeap) {
      const limit = this.o.resourceLimits.maxOldGenerationSizeMb;
      return raError('RA_ERR_PLUGIN_MEMORY', `plugin ${this.name} ran out of its JS heap (agent.pluginResourceLimits.maxOldGenerationSizeMb: ${limit}) and its process was stopped`, {
        details: { ...details, maxOldGenerationSizeMb: limit },
      });
    }
    const how = signal ? `was killed by signal ${signal}` : `exited with code ${code} (process.exit() in a plugin ends only its process)`;
    const tail = this.stderrTail.length > 0 ? `; the last lines of its stderr:\n${this.stderrTail.slice(-6).join('\n')}` : '; nothing on its stderr';
    return raError('RA_ERR_PLUGIN_CRASHED', `plugin ${this.name} ${how}${tail}`, { details });
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

/** Calls `onLine` for each line of `stream` (cut at kMaxLineChars, so a plugin cannot make the agent buffer without end). */
function eachLine(stream: Readable, onLine: (line: string) => void): void {
  let partial = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n');
    partial = lines.pop()!;
    if (partial.length > kMaxLineChars) {
      lines.push(partial);
      partial = '';
    }
    for (const line of lines) if (line.trim() !== '') onLine(line.length > kMaxLineChars ? `${line.slice(0, kMaxLineChars)}…` : line);
  });
  stream.on('end', () => {
    if (partial.trim() !== '') onLine(partial.slice(0, kMaxLineChars));
  });
}

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason ?? 'aborted'));
}

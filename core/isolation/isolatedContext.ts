/**
 * What an isolated plugin's `ctx` is made of inside its child process: a logger that forwards
 * to the plugin's pino child logger in the agent, a container that resolves only what can cross
 * (Config, FailureBus), and the FailureBus proxy.
 *
 * Concurrency: `publish` is synchronous for the plugin, as `FailureBus.publish` is in-process.
 * The child posts a `PublishRequest` and blocks reading the answer from the publish channel
 * (publishChannel.ts) until it arrives or the timeout passes. Only the child waits; the agent
 * never blocks on a plugin.
 */
import { format } from 'node:util';
import type { Logger } from 'pino';
import type { InjectionToken } from 'tsyringe';
import type { Failure, FailureInput, FailureSink } from '../contracts/Failure.js';
import { raError } from '../errors.js';
import { fromWireError, type LogLine, type PublishRequest } from './messages.js';
import type { PublishAnswerReader } from './publishChannel.js';

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const LEVEL_VALUES: Readonly<Record<string, number>> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60, silent: Infinity };

/** A copy of `v` that is plain JSON data (errors as `{ type, message, stack }`); never throws. */
export function toPlain(v: unknown): Record<string, unknown> {
  try {
    const copy = JSON.parse(
      JSON.stringify(v, (_key, value: unknown) => {
        if (value instanceof Error) return { type: value.name, message: value.message, stack: value.stack, ...(value as unknown as Record<string, unknown>) };
        return typeof value === 'bigint' ? value.toString() : value;
      }) ?? 'null',
    ) as unknown;
    return typeof copy === 'object' && copy !== null && !Array.isArray(copy) ? (copy as Record<string, unknown>) : { value: copy };
  } catch (err) {
    return { unserialisable: (err as Error).message };
  }
}

/**
 * A pino-shaped logger whose lines go to the agent (levels, `child`, `isLevelEnabled`).
 * Lines below the agent's level are dropped here, before they cross.
 */
export function forwardingLogger(post: (line: LogLine) => void, level: string, bindings: Readonly<Record<string, unknown>> = {}): Logger {
  const min = LEVEL_VALUES[level] ?? LEVEL_VALUES.info!;
  const log: Record<string, unknown> = {
    level,
    child: (more: unknown) => forwardingLogger(post, level, { ...bindings, ...toPlain(more) }),
    isLevelEnabled: (l: string) => (LEVEL_VALUES[l] ?? Infinity) >= min,
    silent: () => undefined,
  };
  for (const l of LEVELS) {
    log[l] = LEVEL_VALUES[l]! < min ? () => undefined : (...args: unknown[]) => post(logLine(l, bindings, args));
  }
  return log as unknown as Logger;
}

function logLine(level: LogLine['level'], bindings: Readonly<Record<string, unknown>>, args: unknown[]): LogLine {
  const [first, ...rest] = args;
  if (first instanceof Error) {
    return { kind: 'log', level, bindings, fields: { err: toPlain(first) }, msg: rest.length > 0 ? format(...rest) : first.message };
  }
  if (typeof first === 'object' && first !== null) {
    return { kind: 'log', level, bindings, fields: toPlain(first), ...(rest.length > 0 ? { msg: format(...rest) } : {}) };
  }
  return { kind: 'log', level, bindings, fields: {}, msg: format(...args) };
}

/**
 * The container an isolated plugin gets: `resolve`, `resolveAll` and `isRegistered` over the
 * few tokens that can cross to the agent. Anything else is a clear error naming the plugin.
 */
export class IsolatedContainer {
  constructor(
    private readonly pluginId: string,
    private readonly values: ReadonlyMap<symbol, unknown>,
  ) {}

  isRegistered(token: InjectionToken<unknown>): boolean {
    return typeof token === 'symbol' && this.values.has(token);
  }

  resolve<T>(token: InjectionToken<T>): T {
    if (typeof token === 'symbol' && this.values.has(token)) return this.values.get(token) as T;
    const can = [...this.values.keys()].map((k) => Symbol.keyFor(k)).join(', ');
    throw raError(
      'RA_ERR_PLUGIN_ISOLATION',
      `plugin "${this.pluginId}" runs isolated in a process of its own and cannot resolve ${String(token)}; it can resolve: ${can}`,
      { details: { plugin: this.pluginId, token: String(token) } },
    );
  }

  resolveAll<T>(token: InjectionToken<T>): T[] {
    return [this.resolve(token)];
  }
}

/** The part of FailureBus an isolated plugin can use: `publish` and `sinkFor`. The source is always the plugin's id. */
export interface FailureBusProxy {
  publish(source: string, input: FailureInput): Failure;
  sinkFor(source: string): FailureSink;
}

export function failureBusProxy(pluginId: string, timeoutMs: number, answers: PublishAnswerReader, post: (m: PublishRequest) => void): FailureBusProxy {
  let seq = 0;
  const publish = (_source: string, input: FailureInput): Failure => {
    const mine = ++seq;
    post({ kind: 'publish', seq: mine, input: toPlain(input) as unknown as FailureInput });
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answer = answers.next(deadline);
      if (answer === undefined) {
        throw raError('RA_ERR_PLUGIN_TIMEOUT', `plugin "${pluginId}": the agent did not take the published failure within ${timeoutMs} ms`);
      }
      if (answer.seq !== mine) continue; // the late answer to an earlier publication that timed out
      if (answer.ok) return answer.failure;
      throw fromWireError(answer.error);
    }
  };
  return { publish, sinkFor: (source) => ({ publish: (input) => publish(source, input) }) };
}

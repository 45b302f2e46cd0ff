/**
 * The one worker pool for hot work: a piscina pool owned by the core and shared by plugins.
 *
 * Task payloads carry their bulk data as views on SharedArrayBuffers, which cross to the worker
 * by reference (postMessage shares a SharedArrayBuffer; it never copies it). A view on an
 * ordinary ArrayBuffer would be copied, silently doubling memory traffic on a hot path, so
 * `run` refuses it with RA_ERR_TASK_PAYLOAD.
 */
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { raError } from './errors.js';

/** A byte view whose memory is shared with workers. */
export type SharedBytes = Uint8Array & { readonly buffer: SharedArrayBuffer };

/** Values a task payload may hold: shared views for bulk data, small scalars for parameters. */
export type TaskValue =
  | SharedBytes
  | (ArrayBufferView & { readonly buffer: SharedArrayBuffer })
  | string
  | number
  | bigint
  | boolean
  | null
  | undefined
  | readonly TaskValue[]
  | { readonly [key: string]: TaskValue };

/** A task payload: a flat or nested record of task values. */
export type TaskPayload = { readonly [key: string]: TaskValue };

/** A typed reference to a task function in a worker module. */
export interface TaskRef<I extends TaskPayload, O> {
  /** Absolute path of the worker module (compiled JS). */
  readonly filename: string;
  /** Exported function name in that module (`default` for the default export). */
  readonly name: string;
  /** Phantom fields carrying the input and output types. */
  readonly __types?: { input: I; output: O };
}

/**
 * Declares a task: `defineTask<ScanInput, ScanResult>(new URL('./scanTask.js', import.meta.url), 'scan')`.
 * The module must export a function `(input: I) => O | Promise<O>` under `name`.
 */
export function defineTask<I extends TaskPayload, O>(module: string | URL, name = 'default'): TaskRef<I, O> {
  const filename = module instanceof URL ? fileURLToPath(module) : module.startsWith('file:') ? fileURLToPath(module) : module;
  return Object.freeze({ filename, name });
}

/** Allocates `byteLength` zeroed bytes of shared memory. Not for the hot path. */
export function sharedBytes(byteLength: number): SharedBytes {
  return new Uint8Array(new SharedArrayBuffer(byteLength)) as SharedBytes;
}

export interface WorkerPoolOptions {
  /** Worker threads; default: the CPU count. */
  threads?: number;
  /** Milliseconds an idle worker lives before it exits. */
  idleTimeoutMs?: number;
}

export class WorkerPool {
  private readonly piscina: Piscina;
  private closed = false;

  constructor(options: WorkerPoolOptions = {}) {
    const threads = options.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw raError('RA_ERR_CONFIG', `agent.workers must be a positive integer (got ${JSON.stringify(threads)})`);
    }
    this.piscina = new Piscina({
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: options.idleTimeoutMs ?? 60_000,
    });
  }

  /** Number of worker threads. */
  get threads(): number {
    return this.piscina.options.maxThreads;
  }

  /** Tasks queued, waiting for a free worker. */
  get queued(): number {
    return this.piscina.queueSize;
  }

  /** Runs one task on a worker. Rejects if a payload view is not on a SharedArrayBuffer. */
  run<I extends TaskPayload, O>(task: TaskRef<I, O>, input: I, options: { signal?: AbortSignal } = {}): Promise<O> {
    if (this.closed) return Promise.reject(raError('RA_ERR_POOL_CLOSED', `worker pool is closed; cannot run ${task.name} from ${task.filename}`));
    try {
      assertShared(input, 'payload');
    } catch (err) {
      return Promise.reject(err);
    }
    return this.piscina.run(input, { filename: task.filename, name: task.name, signal: options.signal ?? null }) as Promise<O>;
  }

  /** Waits for running tasks, then stops every worker. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.piscina.close();
  }
}

function assertShared(value: unknown, path: string, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (ArrayBuffer.isView(value)) {
    if (!(value.buffer instanceof SharedArrayBuffer)) {
      throw raError('RA_ERR_TASK_PAYLOAD', `${path} is a ${value.constructor.name} on an ArrayBuffer, which would be copied to the worker; expected a view on a SharedArrayBuffer (use sharedBytes())`);
    }
    return;
  }
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    throw raError('RA_ERR_TASK_PAYLOAD', `${path} is a raw ${value.constructor.name}; expected a typed-array view on a SharedArrayBuffer`);
  }
  for (const [k, v] of Object.entries(value)) assertShared(v, `${path}.${k}`, depth + 1);
}

/**
 * The one worker pool for hot work: a piscina pool owned by the core and shared by plugins.
 *
 * Task payloads carry their bulk data as views on SharedArrayBuffers, which cross to the worker
 * by reference (postMessage shares a SharedArrayBuffer; it never copies it). A view on an
 * ordinary ArrayBuffer would be copied, silently doubling memory traffic on a hot path, so
 * `run` refuses it with RA_ERR_TASK_PAYLOAD.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { pathToFileURL } from 'node:url';
import type { Piscina } from 'piscina';
import { raError } from './errors.js';
import type { SharedBytes, TaskPayload, TaskRef } from './taskRef.js';

// Declaring a task needs no pool: the declarations live in taskRef.ts, which loads nothing, so
// a module that names its tasks does not load piscina with them.
export { defineTask, type SharedBytes, type TaskPayload, type TaskRef, type TaskValue } from './taskRef.js';

/** Allocates `byteLength` zeroed bytes of shared memory. Not for the hot path. */
export function sharedBytes(byteLength: number): SharedBytes {
  return new Uint8Array(new SharedArrayBuffer(byteLength)) as SharedBytes;
}

export interface WorkerPoolOptions {
  /** Worker threads; default: the CPU count. */
  threads?: number;
  /** Milliseconds an idle worker lives before it exits. */
  idleTimeoutMs?: number;
  /**
   * A task (defineTask) whose module each worker imports as it starts, while the caller goes on:
   * the first run of it then finds the module loaded. A process that makes its pool first thing
   * and names its hot task here (a store's restart: the redo task, see bench/fixtures/tpcbStore.ts)
   * has the workers' start-up overlap its own module loading instead of its recovery.
   */
  preload?: Pick<TaskRef<TaskPayload, unknown>, 'filename'>;
}

/**
 * Piscina, loaded when the first pool is made: ~20 modules that a process importing the core (or
 * the page store, whose recovery names its tasks) without making a pool never needs — every
 * supervised application that opens a store restarts without them.
 */
let piscinaClass: typeof Piscina | undefined;
function loadPiscina(): typeof Piscina {
  piscinaClass ??= (createRequire(import.meta.url)('piscina') as typeof import('piscina')).Piscina;
  return piscinaClass;
}

export class WorkerPool {
  private readonly piscina: Piscina;
  private closed = false;

  constructor(options: WorkerPoolOptions = {}) {
    const threads = options.threads ?? os.availableParallelism();
    if (!Number.isInteger(threads) || threads < 1) {
      throw raError('RA_ERR_CONFIG', `agent.workers must be a positive integer (got ${JSON.stringify(threads)})`);
    }
    this.piscina = new (loadPiscina())({
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: options.idleTimeoutMs ?? 60_000,
      // Piscina loads its default task file as each worker starts (run() always names its own):
      // ours imports the preload, and survives one that fails (workerPreload.ts).
      ...(options.preload ? { filename: new URL('./workerPreload.js', import.meta.url).href, workerData: { preload: pathToFileURL(options.preload.filename).href } } : {}),
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

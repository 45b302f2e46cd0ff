/**
 * Declaring worker-pool tasks, apart from the pool (workerPool.ts): a module names its task
 * functions with `defineTask` at load time, and importing it must not start or load the pool
 * (piscina), which a caller may not need (the scanner on the calling thread) or may load later.
 */
import { fileURLToPath } from 'node:url';

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

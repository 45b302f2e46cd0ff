/**
 * Piscina's start-up module for a pool made with `preload` (workerPool.ts): each worker imports
 * the module named in its workerData as it starts. A module that fails to load is left alone
 * here — the first task from it fails with that error, as it would without a preload — so a bad
 * preload never takes a worker (or the pool's owner) down. One that has not loaded after
 * kPreloadWaitMs (a top-level await that never settles) is waited for no longer: the worker
 * reports ready and serves the pool's other tasks.
 *
 * While it loads, the module can neither end the thread (process.exit throws instead, failing
 * its load) nor throw from a timer or a promise (swallowed): piscina stops replacing workers
 * that fail before reporting ready, leaving queued tasks waiting for ever, and emits a worker's
 * error that no task owns on the pool, where it would end the owner's process.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { workerData } from 'node:worker_threads';

const kPreloadWaitMs = 5_000;

const target = (workerData as { preload?: unknown } | null | undefined)?.preload;
if (typeof target === 'string') {
  const exit = process.exit;
  const swallow = (): void => undefined;
  process.exit = ((code?: number | string | null) => {
    throw new Error(`preload ${target} called process.exit(${code ?? ''}) while loading`);
  }) as typeof process.exit;
  process.on('uncaughtException', swallow);
  process.on('unhandledRejection', swallow);
  try {
    await Promise.race([import(target).catch(() => undefined), sleep(kPreloadWaitMs, undefined, { ref: false })]);
  } finally {
    process.exit = exit;
    process.off('uncaughtException', swallow);
    process.off('unhandledRejection', swallow);
  }
}

/** Piscina wants a handler from its start-up module; no task runs it (run() names its own module). */
export default function preloaded(): void {}

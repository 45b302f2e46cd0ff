import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/**
 * A storage engine the agent protects (the reference one is the `pagestore` plugin). Engines are
 * looked up by `name`, the `engine:` of a store in the config.
 */

/** What an engine tells about a store on disk. */
export interface StoreDescription {
  readonly engine: string;
  readonly path: string;
  readonly pageSize: number;
  readonly pageCount: number;
}

/** Statistics of one crash recovery, for logs and metrics. */
export interface RecoveryReport {
  readonly transactionsRolledBack: number;
  readonly recordsRedone: number;
  readonly recordsUndone: number;
  readonly walBytesRead: number;
  readonly durationMs: number;
  readonly [detail: string]: unknown;
}

/** A storage engine: describes a store and brings one back to a consistent state. */
export interface StorageEngine {
  /** The engine's name, as written in `stores[].engine`. */
  readonly name: string;
  /** Reads a store's geometry without changing it. */
  describe(storePath: string): Promise<StoreDescription>;
  /**
   * Brings a store that no process has open to a consistent state: redo what was committed,
   * undo what was not. Idempotent; safe to interrupt and run again.
   */
  recover(storePath: string): Promise<RecoveryReport>;
}

/** Token under which every engine plugin provides its `StorageEngine`. */
export const StorageEngine: InjectionToken<StorageEngine> = createToken<StorageEngine>('recovery-agent.StorageEngine');

/** Runtime guard: true when `v` implements `StorageEngine`. */
export function isStorageEngine(v: unknown): v is StorageEngine {
  const e = v as StorageEngine | null;
  return typeof e === 'object' && e !== null && typeof e.name === 'string' && e.name.length > 0 &&
    typeof e.describe === 'function' && typeof e.recover === 'function';
}

/**
 * Rebuilding a configured store at another path from its snapshots and WAL archive, as a service
 * (the snapshot manager provides it for the stores with `snapshots.dir`; the redirect-store
 * action uses it to move a store off a failed disk).
 */
import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

export interface StoreRestoreOptions {
  /**
   * The failed store's directory: segments of its live log that can still be read (checked
   * record by record, cut at the first that fails) continue the archived WAL, so commits not yet
   * archived are not lost when the disk still reads. Unreadable: the archive alone is restored.
   */
  readonly salvageFrom?: string;
  readonly signal?: AbortSignal;
}

export interface StoreRestoreResult {
  /** The snapshot chain restored, oldest first. */
  readonly snapshots: readonly string[];
  /** The end of the log replayed. */
  readonly endLsn: number;
  /** The last commit replayed, or null when the replayed log holds none. */
  readonly lastCommit: { readonly lsn: number; readonly txId: number; readonly time: number | null } | null;
  /** Log bytes taken from the failed store's own log (beyond the archive); 0 when none could be read. */
  readonly salvagedBytes: number;
  readonly pagesVerified: number;
  readonly durationMs: number;
}

export interface StoreRestorer {
  /** True when the store has snapshots to restore from (`snapshots.dir`). */
  canRestore(storeId: string): boolean;
  /**
   * Restores the newest snapshot chain and the WAL after it into `to` (replacing what is there;
   * refused while a live process holds it), verifies every page, and makes the restored store
   * archive into the same place. Throws with the restore's error (a gap, no snapshot, damage).
   */
  restoreTo(storeId: string, to: string, options?: StoreRestoreOptions): Promise<StoreRestoreResult>;
}

export const StoreRestorer: InjectionToken<StoreRestorer> = createToken<StoreRestorer>('recovery-agent.StoreRestorer');

/** Runtime guard: true when `v` implements `StoreRestorer`. */
export function isStoreRestorer(v: unknown): v is StoreRestorer {
  const r = v as StoreRestorer | null;
  return typeof r === 'object' && r !== null && typeof r.canRestore === 'function' && typeof r.restoreTo === 'function';
}

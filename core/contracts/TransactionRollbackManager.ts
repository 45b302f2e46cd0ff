/**
 * Crash recovery of the configured stores as a service: the transaction-rollback plugin brings
 * each store back to a consistent state at start and on request, and other plugins (the
 * recover-store healing action) ask it through this contract.
 */
import type { InjectionToken } from 'tsyringe';
import type { RecoveryReport } from './StorageEngine.js';
import { createToken } from '../token.js';

/** Statistics for metrics and `/status`. */
export interface RollbackStats {
  recoveries: number;
  failures: number;
  skippedLocked: number;
  transactionsRolledBack: number;
  recordsUndone: number;
  recordsRedone: number;
  lastDurationMs: number;
  totalDurationMs: number;
  /** The last report per store id. */
  lastReport: Record<string, RecoveryReport>;
}

/** What `recoverStore` did. */
export type RecoverOutcome =
  | { status: 'recovered'; report: RecoveryReport }
  /** A live process holds the store's lock: its owner recovered it when it opened it. */
  | { status: 'locked'; pid?: number }
  /** The store does not exist (yet). */
  | { status: 'missing' };

export interface TransactionRollbackManager {
  /** Recovers one configured store now. */
  recoverStore(storeId: string): Promise<RecoverOutcome>;
  stats(): Readonly<RollbackStats>;
}

/** Token under which the plugin provides its manager (the orchestrator's recover-store action uses it). */
export const TransactionRollbackManager: InjectionToken<TransactionRollbackManager> = createToken<TransactionRollbackManager>('recovery-agent.TransactionRollbackManager');

/** Runtime guard: true when `v` implements `TransactionRollbackManager`. */
export function isTransactionRollbackManager(v: unknown): v is TransactionRollbackManager {
  const m = v as TransactionRollbackManager | null;
  return typeof m === 'object' && m !== null && typeof m.recoverStore === 'function' && typeof m.stats === 'function';
}

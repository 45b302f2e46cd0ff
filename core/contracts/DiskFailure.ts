/**
 * The `disk-failure` failure (P1, subject `store:<id>`): a store's owner reports that its log
 * broke on an I/O error of the disk (`EIO`) — not on a full disk (`ENOSPC`, which the health
 * monitor's space probes and `checkpoint-store` answer). Healed by failing over to a replica
 * (`cluster-failover`, a clustered store) or by moving the store to its spare path
 * (`redirect-store`).
 */
export const DISK_FAILURE = 'disk-failure';

/** The system errors that mean the disk failed, not that it filled up or was refused. */
export const DISK_ERRNOS: readonly string[] = ['EIO'];

/** Evidence of a `disk-failure`. */
export interface DiskFailureEvidence {
  readonly store: string;
  /** The store's path on the failed disk. */
  readonly path: string;
  /** The owner that reported it. */
  readonly pid: number;
  readonly errno: string;
  /** The store's error code (`RA_ERR_WAL_WRITE`, …) and message. */
  readonly code: string;
  readonly message: string;
  /** The owner's durable log end when it reported: commits acknowledged up to here. */
  readonly flushedLsn: number;
}

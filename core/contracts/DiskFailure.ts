/**
 * The `disk-failure` failure (P1, subject `store:<id>`): a store's owner reports that its log
 * broke on an I/O error of the disk (`EIO`) — not on a full disk (`ENOSPC`, which the health
 * monitor's space probes and `checkpoint-store` answer). Healed by failing over to a replica
 * (`cluster-failover`, a clustered store) or by moving the store to its spare path
 * (`redirect-store`).
 */
export const DISK_FAILURE = 'disk-failure';

/**
 * The system errors that mean the disk failed, not that it filled up or was refused: `EIO`, and
 * `EROFS` — the kernel turns a filesystem read-only after I/O errors under it (ext4's
 * `errors=remount-ro`), so a store found read-only is on the same failed disk.
 */
export const DISK_ERRNOS: readonly string[] = ['EIO', 'EROFS'];

/** Evidence of a `disk-failure`. */
export interface DiskFailureEvidence {
  readonly store: string;
  /** The store's path on the failed disk. */
  readonly path: string;
  /** How it was seen: the store's owner reported its log broken, or the agent's own probe write failed (no owner up). */
  readonly seenBy: 'owner' | 'probe';
  /** The owner that reported it; null for a probe. */
  readonly pid: number | null;
  readonly errno: string;
  /** The store's error code (`RA_ERR_WAL_WRITE`, …; `probe` for a probe) and message. */
  readonly code: string;
  readonly message: string;
  /** The owner's durable log end when it reported: commits acknowledged up to here; null for a probe. */
  readonly flushedLsn: number | null;
}

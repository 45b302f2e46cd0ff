/**
 * The page store's public types: how to open one, and what its checkpoint, status and page
 * repair report (the control socket sends these as they are).
 */
import type { Logger } from 'pino';
import type { WorkerPool } from '../../core/workerPool.js';
import type { WalArchiver } from './checkpoint.js';
import type { FenceStatus } from './commitFence.js';
import type { ReplicationStatus } from './replicationSender.js';

export interface PageStoreOptions {
  /** Create the store if the directory holds none. */
  create?: boolean;
  /** For a new store: pages, including the superblock (page 0). */
  pageCount?: number;
  /** For a new store: 4096–65536, a power of two. Default 8192. */
  pageSize?: number;
  /** For a new store: WAL segment size in bytes. Default 16 MiB. */
  segmentSize?: number;
  /** Worker pool for parallel redo when opening runs recovery. */
  pool?: WorkerPool;
  /** Checkpoint once this much WAL has been written since the last one. Default 64 MiB. */
  checkpointWalBytes?: number;
  /** Also checkpoint on this interval (ms); 0 turns it off. Default 5 minutes. */
  checkpointIntervalMs?: number;
  /** Clean pages kept in memory, in bytes. Default 64 MiB. */
  cacheBytes?: number;
  /** Called with each WAL segment before it is recycled (archiving). */
  archiver?: WalArchiver;
  /** Called when a page read from disk fails verification. */
  onCorruptPage?: (pageId: number, reason: string) => void;
  /**
   * Serve the store's control socket (`control.sock` in the store directory: status,
   * checkpoint, read a page, write a verified page), through which the agent checkpoints and
   * repairs a store while its owner has it open. Default true.
   */
  controlSocket?: boolean;
  log?: Logger;
}

export interface CheckpointStats {
  lsn: number;
  redoLsn: number;
  pagesWritten: number;
  segmentsRecycled: number;
  durationMs: number;
}

/** What `status()` and the control socket's `status` report. */
export interface StoreStatus {
  pid: number;
  storeId: string;
  pageSize: number;
  pageCount: number;
  endLsn: number;
  flushedLsn: number;
  redoLsn: number;
  activeTransactions: number;
  /** Lock requests waiting behind another transaction's lock now. */
  lockWaits: number;
  /** Transactions committed since the store was opened: only grows (a work probe: is the owner committing?). */
  commits: number;
  aborts: number;
  checkpoints: number;
  /** Pages cached (`dirty` of them changed since the last checkpoint; `bytes` their memory). */
  cache: { pages: number; dirty: number; bytes: number; loads: number; hits: number; evictions: number; corrupt: number };
  /** When the store is a replication primary (replication.json): its epoch, flushed LSN, replicas and sync state. */
  replication?: ReplicationStatus;
  /** A clustered primary's commit fence (commitFence.ts). */
  fence?: FenceStatus;
  /** Set once the store's log cannot be written (it must be reopened): the error and its system error code (`EIO`, `ENOSPC`…). */
  broken?: BrokenStatus;
}

/** Why a store's log is broken for good, as its owner reports it. */
export interface BrokenStatus {
  code: string;
  /** The system error code under it (`EIO`, `ENOSPC`, …), null when none. */
  errno: string | null;
  message: string;
}

/** What `drop-caches` let go: clean cached pages, and their bytes. */
export interface DropCachesResult {
  pagesDropped: number;
  bytesReleased: number;
  pagesBefore: number;
  pagesAfter: number;
}

/** What `repairPage` did: wrote the caller's verified image, or the store's own cached copy. */
/** A page a replica gave (the control socket's `replica-page`), verified by the owner. */
export interface ReplicaPageCopy {
  pageId: number;
  image: Buffer;
  lsn: number;
  /** The replica's id. */
  replica: string;
}

/**
 * One page's answer in a batch (`page-states`, `replica-pages`, `write-pages`): what was asked of
 * it, or why not — a page refused does not fail the others.
 */
export type PageBatchAnswer<T> = (T & { pageId: number; error?: undefined }) | { pageId: number; error: { code: string; message: string; reason?: string } };

/** A page as its owner sees it, without the image (`page-states`): cached, or its fault on disk. */
export interface PageState {
  pageId: number;
  cached: boolean;
  fault: string | null;
  /** The LSN of the copy seen (the cached one, or on disk; 0 when it is unreadable). */
  lsn: number;
}

export interface PageRepair {
  pageId: number;
  source: 'image' | 'cache';
  lsn: number;
}

/**
 * The face of a page engine: what the other plugins (scanner, snapshots, repairer, health
 * probes, checkpoint-store, recovery) need from a store, and all they may use of it. A
 * `StorageEngine` that also offers this face is a `PageEngine`; consumers find the engine of a
 * store by contract (`isPageEngine`), never by its name or by importing its files.
 *
 * The model it describes, which any engine behind it must map itself onto:
 *
 *   - A store is a directory. Its data are fixed-size **pages** numbered from 0 in one data file;
 *     page 0 describes the store. Every page carries its own id, its LSN (the log position of the
 *     last change applied to it, a little-endian u64 at `pages.lsnOffset`) and a checksum, so a
 *     page can be verified alone (`pages.verify`).
 *   - Changes are logged before they reach pages, in a **log** addressed by LSN (byte position):
 *     segment files of `segmentSize` bytes, each opening with a header of `log.segmentHeaderSize`
 *     bytes, then records. Each record carries its length, its LSN and, when it changes a page,
 *     the page's id. A page is rebuilt from an older image of it plus its records in LSN order
 *     (`log.applyToPage`).
 *   - The store's **state** (`StoreState`) says where the last checkpoint is (recovery replays
 *     the log from `redoLsn`) and the geometry; it is replaced atomically at each checkpoint.
 *   - A store opened by an application has a **live owner**; only the owner may write its files,
 *     and other processes ask it (`owner`) to checkpoint, to hand over a cached page, or to
 *     install a verified page. A store nobody has open is taken with `files.lock`.
 *
 * The reference engine is `plugins/pagestore`; its byte layouts are documented in one place,
 * `plugins/pagestore/FORMAT.md`.
 */
import type { FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { InjectionToken } from 'tsyringe';
import type { StorageEngine, RecoveryReport } from './StorageEngine.js';
import type { WorkerPool } from '../workerPool.js';
import type { ReplicationChannel } from '../replication/protocol.js';
import { createToken } from '../token.js';

/** What a store records about itself: geometry and where recovery starts. */
export interface StoreState {
  /** LSN of the last complete checkpoint's record. */
  readonly checkpointLsn: number;
  /** Where redo starts: no change older than this is missing from the data file. */
  readonly redoLsn: number;
  /** The next transaction id to hand out. */
  readonly nextTxId: number;
  readonly pageSize: number;
  /** Pages in the data file, page 0 included. */
  readonly pageCount: number;
  /** Bytes per log segment. */
  readonly segmentSize: number;
  /** 16 bytes naming the store; log segments carry it so a segment of another store is refused. */
  readonly storeId: Uint8Array;
}

/** How pages are laid out and checked. */
export interface PageLayout {
  /** Bytes of header at the start of each page (the rest is the application's). */
  readonly headerSize: number;
  /** Offset of the page's LSN (little-endian u64) in its header. */
  readonly lsnOffset: number;
  /** True for a page size this engine can have. */
  isValidPageSize(size: number): boolean;
  /** Why `image` is not a sound copy of page `pageId` (`checksum`, `magic`, `page-id`, …), or null. */
  verify(image: Uint8Array, pageId: number): string | null;
  /** The page's LSN. */
  lsn(image: Uint8Array): number;
  /** Reads page `pageId` of an open data file and verifies it; `short-read` past the end. */
  readPage(data: FileHandle, pageId: number, pageSize: number): Promise<{ image: Buffer; fault: string | null }>;
  /** Seals (checksums) and writes page images to an open data file, then syncs it. */
  writePages(data: FileHandle, pageSize: number, pages: ReadonlyArray<{ pageId: number; image: Uint8Array }>): Promise<void>;
  /**
   * Page size and count read from page 0 alone, when it looks like this engine's first page,
   * else null: the geometry of a store whose state is lost. Reads only the first bytes.
   */
  readFirstPageGeometry(dataFile: string): Promise<{ pageSize: number; pageCount: number } | null>;
  /** What makes a sound page 0 not this store's first page (another store's, other geometry), or null. */
  firstPageProblem(page0: Uint8Array, state: StoreState): string | null;
}

/** Kinds of log record a consumer tells apart. */
export type LogRecordKind = 'page' | 'commit' | 'abort' | 'checkpoint' | 'other';

/** A checkpoint record's content: where redo starts and what was in flight. */
export interface CheckpointContent {
  readonly redoLsn: number;
  readonly nextTxId: number;
  /** Transactions active at the checkpoint: [txId, firstLsn, lastLsn]. */
  readonly activeTransactions: ReadonlyArray<readonly [number, number, number]>;
  /** Pages dirty at the checkpoint: [pageId, recLsn]. */
  readonly dirtyPages: ReadonlyArray<readonly [number, number]>;
}

/** How the log is cut into segments and records, read without the engine's own process. */
export interface LogLayout {
  /** Bytes of header at the start of every segment; records follow. */
  readonly segmentHeaderSize: number;
  /** The file name of the segment starting at LSN `start` (no directory). */
  segmentName(start: number): string;
  /** The start LSN a segment file name stands for, or null for a name that is not a segment's. */
  segmentStartOfName(name: string): number | null;
  /** The start of the segment holding `lsn`. */
  segmentStartOf(lsn: number, segmentSize: number): number;
  /** Start LSNs of the segments in `logDir`, ascending (empty when there is none or no directory). */
  listSegments(logDir: string): Promise<number[]>;
  /** Why `header` is not the header of this store's segment starting at `start`, or null. */
  checkSegmentHeader(header: Uint8Array, storeId: Uint8Array, start: number, segmentSize: number): string | null;
  /**
   * How many bytes of a segment file (`bytes`, its content from byte 0; header checked) can hold
   * records — a log whose files are made at full size leaves their unwritten tail off — and why
   * the file (`fileBytes` long) is shorter than it must be (cut: records made durable may be
   * gone), or null. Readers that take a segment's bytes up to its last record use `length`.
   */
  segmentContent(bytes: Uint8Array, fileBytes: number, segmentSize: number): { length: number; cut: string | null };
  /**
   * The bytes of a segment file holding segment bytes `bytes` (header first, up to its last
   * record): a segment made at full size is written at full size again (zeros after the
   * records), so that a copy (a restore's) stays the log's own, byte for byte.
   */
  segmentFile(bytes: Uint8Array, segmentSize: number): Uint8Array;
  /**
   * Since contract 1.5.0, optional: the length of that file. A copy writes `bytes` and extends
   * the file to this length (a hole, which reads as zeros) instead of writing `segmentFile`'s
   * zeros. An engine without it is copied through `segmentFile`.
   */
  segmentFileSize?(bytes: Uint8Array, segmentSize: number): number;
  /**
   * Walks the valid records of `buf` from position `from` (whose record has LSN `lsn`) up to
   * `end`, calling `visit(position)` for each; returns where the valid records end.
   */
  scanRecords(buf: Uint8Array, from: number, end: number, lsn: number, visit?: (at: number) => void): number;
  /** Like `scanRecords` to the end of `buf`, but visits only records that change a page, with its id. */
  forEachPageRecord(buf: Uint8Array, from: number, lsn: number, visit: (at: number, pageId: number) => void): number;
  /** Bytes the (valid) record at `at` takes. */
  recordLength(buf: Uint8Array, at: number): number;
  /**
   * For the evidence of damage: the checksum the record at `at` stores and the one its bytes
   * have (16 hex digits each), valid or not, or null when its length does not frame a record
   * inside `buf`. Optional: an engine without it is reported without checksums.
   */
  recordChecksums?(buf: Uint8Array, at: number): { stored: string; computed: string; length: number } | null;
  /**
   * The epoch a (checked) segment header records (a replication promotion starts a new epoch in
   * a new segment, leaving the old one's last segment short). Optional: without it a checker
   * cannot tell such a segment from one that lost its tail.
   */
  segmentEpoch?(header: Uint8Array): number;
  /** The LSN of the (valid) record at `at`. */
  recordLsn(buf: Uint8Array, at: number): number;
  /** What the (valid) record at `at` is. */
  recordKind(buf: Uint8Array, at: number): LogRecordKind;
  /** The transaction the (valid) record at `at` belongs to (0 for none, e.g. a checkpoint). */
  recordTxId(buf: Uint8Array, at: number): number;
  /**
   * The wall-clock time (ms since the epoch) a (valid) commit record at `at` carries, or null
   * when it carries none (a log written before commits carried their time).
   */
  commitTime(buf: Uint8Array, at: number): number | null;
  /** The page the record at `at` changes, or null when it changes none. */
  recordPageId(buf: Uint8Array, at: number): number | null;
  /** The content of the checkpoint record at `at` (`recordKind` 'checkpoint'). */
  decodeCheckpoint(buf: Uint8Array, at: number, pageSize: number): CheckpointContent;
  /** Reads and checks the one record at `lsn` from a store's log directory. */
  readRecord(logDir: string, state: Pick<StoreState, 'storeId' | 'segmentSize'>, lsn: number): Promise<Uint8Array>;
  /**
   * Applies the page records at `positions` of `buf` (in LSN order) to `image`, a copy of page
   * `pageId` of `pageSize` bytes; records older than the image's LSN are skipped. Returns how
   * many were applied. The image is left sealed (its checksum valid) when any was.
   */
  applyToPage(image: Uint8Array, pageId: number, pageSize: number, buf: Uint8Array, positions: readonly number[]): number;
}

/** A WAL segment about to be recycled, handed to the store's archiver. */
export interface RetiredSegment {
  readonly file: string;
  readonly startLsn: number;
  readonly endLsn: number;
}

/**
 * Called with each log segment before the engine recycles it; if it throws, the segment is
 * kept for the next checkpoint. `target` names where it archives (an absolute directory): the
 * store remembers it and, once it does, recycles no segment without an archiver.
 */
export type LogArchiver = ((segment: RetiredSegment) => Promise<void>) & { readonly target?: string };

/** Offered by a plugin that archives logs (the snapshot manager): the archiver for a store, if any. */
export interface LogArchiverSource {
  /**
   * The archiver for the store at `storePath`: the one its config names, else one for
   * `remembered` (the archive the store itself remembers), else none.
   */
  archiverFor(storePath: string, remembered?: string | null): LogArchiver | undefined;
}

/** Token under which the archiving plugin provides its `LogArchiverSource`. */
export const LogArchiverSource: InjectionToken<LogArchiverSource> = createToken<LogArchiverSource>('recovery-agent.LogArchiverSource');

/** The files of a store, for processes that are not its owner. */
export interface StoreFiles {
  /** True when `dir` holds a store of this engine (cheap: no full read). */
  exists(dir: string): boolean;
  dataFile(dir: string): string;
  logDir(dir: string): string;
  /** The store's state; RA_ERR_STORE_NOT_FOUND / RA_ERR_STORE_INVALID when absent or damaged. */
  readState(dir: string): Promise<StoreState>;
  /** Replaces the store's state atomically (only under the store lock, or in a staging copy). */
  writeState(dir: string, state: StoreState): Promise<void>;
  /** Takes the store's lock; RA_ERR_STORE_LOCKED when a live process holds it. */
  lock(dir: string): Promise<{ release(): Promise<void> }>;
  /** The pid of the live process holding the store's lock, or null; read-only (takes nothing). */
  lockHolder(dir: string): Promise<number | null>;
  /** Puts the complete store in `staging` in place of `to` atomically (a crash leaves one or the other). */
  swapIn(staging: string, to: string): Promise<void>;
  /** Finishes or undoes a swap a crash interrupted; what it did. */
  settleSwap(to: string): Promise<'none' | 'finished' | 'completed'>;
  /** The archive directory the store remembers (its archiver's target), or null. */
  rememberedArchive(dir: string): Promise<string | null>;
}

/** How much log a store holds since its last checkpoint, read from its files. */
export interface LogUsage {
  readonly redoLsn: number;
  readonly endLsn: number;
  /** endLsn − redoLsn: what crash recovery would replay, and what a checkpoint lets go. */
  readonly sinceCheckpointBytes: number;
  readonly segments: number;
  readonly segmentSize: number;
  /** When the last checkpoint was written, ms since the epoch. */
  readonly checkpointAt: number;
}

/** What a live owner reports about its store. */
export interface OwnerStatus {
  readonly pid: number;
  readonly pageSize: number;
  readonly pageCount: number;
  readonly endLsn: number;
  readonly flushedLsn: number;
  readonly redoLsn: number;
  readonly activeTransactions: number;
  /** Lock requests waiting behind another transaction's lock (optional: older owners). */
  readonly lockWaits?: number;
  /** Transactions committed since the owner opened the store, only growing (how an application is seen to commit). */
  readonly commits?: number;
  /** The owner's page cache: pages held, how many are dirty, their bytes (optional: older owners). */
  readonly cache?: { readonly pages: number; readonly dirty?: number; readonly bytes?: number };
  /** When the store is a replication primary: its sender's state (plugins/replication/DESIGN.md). */
  readonly replication?: OwnerReplicationStatus;
  /** A clustered primary's commit fence: commits are acknowledged only under a valid lease grant. */
  readonly fence?: { readonly enabled: boolean; readonly epoch: number; readonly remainingNs: string | null; readonly waiting: number; readonly refused: number };
  /**
   * Set once the store's log cannot be written (a failed WAL write, fdatasync or checkpoint):
   * nothing more is acknowledged until it is reopened. `errno` is the system error under it
   * (`EIO`: the disk failed; `ENOSPC`: it is full), null when none.
   */
  readonly broken?: { readonly code: string; readonly errno: string | null; readonly message: string };
}

/** A replication primary's sender, as its owner reports it. */
export interface OwnerReplicationStatus {
  readonly role: 'primary';
  readonly epoch: number;
  readonly listen: string;
  readonly mode: 'async' | 'sync';
  readonly flushedLsn: number;
  readonly syncState: string;
  readonly replicas: ReadonlyArray<{
    readonly id: string;
    readonly address: string;
    readonly state: string;
    readonly durableLsn: number;
    readonly appliedLsn: number;
    readonly lagBytes: number;
    readonly lastAckAt: number | null;
    readonly error?: string;
  }>;
}

/**
 * One page's answer in a batch asked of a live owner: the value, or the error of this page alone
 * (the others go on). Answers come in the order the pages were named.
 */
export type PageBatchResult<T> = { readonly pageId: number; readonly value: T; readonly error?: undefined } | { readonly pageId: number; readonly error: Error };

/** The process that has a store open, asked through the engine's channel to it. */
export interface LiveOwner {
  status(): Promise<OwnerStatus>;
  /** Checkpoints now; answers once the checkpoint is durable. */
  checkpoint(): Promise<{ lsn: number; redoLsn: number; pagesWritten: number; durationMs: number }>;
  /** The page as the owner sees it: its cached copy (`cached`), else the disk copy and its fault. */
  readPage(pageId: number): Promise<{ image: Buffer; cached: boolean; fault: string | null }>;
  /**
   * Asks the owner to write `image` (which it verifies, and refuses when stale) or, with none,
   * its cached copy of the page. `asOfLsn`: the image holds every record for the page below this
   * durable LSN of the owner's (`SourcedPage.asOfLsn`), so the owner does not hold it against the
   * LSN in the bad copy's header when that header is torn (its identity fields garbage too).
   */
  installPage(pageId: number, image?: Uint8Array, asOfLsn?: number): Promise<{ pageId: number; source: 'image' | 'cache'; lsn: number }>;
  /**
   * A replication primary's owner asks its replicas for page `pageId` (the lowest-lag streaming
   * one first, made to apply its log up to the owner's flushed LSN) and returns the first copy
   * that verifies and is not older than the newest change the owner knows of for the page;
   * writes nothing. Fails saying what each replica answered, or that the store has none.
   */
  replicaPage(pageId: number): Promise<{ image: Buffer; lsn: number; replica: string }>;
  /**
   * Batches, for a burst of corrupt pages (optional: an owner without them is asked page by
   * page). Each page is checked as alone; the requests are cut to fit the channel.
   * `pageStates`: `readPage` without the images (the LSN of the copy seen instead).
   */
  pageStates?(pageIds: readonly number[]): Promise<Array<PageBatchResult<{ cached: boolean; fault: string | null; lsn: number }>>>;
  /** `replicaPage` for many pages, asked of the replica together. */
  replicaPages?(pageIds: readonly number[]): Promise<Array<PageBatchResult<{ image: Buffer; lsn: number; replica: string }>>>;
  /** `installPage` for many pages, written with one data-file sync per request. */
  installPages?(pages: ReadonlyArray<{ pageId: number; image?: Uint8Array; asOfLsn?: number }>): Promise<Array<PageBatchResult<{ source: 'image' | 'cache'; lsn: number }>>>;
  /**
   * Memory pressure: the owner lets go of what it can (its clean cached pages) and says how
   * much; dirty pages stay until a checkpoint. Optional: an owner without it is not asked.
   */
  dropCaches?(): Promise<{ pagesDropped: number; bytesReleased: number; pagesBefore: number; pagesAfter: number }>;
  /** The actions the application registered on its store's channel (name, description). */
  appActions?(): Promise<Array<{ name: string; description: string | null }>>;
  /**
   * Runs one phase of an application action, bounded by `timeoutMs` in the owner: `apply`
   * answers what the action returned (JSON), `verify` true or false. A throwing or overrunning
   * action is an error naming it (RA_ERR_APP_ACTION, RA_ERR_APP_ACTION_TIMEOUT).
   */
  runAppAction?(name: string, phase: 'apply' | 'verify', options?: Record<string, unknown>, timeoutMs?: number): Promise<unknown>;
  /** True once the channel has failed or been closed: the connection is not to be used again. */
  readonly closed?: boolean;
  /**
   * A clustered primary's owner (`"fenced": true`) acknowledges commits only until `untilNs`
   * (`process.hrtime.bigint()`, CLOCK_MONOTONIC, shared by the host's processes): the agent's
   * leadership lease for `epoch`, granted after each keepalive. A grant never shortens an
   * earlier one; one for another epoch is refused (RA_ERR_FENCED).
   */
  grantLease(epoch: number, untilNs: bigint): Promise<{ untilNs: string; remainingNs: string }>;
  close(): void;
}

/** A storage engine with the page face. */
export interface PageEngine extends StorageEngine {
  readonly pages: PageLayout;
  readonly log: LogLayout;
  readonly files: StoreFiles;
  /**
   * Connects to the live owner of the store in `dir`; RA_ERR_CONTROL_UNAVAILABLE when no
   * process serves it (nobody has the store open, or its owner runs without the channel).
   */
  connectOwner(dir: string, options?: { timeoutMs?: number }): Promise<LiveOwner>;
  /** The store's log usage since its last checkpoint, without opening it. */
  logUsage(dir: string): Promise<LogUsage>;
  /** What would make crash recovery refuse the store (read-only), or null. */
  recoveryProblem(dir: string): Promise<string | null>;
  /**
   * What crash recovery would still have to do to a store nobody has open (read-only), or null
   * when nothing: how a recovery is verified without running another.
   */
  recoveryPending(dir: string): Promise<string | null>;
  /**
   * Crash recovery of a store nobody has open (RA_ERR_STORE_LOCKED when a live process holds
   * it), with the archiver to hand retired segments to and the pool to redo on (see
   * PageRecoverOptions). It ends with a checkpoint: the log before the new redo point is
   * retired (archived first, when there is an archiver), which is how a store nobody has open
   * is checkpointed.
   */
  recover(dir: string, options?: PageRecoverOptions): Promise<PageRecoveryReport>;
  /** The replica side of physical replication (plugins/replication/DESIGN.md). */
  readonly replica: ReplicaEngine;
}

// --- The replica's side of replication (#14) -------------------------------------------------

/**
 * How a store is run as a physical replica: its log is the primary's, byte for byte (same LSNs,
 * same segments), appended as it arrives and applied to its pages by the crash recovery's redo.
 */
export interface ReplicaEngine {
  /**
   * Takes the store's lock (RA_ERR_STORE_LOCKED when a live process holds it) and runs redo only
   * (no undo, no checkpoint: nothing is written to the log) from the store's restartpoint to the
   * end of its log, which is the replica's durable position.
   */
  openReplica(dir: string, options?: ReplicaOpenOptions): Promise<ReplicaStore>;
  /**
   * A new replica store in `dir` (which must not exist) from a base copy its primary sends over
   * `ch` (connected and authenticated, nothing sent yet): written aside and renamed into place
   * whole, so a crash in the middle leaves no store. Open it with `openReplica` afterwards; its
   * position then verifies at the primary. Fails with the primary's refusal or a protocol error.
   */
  initReplica(dir: string, ch: ReplicationChannel, options: ReplicaInitOptions): Promise<ReplicaInitResult>;
  /**
   * Makes `dir` — a store laid out from the primary's own files (data file, state, and log
   * segments as the primary wrote them, headers included: a snapshot and the WAL archive), not
   * open — ready for `openReplica`: the replica's epoch is its log's (the last segment header's;
   * an unstamped one counts as 1), written where `openReplica` reads it, and the epoch history
   * brought up to the headers. Returns that epoch. `lastRetired`: the log's last segment is one
   * the primary retired (an archived one), so the primary went on in the next: that one is
   * started holding only its header (epoch, R at its start), as the primary's writer did, and
   * the replica's position is the next segment's first record position, which the primary can
   * check once it has retired the archived segment. Nothing else of the log is changed.
   */
  adoptLog(dir: string, options?: { lastRetired?: boolean }): Promise<{ epoch: number }>;
}

export interface ReplicaInitOptions {
  /** This replica's name (the primary's logs). */
  readonly id: string;
  /** The epoch to ask with. */
  readonly epoch: number;
  readonly onProgress?: (p: { pagesCopied: number; pagesTotal: number }) => void;
  readonly log?: Logger;
}

export interface ReplicaInitResult {
  /** Where the copy's redo starts. */
  readonly redoLsn: number;
  /** The copy is consistent from this LSN on (its log reaches it). */
  readonly consistentLsn: number;
  readonly epoch: number;
  readonly pages: number;
}

export interface ReplicaOpenOptions {
  /** Worker pool for redo (the open's and each apply's); without one, redo runs on this thread. */
  readonly pool?: WorkerPool;
  readonly log?: Logger;
  /**
   * The open cut the replica's log at a damaged record (a replica's log is a copy of its
   * primary's, which streams the rest again): where, why, and where the cut part was kept.
   */
  readonly onLogCut?: (cut: { lsn: number; reason: string; movedTo: string }) => void;
}

/** Where a replica stands. */
export interface ReplicaPosition {
  /** The newest epoch it has accepted records of (0 until it has accepted any). */
  readonly epoch: number;
  /** The end of its log: every record below it is durable. */
  readonly durableLsn: number;
  /** Every record below this is applied to its pages. */
  readonly appliedLsn: number;
  /** The log's rolling checksum at `durableLsn` (replication's `hello` carries it; DESIGN.md). */
  readonly rolling: bigint;
}

/** What an `apply` did. */
export interface ReplicaApplied {
  readonly position: ReplicaPosition;
  /** Records redone onto pages (records older than their page are skipped, not counted). */
  readonly recordsRedone: number;
  /** The most threads the redo of one segment ran on (1: the caller's). */
  readonly redoWorkers: number;
  /** The checkpoint LSN of the restartpoint written, or null when the range passed none. */
  readonly restartpoint: number | null;
}

/**
 * A store open as a replica (ReplicaEngine.openReplica). Appends run one at a time, in the order
 * called, as do applies; an apply may run while appends go on (it works behind the durable LSN
 * it saw when it started).
 */
export interface ReplicaStore {
  position(): ReplicaPosition;
  /**
   * Appends `bytes`, consecutive records of the primary's log `[startLsn, endLsn)` in one segment,
   * durably. `startLsn` is the durable end, or the first record position of the next segment when
   * the primary's next record did not fit the current one. Every record is checked (length, LSN,
   * checksum) before anything is written; a gap, an overlap, a bad record or an epoch older than
   * the replica's is refused with RA_ERR_REPLICA_REFUSED (`details.reason`) and nothing written.
   */
  append(bytes: Uint8Array, startLsn: number, endLsn: number, epoch: number): Promise<ReplicaPosition>;
  /**
   * Redoes the records below `min(upto, durable)` not yet applied onto the pages (every record
   * whose LSN is below that bound), syncs them, and records a restartpoint when it passed a
   * checkpoint record of the primary: the store's state then names that checkpoint, so a restart
   * or a promotion is ordinary crash recovery from there.
   */
  apply(upto?: number): Promise<ReplicaApplied>;
  /**
   * Page `pageId` with every record below `minLsn` applied, verified. RA_ERR_REPLICA_BEHIND when
   * the replica's log ends before `minLsn`; RA_ERR_PAGE_CORRUPT when the page fails verification.
   */
  readPage(pageId: number, minLsn: number): Promise<Buffer>;
  /**
   * Installs `image`, a copy of page `pageId` from elsewhere (the primary), made consistent with
   * this replica's log: it must verify (page 0: this store's superblock; else RA_ERR_PAGE_CORRUPT)
   * and its LSN be at most the durable LSN (else RA_ERR_REPLICA_BEHIND); the page's records
   * between its LSN and the applied LSN are redone on it before it is written.
   */
  installPage(pageId: number, image: Buffer): Promise<{ lsn: number; recordsRedone: number }>;
  /** Releases the store (its lock and files); what is durable stays. */
  close(): Promise<void>;
}

// --- Recovery run by a consumer (added for the snapshot manager's restore) -------------------

/**
 * Options of a crash recovery a consumer runs: the archiver to hand retired segments to, and
 * the worker pool to redo on. A restore replays a staged store's log on the pool the user
 * sized (`restore --workers`); without one the engine uses its own default.
 */
export interface PageRecoverOptions {
  readonly archiver?: LogArchiver;
  readonly pool?: WorkerPool;
}

/**
 * What a page engine's recovery reports beyond `RecoveryReport`: where the valid log it
 * replayed ends (a restore reports it as the LSN the restored store is as of).
 */
export interface PageRecoveryReport extends RecoveryReport {
  readonly endLsn: number;
}

/** Runtime guard: true when `v` is a storage engine that offers the page face. */
export function isPageEngine(v: unknown): v is PageEngine {
  const e = v as PageEngine | null;
  return typeof e === 'object' && e !== null && typeof e.name === 'string' && typeof e.describe === 'function' &&
    typeof e.recover === 'function' && typeof e.connectOwner === 'function' && typeof e.logUsage === 'function' &&
    typeof e.recoveryProblem === 'function' &&
    typeof e.pages === 'object' && e.pages !== null && typeof e.pages.verify === 'function' &&
    typeof e.log === 'object' && e.log !== null && typeof e.log.scanRecords === 'function' &&
    typeof e.files === 'object' && e.files !== null && typeof e.files.readState === 'function';
}

/** Runs `fn` with the live owner of `dir`, and closes the connection whatever happens. */
export async function withOwner<T>(engine: PageEngine, dir: string, fn: (owner: LiveOwner) => Promise<T>, options?: { timeoutMs?: number }): Promise<T> {
  const owner = await engine.connectOwner(dir, options);
  try {
    return await fn(owner);
  } finally {
    owner.close();
  }
}

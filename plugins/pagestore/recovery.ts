/**
 * Crash recovery in three passes, ARIES-style:
 *
 *   analysis  from the last checkpoint: which transactions never ended (the losers), where the
 *             log ends (a torn tail is cut there; damage followed by valid records stops all);
 *   redo      every page change from the redo LSN on whose LSN is newer than the page's, for
 *             winners and losers alike (repeating history), in parallel by page on the worker
 *             pool or single-threaded;
 *   undo      every loser's changes, newest first across all losers, each undone change logged
 *             as a compensation record (CLR) whose undo-next pointer skips what is already
 *             undone, so a crash during undo never undoes anything twice;
 *
 * then a checkpoint — or, for the owner's open (`deferCheckpoint`), not: the store opens for
 * transactions with undo's pages dirty in its cache and runs that checkpoint in the background
 * like any other. A crash before it completes only means recovery again from the old redo point:
 * redo's page writes, undo's CLRs and the losers' abort records are all in the log by then.
 * Analysis and redo run together by default: one forward read of the log,
 * the reading thread analysing and handing redo records to the workers through SPSC rings as it
 * goes (redoStream.ts); `redo: 'two-pass'` reads and analyses the whole log first, then redoes.
 * Idempotent: running it again, or after a crash in the middle of it, ends
 * in the same state.
 */
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { raError } from '../../core/errors.js';
import type { RecoveryReport } from '../../core/contracts/StorageEngine.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { readArchiveLink, writeArchiveLink } from './archiveLink.js';
import { completeCheckpoint, writePages, type ArchivePolicy, type CheckpointBody, type WalArchiver } from './checkpoint.js';
import { readControl } from './control.js';
import { streamedRedo, twoPassRedo } from './redoPaths.js';
import { undoLosers } from './undo.js';
import { acquireStoreLock } from './storeLock.js';
import { checkDataFile, dataFileOf, storeExists, tightenStore, walDirOf, type StoreGeometry } from './storeFiles.js';
import { RecordType, decodeRecord } from './walRecord.js';
import { readRecordFromDisk } from './walScan.js';
import { WalWriter } from './walWriter.js';
import { settleSwap } from './storeSwap.js';

export interface RecoverOptions {
  /** Worker pool for parallel redo; without one, redo runs on this thread. */
  pool?: WorkerPool;
  /** Redo on this thread even with a pool. */
  serialRedo?: boolean;
  /**
   * 'stream' (the default): analysis and redo in one forward read of the log through a bounded
   * window, redo records handed to the workers through SPSC rings as they are found
   * (redoStream.ts). 'two-pass': the whole log read into memory and analysed first, then redo;
   * the baseline bench/redo.ts measures the stream against, and a fallback should the stream
   * ever misbehave in the field.
   */
  redo?: 'stream' | 'two-pass';
  archiver?: WalArchiver;
  log?: Logger;
  /**
   * Analysis and redo only, for a replica (replica.ts): no undo and no checkpoint, so nothing is
   * written to the log (a replica's log is its primary's, byte for byte); the torn tail is cut
   * and the redone pages synced. `transactionsRolledBack` is 0: the losers may still commit.
   */
  redoOnly?: boolean;
  /**
   * A replication primary's epoch (replication.json): larger than the log's, the log forks at its
   * end before undo writes anything (WalWriter.open, epochHistory.ts). A primary's recovery also
   * retires no segment: replicas (of this epoch or, after a fork, of the one before) may still
   * need them, and only the running store's checkpoints know which (its sender's `retainFrom`).
   */
  epoch?: number;
  /**
   * Called as each pass ends ('redo': analysis and redo, overlapped in the stream; 'undo';
   * 'checkpoint'), on this thread: lets a profiler (bench/redo.ts --profile) split CPU time by pass.
   */
  onPass?: (pass: 'redo' | 'undo' | 'checkpoint') => void;
  /**
   * Return once redo and undo are done, without the end-of-recovery checkpoint: the caller (the
   * owner's open, PageStore.open) takes undo's pages (`RecoveredStore.deferred`) into its cache
   * as dirty pages and checkpoints in the background. Redo's page writes are left unsynced for
   * that checkpoint's fdatasync. `recover()` (the CLI, restore, rollback) never defers: it
   * returns with everything durable under a new checkpoint.
   */
  deferCheckpoint?: boolean;
}

export interface RecoveryStats extends RecoveryReport {
  readonly transactionsRolledBack: number;
  readonly recordsRedone: number;
  readonly recordsSkipped: number;
  readonly recordsUndone: number;
  readonly walBytesRead: number;
  readonly walRecordsScanned: number;
  readonly pagesWritten: number;
  readonly redoLsn: number;
  readonly endLsn: number;
  readonly tornTail: { lsn: number; reason: string } | null;
  readonly redoWorkers: number;
  /** Which redo path ran (RecoverOptions.redo). */
  readonly redoMode: 'stream' | 'two-pass';
  /**
   * Wall time per pass. With the stream, analysis and redo overlap: `analysisMs` lasts until the
   * log has been read and analysed (redo running meanwhile), `redoMs` is the redo left after that.
   */
  readonly passes: { analysisMs: number; redoMs: number; undoMs: number; checkpointMs: number };
  /** The end-of-recovery checkpoint was left to the opened store (`deferCheckpoint`; `checkpointMs` is then 0). */
  readonly checkpointDeferred: boolean;
  readonly durationMs: number;
}

/** What a deferred end-of-recovery checkpoint leaves to the store (RecoverOptions.deferCheckpoint). */
export interface DeferredCheckpoint {
  /** The redo LSN of the checkpoint still in force (the control file's). */
  readonly redoLsn: number;
  /** Pages undo changed, not yet written: image (unsealed, page LSN set) and the LSN of its first CLR. */
  readonly pages: ReadonlyMap<number, { image: Buffer; recLsn: number }>;
}

/** What a store opened for writing takes over from recovery. */
export interface RecoveredStore {
  stats: RecoveryStats;
  wal: WalWriter;
  data: FileHandle;
  geometry: StoreGeometry;
  nextTxId: number;
  /** How this store's checkpoints retire WAL (the archiver given, and whether the store remembers an archive). */
  archive: ArchivePolicy;
  /** Set when the end-of-recovery checkpoint was deferred to the caller. */
  deferred?: DeferredCheckpoint;
  /** The latest commit time in the log, when recovery had it at hand (else the caller reads the log). */
  lastCommitTime?: number;
}

/**
 * Recovers a store no process has open: takes its lock, removes group and other access from its
 * files (as PageStore.open does), recovers, releases everything.
 */
export async function recover(dir: string, options: RecoverOptions = {}): Promise<RecoveryStats> {
  await settleSwap(dir);
  if (!storeExists(dir)) throw raError('RA_ERR_STORE_NOT_FOUND', `${dir} holds no page store (no control file)`);
  const lock = await acquireStoreLock(dir);
  try {
    await tightenStore(dir, options.log);
    const r = await recoverLocked(dir, options);
    await r.wal.close();
    await r.data.close();
    return r.stats;
  } finally {
    await lock.release();
  }
}

/** Recovery for a caller that already holds the store lock; leaves the WAL and data file open. */
export async function recoverLocked(dir: string, options: RecoverOptions = {}): Promise<RecoveredStore> {
  const t0 = performance.now();
  const control = await readControl(dir);
  const archive = await archivePolicy(dir, options.archiver);
  const geometry: StoreGeometry = { pageSize: control.pageSize, pageCount: control.pageCount, segmentSize: control.segmentSize, storeId: control.storeId };
  const walDir = walDirOf(dir);
  const data = await open(dataFileOf(dir), 'r+');
  let walToClose: WalWriter | undefined;
  try {
    await checkDataFile(dir, data, geometry);

    // ---- analysis and redo
    const ckptRec = decodeRecord(await readRecordFromDisk(walDir, geometry.storeId, geometry.segmentSize, control.checkpointLsn), 0, geometry.pageSize);
    if (ckptRec.type !== RecordType.Checkpoint || !ckptRec.json) {
      throw raError('RA_ERR_STORE_INVALID', `control file points at LSN ${control.checkpointLsn}, which is not a checkpoint record`);
    }
    const ckpt = JSON.parse(Buffer.from(ckptRec.json).toString('utf8')) as CheckpointBody;
    // Undo may need the records of transactions that were active at the checkpoint.
    const from = Math.min(control.redoLsn, ...ckpt.att.map((a) => a[1]));
    const pool = options.serialRedo ? undefined : options.pool;
    const input = { walDir, geometry, from, redoLsn: control.redoLsn, dataFile: dataFileOf(dir), ...(pool ? { pool } : {}) };
    const ar = options.redo === 'two-pass' ? await twoPassRedo(input) : await streamedRedo(input);
    const { redo } = ar;
    if (redo.outOfRange.length > 0) {
      const first = redo.outOfRange[0]!;
      throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${first.lsn} changes page ${first.pageId} or a byte range outside this store's ${geometry.pageCount} pages`, { details: { lsn: first.lsn } });
    }
    if (redo.corrupt.length > 0) {
      throw raError('RA_ERR_PAGE_CORRUPT', `redo cannot restore ${redo.corrupt.length} page(s) that fail verification and have no full image in the log: ${redo.corrupt.slice(0, 10).map((c) => `page ${c.pageId} (${c.reason})`).join(', ')}`, {
        details: { pages: redo.corrupt },
      });
    }
    const nextTxId = Math.max(ckpt.nextTxId, control.nextTxId, ar.maxTxId + 1);
    const t1 = ar.analysisDoneAt;
    const t2 = performance.now();
    options.onPass?.('redo');

    // ---- undo
    // Redo wrote its pages without syncing; the checkpoint must not be recorded before they are
    // durable. Start that sync now, on libuv's thread, so the writeback of every page redo
    // changed overlaps undo instead of following it (the checkpoint then only syncs undo's pages).
    // Deferred, the store's first checkpoint syncs them instead (its writePages fdatasyncs the
    // whole file): a sync started here and not awaited could fail unseen.
    const defer = Boolean(options.deferCheckpoint) && !options.redoOnly;
    const redoSynced = defer ? Promise.resolve() : data.datasync();
    redoSynced.catch(() => undefined); // awaited below; a failure is reported there
    const known = ar.endPosition && { ...ar.endPosition, zerosAfter: ar.tornAt === undefined };
    const wal = await WalWriter.open(walDir, geometry.storeId, geometry.segmentSize, ar.endLsn, options.redoOnly ? 0 : (options.epoch ?? 0), known);
    walToClose = wal;
    const undo = await (options.redoOnly
      ? Promise.resolve({ undone: 0, pages: new Map<number, Buffer>(), recLsns: new Map<number, number>() })
      : undoLosers({ records: ar.records, wal, data, geometry, losers: ar.losers, covered: ar.covered })
    ).finally(() => ar.releaseRecords());
    const t3 = performance.now();
    options.onPass?.('undo');

    // ---- checkpoint: everything is in the data file now; nothing is active.
    if (defer) {
      // Left to the store (see DeferredCheckpoint).
    } else if (!options.redoOnly) {
      // Undo's CLRs are flushed, so its pages may be written while redo's sync is still under
      // way; the checkpoint record's flush overlaps both syncs, and the control file is switched
      // once all three are durable (completeCheckpoint's `pagesDurable`).
      const pagesDurable = Promise.all([redoSynced, writePages(data, geometry.pageSize, [...undo.pages].map(([pageId, image]) => ({ pageId, image })))]).then(() => undefined);
      const ckptOut = await completeCheckpoint(dir, wal, geometry, { redoLsn: wal.endLsn, nextTxId, att: [], dpt: [] }, archive, options.epoch !== undefined ? 0 : undefined, pagesDurable);
      if (ckptOut.archiveError) options.log?.warn({ err: ckptOut.archiveError }, 'WAL segments not archived; kept for the next checkpoint');
    } else {
      await redoSynced;
    }
    const t4 = performance.now();
    options.onPass?.('checkpoint');

    const stats: RecoveryStats = {
      transactionsRolledBack: options.redoOnly ? 0 : ar.losers.length,
      recordsRedone: redo.applied,
      recordsSkipped: redo.skipped,
      recordsUndone: undo.undone,
      walBytesRead: ar.bytesRead,
      walRecordsScanned: ar.recordsScanned,
      pagesWritten: redo.pagesWritten + undo.pages.size,
      redoLsn: control.redoLsn,
      endLsn: ar.endLsn,
      tornTail: ar.tornAt ?? null,
      redoWorkers: ar.redoWorkers,
      redoMode: options.redo ?? 'stream',
      passes: { analysisMs: round(t1 - t0), redoMs: round(t2 - t1), undoMs: round(t3 - t2), checkpointMs: defer ? 0 : round(t4 - t3) },
      checkpointDeferred: defer,
      durationMs: round(t4 - t0),
    };
    options.log?.info({ ...stats }, 'recovery complete');
    const deferred: DeferredCheckpoint | undefined = defer
      ? { redoLsn: control.redoLsn, pages: new Map([...undo.pages].map(([pageId, image]) => [pageId, { image, recLsn: undo.recLsns.get(pageId)! }])) }
      : undefined;
    return { stats, wal, data, geometry, nextTxId, archive, ...(deferred ? { deferred } : {}), ...(ar.lastCommitTime !== undefined ? { lastCommitTime: ar.lastCommitTime } : {}) };
  } catch (err) {
    await walToClose?.close().catch(() => undefined);
    await data.close().catch(() => undefined);
    throw err;
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/**
 * The store's archive policy: an archiver that names a new target is remembered; a store that
 * remembers one recycles no segment without an archiver (archiveLink.ts).
 */
async function archivePolicy(dir: string, archiver: WalArchiver | undefined): Promise<ArchivePolicy> {
  let target = await readArchiveLink(dir);
  if (archiver?.target && archiver.target !== target) {
    await writeArchiveLink(dir, archiver.target);
    target = archiver.target;
  }
  return { ...(archiver ? { archiver } : {}), required: target !== null, target };
}

export { recoveryProblem } from './recoveryCheck.js';

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
import { readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from 'pino';
import { raError } from '../../core/errors.js';
import type { RecoveryReport } from '../../core/contracts/StorageEngine.js';
import { defineTask } from '../../core/taskRef.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { readArchiveLink, writeArchiveLink } from './archiveLink.js';
import { completeCheckpoint, writePages, type ArchivePolicy, type CheckpointBody, type WalArchiver } from './checkpoint.js';
import { readControl } from './control.js';
import { faultPoint } from './faults.js';
import { readU64, setPageLsn, verifyPage } from './format.js';
import { applyRedo, type RedoInput, type RedoResult } from './redoApply.js';
import { streamRedo } from './redoStream.js';
import { acquireStoreLock } from './storeLock.js';
import { checkDataFile, dataFileOf, storeExists, tightenStore, walDirOf, type StoreGeometry } from './storeFiles.js';
import { RecordType, decodeRecord, kRecLsn, kRecPageId, kRecTxId, kRecType, type WalRecord } from './walRecord.js';
import { readRecordFromDisk, scanWal } from './walScan.js';
import { WalWriter } from './walWriter.js';
import { settleSwap } from './storeSwap.js';
import type { SegmentPosition } from './walSegments.js';

const redoTask = defineTask<RedoInput, RedoResult>(new URL('./redoTask.js', import.meta.url));

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

/** What both redo paths hand to undo and the report. */
interface AnalysisAndRedo {
  losers: Array<{ txId: number; lastLsn: number }>;
  maxTxId: number;
  redo: RedoResult;
  redoWorkers: number;
  endLsn: number;
  tornAt?: { lsn: number; reason: string };
  bytesRead: number;
  recordsScanned: number;
  /** Pages with a record in the redo range (they have a full image there). */
  covered: { has(pageId: number): boolean; add(pageId: number): void };
  /** A record of the scanned log by LSN, for undo. */
  records: (lsn: number) => Promise<WalRecord>;
  /** Undo is over: files `records` kept open are closed. */
  releaseRecords: () => void;
  /** performance.now() when the log had been read and analysed. */
  analysisDoneAt: number;
  /** Epoch and rolling checksum at `endLsn`, when the path has them at hand (WalWriter.open's `known`). */
  endPosition?: SegmentPosition;
  /** The latest commit time in the log, when the path has it at hand (RecoveredStore.lastCommitTime). */
  lastCommitTime?: number;
}

interface RedoPathInput {
  walDir: string;
  geometry: StoreGeometry;
  from: number;
  redoLsn: number;
  dataFile: string;
  pool?: WorkerPool;
}

/** The default: analysis and redo overlapped in one forward read of the log (redoStream.ts). */
async function streamedRedo(i: RedoPathInput): Promise<AnalysisAndRedo> {
  const { geometry } = i;
  const out = await streamRedo({
    walDir: i.walDir,
    storeId: geometry.storeId,
    segmentSize: geometry.segmentSize,
    fromLsn: i.from,
    redoLsn: i.redoLsn,
    dataFile: i.dataFile,
    pageSize: geometry.pageSize,
    pageCount: geometry.pageCount,
    ...(i.pool ? { pool: i.pool } : {}),
  });
  const endPosition = out.records.positionAt(out.end.endLsn);
  const lastCommitTime = out.records.lastCommitTime(i.from, out.end.endLsn);
  return {
    losers: out.losers,
    maxTxId: out.maxTxId,
    redo: out.redo,
    redoWorkers: out.redoWorkers,
    endLsn: out.end.endLsn,
    ...(out.end.tornAt ? { tornAt: out.end.tornAt } : {}),
    bytesRead: out.end.bytesRead,
    recordsScanned: out.end.count,
    covered: out.covered,
    records: async (lsn) => {
      const { bytes, at } = await out.records.record(lsn);
      return decodeRecord(bytes, at, geometry.pageSize);
    },
    releaseRecords: () => out.records.close(),
    analysisDoneAt: out.readDoneAt,
    ...(endPosition ? { endPosition } : {}),
    ...(lastCommitTime !== undefined ? { lastCommitTime } : {}),
  };
}

/** Below this many records, handing work to threads costs more than it saves. */
const kMinParallelRecords = 4096;

/**
 * The two-pass path (option `redo: 'two-pass'`; bench/redo.ts measures the stream against it):
 * the whole log read into memory and analysed, then redo partitioned by page over the pool.
 */
async function twoPassRedo(i: RedoPathInput): Promise<AnalysisAndRedo> {
  const { geometry } = i;
  const scan = await scanWal(i.walDir, geometry.storeId, geometry.segmentSize, i.from);
  const dv = new DataView(scan.buf.buffer);
  const txs = new Map<number, { lastLsn: number; ended: boolean }>();
  let maxTxId = 0;
  let redoCount = 0;
  const redoPositions = new Uint32Array(new SharedArrayBuffer(Math.max(4, scan.count * 4)));
  const redoPageIds = new Uint32Array(new SharedArrayBuffer(Math.max(4, scan.count * 4)));
  for (let k = 0; k < scan.count; k++) {
    const at = scan.positions[k]!;
    const type = scan.buf[at + kRecType] as RecordType;
    const lsn = readU64(scan.buf, at + kRecLsn);
    if (type === RecordType.Checkpoint) continue;
    const txId = readU64(scan.buf, at + kRecTxId);
    maxTxId = Math.max(maxTxId, txId);
    const tx = txs.get(txId) ?? { lastLsn: 0, ended: false };
    tx.lastLsn = lsn;
    if (type === RecordType.Commit || type === RecordType.Abort) tx.ended = true;
    txs.set(txId, tx);
    if ((type === RecordType.Update || type === RecordType.Clr) && lsn >= i.redoLsn) {
      redoPositions[redoCount] = at;
      redoPageIds[redoCount++] = dv.getUint32(at + kRecPageId, true);
    }
  }
  const losers = [...txs.entries()].filter(([, t]) => !t.ended).map(([txId, t]) => ({ txId, lastLsn: t.lastLsn }));
  const analysisDoneAt = performance.now();

  const input: RedoInput = { wal: scan.buf, positions: redoPositions, pageIds: redoPageIds, count: redoCount, dataFile: i.dataFile, pageSize: geometry.pageSize, pageCount: geometry.pageCount };
  const workers = i.pool && redoCount >= kMinParallelRecords ? i.pool.threads : 0;
  const redo = workers > 1 ? await parallelRedo(i.pool!, input, workers) : applyRedo(input);
  const covered = new Set<number>();
  for (let k = 0; k < redoCount; k++) covered.add(redoPageIds[k]!);
  return {
    losers,
    maxTxId,
    redo,
    redoWorkers: workers > 1 ? workers : 1,
    endLsn: scan.endLsn,
    ...(scan.tornAt ? { tornAt: scan.tornAt } : {}),
    bytesRead: scan.bytesRead,
    recordsScanned: scan.count,
    covered,
    records: async (lsn) => {
      const at = scan.positionOf(lsn);
      if (at >= 0 && readU64(scan.buf, at + kRecLsn) === lsn) return decodeRecord(scan.buf, at, geometry.pageSize);
      return decodeRecord(await readRecordFromDisk(i.walDir, geometry.storeId, geometry.segmentSize, lsn), 0, geometry.pageSize);
    },
    releaseRecords: () => undefined,
    analysisDoneAt,
  };
}

/**
 * Pages per block of the parallel redo partition: blocks of adjacent pages go to the workers in
 * turn, so each worker reads and writes runs of adjacent pages (one syscall per run), and a hot
 * range of pages is still spread over all of them.
 */
const kRedoBlockPages = 64;

/** Splits redo by page id across `workers` tasks; each applies its pages' records in LSN order. */
export async function parallelRedo(pool: WorkerPool, input: RedoInput, workers: number): Promise<RedoResult> {
  // Partition by block of page ids (from analysis, so the WAL is not touched here); each worker
  // keeps its records in LSN order.
  const partOf = (pageId: number) => Math.floor(pageId / kRedoBlockPages) % workers;
  const counts = new Array<number>(workers).fill(0);
  for (let k = 0; k < input.count; k++) counts[partOf(input.pageIds[k]!)]!++;
  const shared = (n: number) => new Uint32Array(new SharedArrayBuffer(Math.max(4, n * 4)));
  const parts = counts.map((n) => ({ positions: shared(n), pageIds: shared(n), n: 0 }));
  for (let k = 0; k < input.count; k++) {
    const part = parts[partOf(input.pageIds[k]!)]!;
    part.positions[part.n] = input.positions[k]!;
    part.pageIds[part.n++] = input.pageIds[k]!;
  }
  const results = await Promise.all(parts.map((p) => pool.run(redoTask, { ...input, positions: p.positions, pageIds: p.pageIds, count: p.n })));
  return results.reduce((a, r) => ({
    applied: a.applied + r.applied,
    skipped: a.skipped + r.skipped,
    pagesWritten: a.pagesWritten + r.pagesWritten,
    corrupt: [...a.corrupt, ...r.corrupt],
    outOfRange: [...a.outOfRange, ...r.outOfRange],
  }));
}

interface UndoInput {
  records: (lsn: number) => Promise<WalRecord>;
  wal: WalWriter;
  data: FileHandle;
  geometry: StoreGeometry;
  losers: Array<{ txId: number; lastLsn: number }>;
  /** Pages that already have a full image in the redo range. */
  covered: AnalysisAndRedo['covered'];
}

/** Pages per slab of undo's page images (2 MiB of 8 KiB pages). */
const kUndoSlabPages = 256;

async function undoLosers(u: UndoInput): Promise<{ undone: number; pages: Map<number, Buffer>; recLsns: Map<number, number> }> {
  const { wal, data, geometry } = u;
  const pages = new Map<number, Buffer>();
  /** Each page's first CLR: its recLsn, should the store take it over dirty (DeferredCheckpoint). */
  const recLsns = new Map<number, number>();
  // Pages are carved out of zeroed slabs: a Buffer (and ArrayBuffer) of its own per page cost
  // undo more CPU than its reads (measured: 330 of 800 ms for ~8000 pages, most of it in GC).
  let slab = Buffer.alloc(0);
  let slabUsed = 0;
  // Synchronous reads: recovery has the store to itself, and a thread-pool round trip per page
  // made undo wait on I/O for most of its time (measured: 449 of 668 ms idle for 8000 pages).
  const loadPage = (pageId: number): Buffer => {
    let page = pages.get(pageId);
    if (!page) {
      if (slabUsed + geometry.pageSize > slab.length) {
        slab = Buffer.alloc(kUndoSlabPages * geometry.pageSize);
        slabUsed = 0;
      }
      page = slab.subarray(slabUsed, slabUsed + geometry.pageSize);
      slabUsed += geometry.pageSize;
      readSync(data.fd, page, 0, geometry.pageSize, pageId * geometry.pageSize);
      const fault = verifyPage(page, pageId);
      if (fault) throw raError('RA_ERR_PAGE_CORRUPT', `page ${pageId} fails its ${fault} check; undo cannot proceed`, { details: { pageId, reason: fault } });
      pages.set(pageId, page);
    }
    return page;
  };
  // Each loser: the next LSN to undo, and the tail of its chain (where its next CLR links).
  const todo = u.losers.map((l) => ({ txId: l.txId, next: l.lastLsn, tail: l.lastLsn }));
  let undone = 0;
  while (todo.length > 0) {
    todo.sort((a, b) => b.next - a.next); // newest first across all losers
    const t = todo[0]!;
    const rec = await u.records(t.next);
    if (rec.txId !== t.txId) throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${rec.lsn} belongs to transaction ${rec.txId}, not ${t.txId} whose chain leads there`, { details: { lsn: rec.lsn } });
    let next: number;
    if (rec.type === RecordType.Update) {
      const page = loadPage(rec.pageId);
      page.set(rec.before!, rec.offset);
      const fullPage = u.covered.has(rec.pageId) ? undefined : page;
      const clr = wal.append({ type: RecordType.Clr, txId: t.txId, prevLsn: t.tail, pageId: rec.pageId, offset: rec.offset, after: rec.before!, undoNextLsn: rec.prevLsn, ...(fullPage ? { fullPage } : {}) });
      setPageLsn(page, clr.lsn);
      if (!recLsns.has(rec.pageId)) recLsns.set(rec.pageId, clr.lsn);
      u.covered.add(rec.pageId);
      t.tail = clr.lsn;
      undone++;
      if (undone === 1) {
        await wal.flush();
        faultPoint('recovery-undo');
      }
      next = rec.prevLsn;
    } else if (rec.type === RecordType.Clr) {
      next = rec.undoNextLsn;
    } else {
      next = rec.prevLsn;
    }
    if (next === 0) {
      const end = wal.append({ type: RecordType.Abort, txId: t.txId, prevLsn: t.tail });
      t.tail = end.lsn;
      todo.shift();
    } else {
      t.next = next;
    }
  }
  await wal.flush();
  return { undone, pages, recLsns };
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

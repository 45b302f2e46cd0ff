/**
 * Recovery's two ways through analysis and redo (recovery.ts): the stream (the default: one
 * forward read of the log, analysis and redo overlapped across threads, redoStream.ts) and the
 * two-pass path (the whole log read and analysed, then redo partitioned by page over the pool).
 * Both hand undo and the report the same `AnalysisAndRedo`.
 */
import { defineTask } from '../../core/taskRef.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { readU64 } from './format.js';
import { applyRedo, type RedoInput, type RedoResult } from './redoApply.js';
import { streamRedo } from './redoStream.js';
import type { StoreGeometry } from './storeFiles.js';
import { RecordType, decodeRecord, kRecLsn, kRecPageId, kRecTxId, kRecType, type WalRecord } from './walRecord.js';
import { readRecordFromDisk, scanWal } from './walScan.js';
import type { SegmentPosition } from './walSegments.js';

const redoTask = defineTask<RedoInput, RedoResult>(new URL('./redoTask.js', import.meta.url));

/** What both redo paths hand to undo and the report. */
export interface AnalysisAndRedo {
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

export interface RedoPathInput {
  walDir: string;
  geometry: StoreGeometry;
  from: number;
  redoLsn: number;
  dataFile: string;
  pool?: WorkerPool;
}

/** The default: analysis and redo overlapped in one forward read of the log (redoStream.ts). */
export async function streamedRedo(i: RedoPathInput): Promise<AnalysisAndRedo> {
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
export async function twoPassRedo(i: RedoPathInput): Promise<AnalysisAndRedo> {
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


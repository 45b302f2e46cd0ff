/**
 * Recovery's analysis pass, chunk by chunk, with the per-record work in the native addon
 * (`walAnalyze`, native/src/analysis.rs): JavaScript only merges each chunk's transaction table
 * (one entry per transaction, not per record) and hands on the redo records already dealt to
 * the redo workers. The streaming redo (redoStream.ts) runs it once per log segment, fused with
 * the segment's validation (`scan`, native `walScanAnalyze`): one pass over the segment's bytes,
 * each record analysed while it is still in cache from being checksummed, instead of a second
 * pass re-reading every record header. `chunk` analyses records a scan already found.
 *
 * Semantics are those of the per-record loop it replaces: checkpoint records are skipped; every
 * other record makes its transaction's last LSN its own; a commit or abort ends the transaction
 * (it is no loser) unless a later record of the same id follows; the largest id is kept; a redo
 * record (update or CLR at or after the redo LSN) that redo could not apply fails recovery
 * before anything is written.
 */
import { walAnalyze, walScanAnalyze } from 'recovery-agent/native';
import { readU32, readU64 } from '../../core/bytes.js';
import { raError } from '../../core/errors.js';
import { kRecLsn, kRecPageId } from './walRecord.js';
import type { RecordScanner } from './walScan.js';

/** `walAnalyze`'s summary slots (native/index.d.ts). */
const kSumTxs = 0;
const kSumDirty = 1;
const kSumMaxTx = 2;
const kSumBad = 3;
const kSumByType = 5;
const kSumGroups = 10;

/** One chunk's redo records, dealt to groups (see `walAnalyze`'s `redo`). */
export interface ChunkRedo {
  /** (position, page id) pairs; group w starts at pair `starts[w]`, and the pair after its last is free. */
  readonly entries: Uint32Array;
  readonly starts: readonly number[];
  readonly counts: readonly number[];
  readonly total: number;
}

export class WalAnalysis {
  /** Transactions seen and not ended: id → last LSN (the losers, once the log is read). */
  readonly open = new Map<number, number>();
  maxTxId = 0;
  /** Pages first changed at or after the redo LSN, with that first LSN (the dirty page table). */
  readonly dirtyPages = new Map<number, number>();
  /** Records per type 1..5 (index 0 unused). */
  readonly byType = [0, 0, 0, 0, 0, 0];
  private readonly params: Float64Array;
  private readonly groups: number;
  private txs = new Float64Array(0);
  private redo = new Uint32Array(0);
  private dirty = new Float64Array(0);
  private readonly summary: Float64Array;
  /** What `scan` analysed, until `take`. */
  private scanned: { buf: Uint8Array; positions: Uint32Array } | undefined;

  constructor(
    redoLsn: number,
    pageSize: number,
    private readonly pageCount: number,
    workers: number,
    blockPages: number,
    /** Bitmap of the pages redo touches (bit p & 7 of byte p >> 3), filled in as chunks go. */
    private readonly covered: Uint8Array,
  ) {
    this.groups = Math.max(1, workers);
    this.params = Float64Array.of(redoLsn, pageSize, pageCount, workers, blockPages);
    this.summary = new Float64Array(kSumGroups + this.groups);
  }

  /** Analyses the `count` validated records at `positions` of `buf` (one chunk, in LSN order). */
  chunk(buf: Uint8Array, positions: Uint32Array, count: number): ChunkRedo {
    this.ensureRoom(count);
    walAnalyze(buf, positions, count, this.params, this.covered, this.txs, this.redo, this.dirty, this.summary);
    return this.merge(buf, positions);
  }

  /**
   * A RecordScanner (walScan.ts `scanSegments`) that validates records exactly as
   * `walScanRecords` does and analyses each as it goes; the chunk's result waits for `take`, so
   * that the scan decides first whether the log ends there or is damaged (a record outside the
   * store is reported only then, as when analysis followed the scan). One call per chunk.
   */
  readonly scan: RecordScanner = (buf, start, end, startLsn, positions, first) => {
    if (this.scanned) throw new Error('internal: walAnalysis.scan called twice for one chunk (its first result was not taken)');
    this.ensureRoom(positions.length - first);
    const n = walScanAnalyze(buf, start, end, startLsn, positions, first, this.params, this.covered, this.txs, this.redo, this.dirty, this.summary);
    this.scanned = { buf, positions };
    return n;
  };

  /** The chunk `scan` analysed since the last take (an empty chunk when it was not called). */
  take(): ChunkRedo {
    const scanned = this.scanned;
    this.scanned = undefined;
    if (scanned) return this.merge(scanned.buf, scanned.positions);
    this.ensureRoom(0);
    this.summary.fill(0);
    this.summary[kSumBad] = -1;
    return this.merge(new Uint8Array(0), new Uint32Array(0));
  }

  /** Sizes the outputs for `count` records. */
  private ensureRoom(count: number): void {
    if (this.redo.length < 2 * (count + this.groups)) {
      const size = Math.max(count, 1024);
      this.txs = new Float64Array(4 * size);
      this.dirty = new Float64Array(2 * size);
      this.redo = new Uint32Array(2 * (size + this.groups));
    }
  }

  /** Folds the chunk the native kernel just analysed (its outputs) into the tables. */
  private merge(buf: Uint8Array, positions: Uint32Array): ChunkRedo {
    const s = this.summary;
    const bad = s[kSumBad]!;
    if (bad >= 0) {
      const at = positions[bad]!;
      const lsn = readU64(buf, at + kRecLsn);
      throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${lsn} changes page ${readU32(buf, at + kRecPageId)} or a byte range outside this store's ${this.pageCount} pages`, { details: { lsn } });
    }
    const txs = this.txs;
    for (let k = 0, n = s[kSumTxs]!; k < n; k++) {
      // Only a transaction's last record in the chunk matters: ended, or still open at its last LSN.
      if (txs[4 * k + 3] !== 0) this.open.delete(txs[4 * k]!);
      else this.open.set(txs[4 * k]!, txs[4 * k + 2]!);
    }
    if (s[kSumMaxTx]! > this.maxTxId) this.maxTxId = s[kSumMaxTx]!;
    for (let k = 0, n = s[kSumDirty]!; k < n; k++) this.dirtyPages.set(this.dirty[2 * k]!, this.dirty[2 * k + 1]!);
    for (let t = 1; t <= 5; t++) this.byType[t]! += s[kSumByType + t - 1]!;
    const starts: number[] = [];
    const counts: number[] = [];
    let total = 0;
    for (let w = 0, at = 0; w < this.groups; w++) {
      starts.push(at);
      counts.push(s[kSumGroups + w]!);
      total += s[kSumGroups + w]!;
      at += s[kSumGroups + w]! + 1;
    }
    return { entries: this.redo, starts, counts, total };
  }

  /** The transactions that never ended, with their last LSN (undo starts there). */
  losers(): Array<{ txId: number; lastLsn: number }> {
    return [...this.open].map(([txId, lastLsn]) => ({ txId, lastLsn }));
  }
}

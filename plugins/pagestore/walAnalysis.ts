/**
 * Recovery's analysis pass, chunk by chunk, with the per-record work in the native addon
 * (`walAnalyze`, native/src/analysis.rs): JavaScript only merges each chunk's transaction table
 * (one entry per transaction, not per record) and hands on the redo records already dealt to
 * the redo workers. The streaming redo (redoStream.ts) runs it once per log segment.
 *
 * Semantics are those of the per-record loop it replaces: checkpoint records are skipped; every
 * other record makes its transaction's last LSN its own; a commit or abort ends the transaction
 * (it is no loser) unless a later record of the same id follows; the largest id is kept; a redo
 * record (update or CLR at or after the redo LSN) that redo could not apply fails recovery
 * before anything is written.
 */
import { walAnalyze } from 'recovery-agent/native';
import { readU32, readU64 } from '../../core/bytes.js';
import { raError } from '../../core/errors.js';
import { kRecLsn, kRecPageId } from './walRecord.js';

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
    if (this.redo.length < 2 * (count + this.groups)) {
      const size = Math.max(count, 1024);
      this.txs = new Float64Array(4 * size);
      this.dirty = new Float64Array(2 * size);
      this.redo = new Uint32Array(2 * (size + this.groups));
    }
    const s = this.summary;
    const total = walAnalyze(buf, positions, count, this.params, this.covered, this.txs, this.redo, this.dirty, s);
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
    for (let w = 0, at = 0; w < this.groups; w++) {
      starts.push(at);
      counts.push(s[kSumGroups + w]!);
      at += s[kSumGroups + w]! + 1;
    }
    return { entries: this.redo, starts, counts, total };
  }

  /** The transactions that never ended, with their last LSN (undo starts there). */
  losers(): Array<{ txId: number; lastLsn: number }> {
    return [...this.open].map(([txId, lastLsn]) => ({ txId, lastLsn }));
  }
}

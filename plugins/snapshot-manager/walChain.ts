/**
 * The WAL a restore replays: every segment from the chosen snapshot's WAL start to the target,
 * from the archive or from any snapshot's own WAL copy (the longest copy of a segment wins), with
 * no hole. A hole before the target is RA_ERR_WAL_GAP naming the missing LSN range.
 */
import path from 'node:path';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { archiveDirOf, snapshotPath, type Manifest, type WalEntry } from './manifest.js';
import { listArchive, readRaw, type ArchivedSegment } from './walArchive.js';

/** One segment's best available copy. */
export interface WalSource {
  startLsn: number;
  rawBytes: number;
  /** Absolute path of the compressed file. */
  path: string;
  entry: WalEntry;
  /** Wall-clock time by which every record in it existed. */
  at: number;
  /** A segment salvaged from a failed store's own log (walSalvage.ts): its valid bytes, read already. */
  raw?: Buffer;
}

/** Every segment copy known in `dir`, the longest per start LSN. */
export async function walSources(dir: string, manifests: readonly Manifest[], archive?: ArchivedSegment[]): Promise<Map<number, WalSource>> {
  const best = new Map<number, WalSource>();
  const offer = (s: WalSource) => {
    const cur = best.get(s.startLsn);
    if (!cur || s.rawBytes > cur.rawBytes) best.set(s.startLsn, s);
  };
  for (const a of archive ?? (await listArchive(dir))) {
    offer({ startLsn: a.startLsn, rawBytes: a.rawBytes, path: path.join(archiveDirOf(dir), a.file), entry: a, at: a.archivedAt });
  }
  for (const m of manifests) {
    for (const w of m.wal) offer({ startLsn: w.startLsn, rawBytes: w.rawBytes, path: path.join(snapshotPath(dir, m.id), w.file), entry: w, at: m.finishedAt });
  }
  return best;
}

/**
 * The segments from `fromLsn` to `target` (Infinity: as far as the chain goes). Throws
 * RA_ERR_WAL_GAP when a segment is missing before the target, or before a later segment.
 */
export function chainTo(engine: PageEngine, sources: Map<number, WalSource>, fromLsn: number, target: number, segmentSize: number): WalSource[] {
  const out: WalSource[] = [];
  const starts = [...sources.keys()].sort((a, b) => a - b);
  let s = engine.log.segmentStartOf(fromLsn, segmentSize);
  for (;;) {
    const src = sources.get(s);
    if (!src) {
      const later = starts.find((x) => x > s);
      const chainEnd = out.length > 0 ? out[out.length - 1]!.startLsn + out[out.length - 1]!.rawBytes : fromLsn;
      if (out.length === 0 || later !== undefined) {
        const upto = later !== undefined ? later - 1 : s + segmentSize - 1;
        throw raError('RA_ERR_WAL_GAP', `the WAL chain has a gap: LSN ${s} to ${upto} is in no archived segment or snapshot (the chain from LSN ${fromLsn} stops at LSN ${chainEnd})`, {
          details: { missingFrom: s, missingTo: upto },
        });
      }
      if (Number.isFinite(target) && target > chainEnd) {
        throw raError('RA_ERR_WAL_GAP', `LSN ${target} is beyond the archived WAL, which ends at LSN ${chainEnd}: LSN ${chainEnd} to ${target} is missing`, { details: { missingFrom: chainEnd, missingTo: target } });
      }
      return out;
    }
    out.push(src);
    // A segment shorter than its size holds the end of the log (the writer moved on only once full).
    if (src.startLsn + src.rawBytes >= target) return out;
    s += segmentSize;
  }
}

/**
 * Decompresses and checks one segment; cuts it at the last record boundary at or below `target`.
 *
 * A copy holds valid records only (the archiver copies a retired segment, whose torn tail the
 * store cut at reopen; a snapshot copies up to the end of the valid records), so a record that
 * fails its check before the copy's end is damage, not the log's end: RA_ERR_SNAPSHOT_CORRUPT
 * naming that record, unless the target lies at or before it. Cutting there silently would end
 * the restore early and blame the log's end (or the target) instead of the damaged record.
 */
export async function loadSegment(engine: PageEngine, src: WalSource, storeId: Uint8Array, segmentSize: number, target: number): Promise<{ bytes: Buffer; endLsn: number }> {
  const { log } = engine;
  const whole = src.raw ?? (await readRaw(src.path, src.entry));
  const problem = log.checkSegmentHeader(whole, storeId, src.startLsn, segmentSize);
  if (problem) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${src.path}: WAL segment header ${problem}`, { details: { file: src.path } });
  // A segment made at full size that reached here whole (a live file) ends with its last record.
  const raw = whole.subarray(0, log.segmentContent(whole, whole.byteLength, segmentSize).length);
  // The valid records (checked by the engine), cut before the first that ends past the target.
  let p = log.segmentHeaderSize;
  const valid = log.scanRecords(raw, p, raw.byteLength, src.startLsn + p, (at) => {
    const end = at + log.recordLength(raw, at);
    if (at === p && src.startLsn + end <= target) p = end;
  });
  const damaged = src.startLsn + valid;
  if (valid < raw.byteLength && damaged < target) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${src.path}: the WAL record at LSN ${damaged} is damaged (it fails its check, ${raw.byteLength - valid} byte(s) before the end of the copy); the WAL can be replayed up to LSN ${damaged} only (restore --lsn ${damaged})`, {
      details: { file: src.path, lsn: damaged },
    });
  }
  return { bytes: raw.subarray(0, p), endLsn: src.startLsn + p };
}

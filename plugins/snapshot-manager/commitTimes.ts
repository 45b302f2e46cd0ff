/**
 * Commit records in a WAL copy, read through the engine's log face: what a point-in-time
 * restore stops at (the last commit at or before a time or LSN) and the commit times a
 * snapshot's WAL spans (`snapshot list`). Commit records carry the wall-clock time the commit
 * was issued; a log written before they did has commits with no time (null).
 */
import path from 'node:path';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { snapshotPath, type Manifest } from './manifest.js';
import { loadSegment } from './walChain.js';

/** A commit record in the replayed log. */
export interface CommitPoint {
  lsn: number;
  /** Where its record ends: the restored log is cut here when the restore stopped at it. */
  endLsn: number;
  txId: number;
  /** Its wall-clock time, ms since the epoch; null when the log predates commit times. */
  time: number | null;
}

/** Visits the commit records of a segment's bytes from offset `from` (past its header). */
export function forEachCommit(engine: PageEngine, bytes: Uint8Array, startLsn: number, from: number, visit: (c: CommitPoint) => boolean | void): void {
  const { log } = engine;
  const at = Math.max(from, log.segmentHeaderSize);
  let stop = false;
  log.scanRecords(bytes, at, bytes.byteLength, startLsn + at, (p) => {
    if (stop || log.recordKind(bytes, p) !== 'commit') return;
    const lsn = startLsn + p;
    stop = visit({ lsn, endLsn: lsn + log.recordLength(bytes, p), txId: log.recordTxId(bytes, p), time: log.commitTime(bytes, p) }) === true;
  });
}

/** The last commit record of a segment's bytes from offset `from`, or null. */
export function lastCommit(engine: PageEngine, bytes: Uint8Array, startLsn: number, from: number): CommitPoint | null {
  let last: CommitPoint | null = null;
  forEachCommit(engine, bytes, startLsn, from, (c) => void (last = c));
  return last;
}


/** The first and last commit of a snapshot's own WAL copy, `[walFromLsn, endLsn)`. */
export interface CommitSpan {
  first: CommitPoint | null;
  last: CommitPoint | null;
  /** Commits there with no time (a log written before commit records carried one). */
  untimed: number;
}

/**
 * The commits a snapshot's WAL copy holds before its `endLsn`: read by decompressing the copy
 * (it starts at the checkpoint in force when the snapshot began, so it is usually small).
 */
export async function snapshotCommitSpan(engine: PageEngine, dir: string, m: Manifest): Promise<CommitSpan> {
  const span: CommitSpan = { first: null, last: null, untimed: 0 };
  const storeId = Buffer.from(m.storeId, 'hex');
  for (const w of m.wal) {
    const src = { startLsn: w.startLsn, rawBytes: w.rawBytes, path: path.join(snapshotPath(dir, m.id), w.file), entry: w, at: m.finishedAt };
    const seg = await loadSegment(engine, src, storeId, m.segmentSize, m.endLsn);
    forEachCommit(engine, seg.bytes, w.startLsn, Math.max(0, m.walFromLsn - w.startLsn), (c) => {
      span.first ??= c;
      span.last = c;
      if (c.time === null) span.untimed++;
    });
  }
  return span;
}

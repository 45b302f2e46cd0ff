/**
 * The change records of a stretch of WAL, page by page: the one loop that the page rebuild
 * (data-repairer), the WAL archive's page filters and WAL summaries run over segment bytes.
 * Records are found and checked (length, LSN, type, XXH3-64) by the native walScanRecords, a
 * batch at a time.
 */
import { walScanRecords } from 'recovery-agent/native';
import { readU32 } from './format.js';
import { RecordType, kRecLength, kRecPageId, kRecType } from './walRecord.js';

/** Positions per native scan call; the scan goes on from where a full batch stopped. */
const kBatch = 16384;
const positions = new Uint32Array(kBatch);

/**
 * Walks the valid records from position `from` of `buf` (LSN `lsn`) up to `end`, calling `visit`
 * with each one's position; returns where they end: at the first that is not valid (the native
 * scan's checks, those of `validRecordAt`), or `end`.
 */
export function scanRecords(buf: Uint8Array, from: number, end: number, lsn: number, visit?: (at: number) => void): number {
  let p = Math.min(from, end);
  for (let n; (n = walScanRecords(buf, p, end, lsn + (p - from), positions, 0)) > 0; ) {
    if (visit) for (let k = 0; k < n; k++) visit(positions[k]!);
    const last = positions[n - 1]!;
    p = last + readU32(buf, last + kRecLength);
  }
  return p;
}

/**
 * Calls `visit(position, pageId)` for every valid update and CLR record of `buf` from `start`
 * (the record there has LSN `startLsn`), in LSN order, and returns where the valid records end:
 * `start` when there is none.
 */
export function forEachPageRecord(buf: Uint8Array, start: number, startLsn: number, visit: (at: number, pageId: number) => void): number {
  return scanRecords(buf, start, buf.byteLength, startLsn, (at) => {
    const type = buf[at + kRecType];
    if (type === RecordType.Update || type === RecordType.Clr) visit(at, readU32(buf, at + kRecPageId));
  });
}

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
 * Calls `visit(position, pageId)` for every valid update and CLR record of `buf` from `start`
 * (the record there has LSN `startLsn`), in LSN order, and returns where the valid records end:
 * `start` when there is none.
 */
export function forEachPageRecord(buf: Uint8Array, start: number, startLsn: number, visit: (at: number, pageId: number) => void): number {
  let p = start;
  for (let n; (n = walScanRecords(buf, p, buf.byteLength, startLsn + (p - start), positions, 0)) > 0; ) {
    const lastAt = positions[n - 1]!;
    const next = lastAt + readU32(buf, lastAt + kRecLength);
    for (let k = 0; k < n; k++) {
      const at = positions[k]!;
      const type = buf[at + kRecType];
      if (type === RecordType.Update || type === RecordType.Clr) visit(at, readU32(buf, at + kRecPageId));
    }
    p = next;
  }
  return p;
}

/** Bits in a page filter: 4 KiB. */
export const PAGE_FILTER_BITS = 32768;

/**
 * A page filter of a WAL segment: bit `pageId mod 32768` is set for every page a change record
 * names. A clear bit proves the segment holds no record for the page; a set bit may be another
 * page's (about 6 % of bits are set by 2,000 distinct pages).
 */
export function pageFilterOf(segment: Uint8Array, start: number, startLsn: number): Buffer {
  const bits = Buffer.alloc(PAGE_FILTER_BITS / 8);
  forEachPageRecord(segment, start, startLsn, (_at, pageId) => {
    const b = pageId % PAGE_FILTER_BITS;
    bits[b >> 3]! |= 1 << (b & 7);
  });
  return bits;
}

export function filterHas(bits: Uint8Array, pageId: number): boolean {
  const b = pageId % PAGE_FILTER_BITS;
  return bits.byteLength === PAGE_FILTER_BITS / 8 && (bits[b >> 3]! & (1 << (b & 7))) !== 0;
}

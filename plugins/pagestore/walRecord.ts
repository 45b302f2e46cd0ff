/**
 * WAL record encoding. Every record, little-endian:
 *
 *   0  u32 total length (a multiple of 8, checksum included)
 *   4  u8  type          RecordType
 *   5  u8  flags         kFlagFullPage: a full page image follows the body
 *   6  u16 reserved
 *   8  u64 LSN           the record's own position in the log: a stale or misplaced record fails
 *  16  u64 transaction id
 *  24  u64 previous LSN of the same transaction (0 for its first record)
 *  32  u32 page id
 *  36  u32 offset        byte offset of the changed range within the page
 *  40  u32 length        bytes in the changed range (checkpoint: bytes of its JSON body;
 *                        commit: 8 when it carries its time, 0 in logs written before that)
 *  44  u32 reserved
 *  48  u64 undo-next LSN (CLR: the next record of the transaction to undo)
 *  56  body              update: before image, after image; CLR: after image;
 *                        checkpoint: JSON; commit: u64 ms since the epoch (absent in old
 *                        logs); then the full page image when kFlagFullPage
 *   …  zero padding to a multiple of 8
 *  -8  u64 checksum      XXH3-64 of every byte before it
 */
import { xxh3 } from 'recovery-agent/native';
import { readU32, readU64, writeU64 } from './format.js';

export const enum RecordType {
  Update = 1,
  Commit = 2,
  Abort = 3,
  Clr = 4,
  Checkpoint = 5,
}

export const kFlagFullPage = 1;

export const RECORD_HEADER_SIZE = 56;
export const RECORD_MIN_SIZE = RECORD_HEADER_SIZE + 8;

export const kRecLength = 0;
export const kRecType = 4;
export const kRecFlags = 5;
export const kRecLsn = 8;
export const kRecTxId = 16;
export const kRecPrevLsn = 24;
export const kRecPageId = 32;
export const kRecOffset = 36;
export const kRecRangeLength = 40;
export const kRecUndoNext = 48;

/** Fields of a record to encode. */
export interface RecordFields {
  type: RecordType;
  txId: number;
  prevLsn: number;
  pageId?: number;
  offset?: number;
  /** Update: the bytes before the change. */
  before?: Uint8Array;
  /** Update and CLR: the bytes after the change. */
  after?: Uint8Array;
  /** CLR: the next LSN of the transaction left to undo. */
  undoNextLsn?: number;
  /** The whole page after the change: the first change to a page after a checkpoint. */
  fullPage?: Uint8Array;
  /** Checkpoint body. */
  json?: Uint8Array;
  /** Commit: the wall-clock time of the commit, ms since the epoch (the commit record's body). */
  commitTime?: number;
}

/** Bytes of a commit record's body: its time, a u64. */
export const COMMIT_TIME_SIZE = 8;

/** Bytes the encoded record will take. */
export function encodedSize(f: RecordFields): number {
  const body = (f.before?.byteLength ?? 0) + (f.after?.byteLength ?? 0) + (f.json?.byteLength ?? 0) + (f.fullPage?.byteLength ?? 0) + (f.commitTime !== undefined ? COMMIT_TIME_SIZE : 0);
  return align8(RECORD_HEADER_SIZE + body) + 8;
}

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Encodes a record for position `lsn` into `out` (exactly `encodedSize(f)` bytes, zeroed). */
export function encodeRecord(out: Buffer, lsn: number, f: RecordFields): void {
  const total = out.byteLength;
  const rangeLength =
    f.type === RecordType.Checkpoint ? (f.json?.byteLength ?? 0) : f.commitTime !== undefined ? COMMIT_TIME_SIZE : (f.after?.byteLength ?? 0);
  out.writeUInt32LE(total, kRecLength);
  out[kRecType] = f.type;
  out[kRecFlags] = f.fullPage ? kFlagFullPage : 0;
  writeU64(out, kRecLsn, lsn);
  writeU64(out, kRecTxId, f.txId);
  writeU64(out, kRecPrevLsn, f.prevLsn);
  out.writeUInt32LE(f.pageId ?? 0, kRecPageId);
  out.writeUInt32LE(f.offset ?? 0, kRecOffset);
  out.writeUInt32LE(rangeLength, kRecRangeLength);
  writeU64(out, kRecUndoNext, f.undoNextLsn ?? 0);
  let at = RECORD_HEADER_SIZE;
  if (f.commitTime !== undefined) {
    writeU64(out, at, f.commitTime);
    at += COMMIT_TIME_SIZE;
  }
  for (const part of [f.before, f.after, f.json, f.fullPage]) {
    if (part) {
      out.set(part, at);
      at += part.byteLength;
    }
  }
  out.writeBigUInt64LE(xxh3(out.subarray(0, total - 8)), total - 8);
}

/** A decoded view of a record inside a larger buffer; the images are views, not copies. */
export interface WalRecord {
  readonly lsn: number;
  readonly type: RecordType;
  readonly txId: number;
  readonly prevLsn: number;
  readonly pageId: number;
  readonly offset: number;
  readonly length: number;
  readonly undoNextLsn: number;
  readonly before?: Uint8Array;
  readonly after?: Uint8Array;
  readonly fullPage?: Uint8Array;
  readonly json?: Uint8Array;
  /** Commit: its wall-clock time (ms since the epoch), or null for a commit written before commits carried one. */
  readonly commitTime?: number | null;
  /** Bytes the record takes in the log. */
  readonly size: number;
}

/**
 * Checks the record at `at`: length sane and within `limit`, LSN equal to `expectedLsn`,
 * checksum right. Returns its size, or 0 when it is not a valid record.
 */
export function validRecordAt(buf: Uint8Array, at: number, limit: number, expectedLsn: number): number {
  if (limit - at < RECORD_MIN_SIZE) return 0;
  const total = readU32(buf, at + kRecLength);
  if (total < RECORD_MIN_SIZE || (total & 7) !== 0 || total > limit - at) return 0;
  if (readU64(buf, at + kRecLsn) !== expectedLsn) return 0;
  const type = buf[at + kRecType]!;
  if (type < RecordType.Update || type > RecordType.Checkpoint) return 0;
  const sum = xxh3(buf.subarray(at, at + total - 8));
  if (Number(sum & 0xffff_ffffn) !== readU32(buf, at + total - 8) || Number(sum >> 32n) !== readU32(buf, at + total - 4)) return 0;
  return total;
}

/** Decodes the (already validated) record at `at`. `pageSize` sizes a full page image. */
export function decodeRecord(buf: Uint8Array, at: number, pageSize: number): WalRecord {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const size = dv.getUint32(at + kRecLength, true);
  const type = buf[at + kRecType] as RecordType;
  const flags = buf[at + kRecFlags]!;
  const length = dv.getUint32(at + kRecRangeLength, true);
  let p = at + RECORD_HEADER_SIZE;
  const take = (n: number) => {
    const v = buf.subarray(p, p + n);
    p += n;
    return v;
  };
  const rec: { -readonly [K in keyof WalRecord]: WalRecord[K] } = {
    lsn: readU64(buf, at + kRecLsn),
    type,
    txId: readU64(buf, at + kRecTxId),
    prevLsn: readU64(buf, at + kRecPrevLsn),
    pageId: dv.getUint32(at + kRecPageId, true),
    offset: dv.getUint32(at + kRecOffset, true),
    length,
    undoNextLsn: readU64(buf, at + kRecUndoNext),
    size,
  };
  if (type === RecordType.Update) {
    rec.before = take(length);
    rec.after = take(length);
  } else if (type === RecordType.Clr) {
    rec.after = take(length);
  } else if (type === RecordType.Checkpoint) {
    rec.json = take(length);
  } else if (type === RecordType.Commit) {
    rec.commitTime = commitTimeAt(buf, at);
  }
  if (flags & kFlagFullPage) rec.fullPage = take(pageSize);
  return rec;
}

/** True for records that change a page (and so are redone). */
export function changesPage(type: RecordType): boolean {
  return type === RecordType.Update || type === RecordType.Clr;
}

/**
 * The time of the (valid) commit record at `at`, ms since the epoch, or null when it has none:
 * a commit written before commits carried their time has an empty body (length 0).
 */
export function commitTimeAt(buf: Uint8Array, at: number): number | null {
  if (readU32(buf, at + kRecRangeLength) < COMMIT_TIME_SIZE || readU32(buf, at + kRecLength) < RECORD_HEADER_SIZE + COMMIT_TIME_SIZE + 8) return null;
  return readU64(buf, at + RECORD_HEADER_SIZE);
}

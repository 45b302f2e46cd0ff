/**
 * The on-disk page format of the reference store (every layout of the store: FORMAT.md beside
 * this file).
 *
 * Page header, 32 bytes, little-endian:
 *
 *   0  u64 checksum   XXH3-64 of bytes [8, pageSize): every other header field and the payload
 *   8  u32 magic      PAGE_MAGIC
 *  12  u16 version    FORMAT_VERSION
 *  14  u16 type       PageType
 *  16  u32 page id    the page's own position: a page written to the wrong place fails
 *  20  u32 reserved   zero
 *  24  u64 page LSN   the LSN of the last WAL record applied to the page
 *  32  ... payload
 */
import type { FileHandle } from 'node:fs/promises';
import { xxh3 } from 'recovery-agent/native';
import { readU64 } from '../../core/bytes.js';

export const PAGE_MAGIC = 0x47504152; // "RAPG"
export const FORMAT_VERSION = 1;
export const PAGE_HEADER_SIZE = 32;
export const MIN_PAGE_SIZE = 4096;
export const MAX_PAGE_SIZE = 65536;
export const DEFAULT_PAGE_SIZE = 8192;

export const kChecksum = 0;
export const kMagic = 8;
export const kVersion = 12;
export const kType = 14;
export const kPageId = 16;
export const kReserved = 20;
export const kPageLsn = 24;
/** Where the checksummed bytes start. */
export const kChecksummed = 8;

export const enum PageType {
  Data = 0,
  Superblock = 1,
}

export { readU32, readU64 } from '../../core/bytes.js';

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = (v >>> 8) & 0xff;
  buf[off + 2] = (v >>> 16) & 0xff;
  buf[off + 3] = (v >>> 24) & 0xff;
}

export function writeU64(buf: Uint8Array, off: number, v: number): void {
  writeU32(buf, off, v >>> 0);
  writeU32(buf, off + 4, Math.floor(v / 0x1_0000_0000));
}

export function isValidPageSize(size: number): boolean {
  return Number.isInteger(size) && size >= MIN_PAGE_SIZE && size <= MAX_PAGE_SIZE && (size & (size - 1)) === 0;
}

/** Fills a fresh page header (checksum left to `sealPage`). */
export function initPageHeader(page: Uint8Array, pageId: number, type: PageType, lsn = 0): void {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  dv.setUint32(kMagic, PAGE_MAGIC, true);
  dv.setUint16(kVersion, FORMAT_VERSION, true);
  dv.setUint16(kType, type, true);
  dv.setUint32(kPageId, pageId, true);
  dv.setUint32(kReserved, 0, true);
  writeU64(page, kPageLsn, lsn);
}

export function pageLsn(page: Uint8Array): number {
  return readU64(page, kPageLsn);
}

export function setPageLsn(page: Uint8Array, lsn: number): void {
  writeU64(page, kPageLsn, lsn);
}

/** Computes and stores the page's checksum; call right before the page leaves memory. */
export function sealPage(page: Uint8Array): void {
  const sum = xxh3(page.subarray(kChecksummed));
  new DataView(page.buffer, page.byteOffset, page.byteLength).setBigUint64(kChecksum, sum, true);
}

/** Why a page fails verification, or null when it is sound. */
export type PageFault = 'checksum' | 'magic' | 'version' | 'page-id';

/** Checks a page read from position `expectedId`: checksum, magic, version, page id. */
export function verifyPage(page: Uint8Array, expectedId: number): PageFault | null {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  if (dv.getBigUint64(kChecksum, true) !== xxh3(page.subarray(kChecksummed))) return 'checksum';
  if (dv.getUint32(kMagic, true) !== PAGE_MAGIC) return 'magic';
  if (dv.getUint16(kVersion, true) !== FORMAT_VERSION) return 'version';
  if (dv.getUint32(kPageId, true) !== expectedId) return 'page-id';
  return null;
}

/**
 * True when a page's header is not its own any more: at least two of its identity fields (magic,
 * format version, page id) are wrong. A torn write over the header leaves garbage in all three
 * (and in its LSN); one flipped bit, or a tear that spares the header, breaks at most one. Such
 * a header vouches for nothing, its LSN least of all (PageStore.repairPage).
 */
export function headerTorn(page: Uint8Array, expectedId: number): boolean {
  const dv = new DataView(page.buffer, page.byteOffset, page.byteLength);
  const wrong = Number(dv.getUint32(kMagic, true) !== PAGE_MAGIC) + Number(dv.getUint16(kVersion, true) !== FORMAT_VERSION) + Number(dv.getUint32(kPageId, true) !== expectedId);
  return wrong >= 2;
}

/**
 * True when two images of a page hold the same bytes apart from their checksums and page LSNs:
 * writing one over the other changes none of the page's contents, only the LSN it says.
 */
export function sameButLsn(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.compare(a.subarray(kChecksummed, kPageLsn), b.subarray(kChecksummed, kPageLsn)) === 0 && Buffer.compare(a.subarray(kPageLsn + 8), b.subarray(kPageLsn + 8)) === 0;
}

/** Reads page `pageId` from a data file: its bytes, and what is wrong with them (null: it verifies). */
export async function readPageAt(data: FileHandle, pageId: number, pageSize: number): Promise<{ image: Buffer; fault: PageFault | 'short-read' | null }> {
  const image = Buffer.alloc(pageSize);
  const { bytesRead } = await data.read(image, 0, pageSize, pageId * pageSize);
  return { image, fault: bytesRead < pageSize ? 'short-read' : verifyPage(image, pageId) };
}

/**
 * The files of a store directory and how a new store is laid out:
 *
 *   pages.db   the data file: pageCount pages of pageSize bytes; page 0 is the superblock
 *   wal/       WAL segments
 *   control    where the last checkpoint is (control.ts)
 *   LOCK       the writer's pid lock (storeLock.ts)
 *   run/       the control socket's private directory, while a process has the store open
 *
 * Every file is created 0600 and every directory 0700, whatever the umask (core/privateFiles.ts);
 * a store made with looser modes (by an older version) is tightened when it is opened.
 *
 * Superblock payload (page 0, after the page header), little-endian: u32 magic, u32 page size,
 * u32 page count, u32 WAL segment size, 16 bytes store id, u64 creation time (ms since epoch).
 * It is written once, at creation.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { raError } from '../../core/errors.js';
import { ensurePrivateDir, openPrivate, tightenPath, type Tightened } from '../../core/privateFiles.js';
import { writeControl } from './control.js';
import { CONTROL_SOCKET_DIR } from './controlSocket.js';
import { DEFAULT_PAGE_SIZE, PAGE_HEADER_SIZE, PageType, initPageHeader, isValidPageSize, sealPage, verifyPage, writeU64 } from './format.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { RecordType, encodeRecord, encodedSize } from './walRecord.js';
import { DEFAULT_SEGMENT_SIZE, SEGMENT_HEADER_SIZE, SEG_FULL_SIZE, encodeSegmentHeader, segmentPath } from './walSegments.js';
import { writeAll } from '../../core/writeAll.js';

export const SUPERBLOCK_MAGIC = 0x42534152; // "RASB"
export const DATA_FILE = 'pages.db';

export interface StoreGeometry {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly segmentSize: number;
  readonly storeId: Uint8Array;
}

export interface CreateOptions {
  pageCount: number;
  pageSize?: number;
  segmentSize?: number;
}

export const dataFileOf = (dir: string) => path.join(dir, DATA_FILE);
export const walDirOf = (dir: string) => path.join(dir, 'wal');

export function validateCreateOptions(o: CreateOptions): Required<CreateOptions> {
  const pageSize = o.pageSize ?? DEFAULT_PAGE_SIZE;
  const segmentSize = o.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  if (!isValidPageSize(pageSize)) {
    throw raError('RA_ERR_STORE_OPTIONS', `pageSize must be a power of two from 4096 to 65536 (got ${JSON.stringify(o.pageSize)})`);
  }
  if (!Number.isInteger(o.pageCount) || o.pageCount < 2 || o.pageCount > 0xffff_fff0) {
    throw raError('RA_ERR_STORE_OPTIONS', `pageCount must be an integer from 2 to 4294967280, page 0 being the superblock (got ${JSON.stringify(o.pageCount)})`);
  }
  if (!Number.isInteger(segmentSize) || segmentSize < 4 * (pageSize * 2 + 256) || segmentSize > 1024 * 1024 * 1024 || segmentSize % 4096 !== 0) {
    throw raError('RA_ERR_STORE_OPTIONS', `segmentSize must be a multiple of 4096 from ${4 * (pageSize * 2 + 256)} to 1 GiB for ${pageSize}-byte pages (got ${JSON.stringify(o.segmentSize)})`);
  }
  return { pageCount: o.pageCount, pageSize, segmentSize };
}

/** True when `dir` holds a store (its control file exists). */
export function storeExists(dir: string): boolean {
  return existsSync(path.join(dir, 'control'));
}

/**
 * Creates a store: every page initialised and checksummed, one WAL segment holding an initial
 * checkpoint record, and the control file pointing at it (written last: a crash before that
 * leaves a directory that is not a store yet, and creating again starts over).
 */
export async function createStore(dir: string, options: CreateOptions): Promise<StoreGeometry> {
  const { pageCount, pageSize, segmentSize } = validateCreateOptions(options);
  if (storeExists(dir)) throw raError('RA_ERR_STORE_INVALID', `${dir} already holds a store`);
  await ensurePrivateDir(dir);
  await ensurePrivateDir(walDirOf(dir));
  const storeId = randomBytes(16);

  const data = await openPrivate(dataFileOf(dir), 'w');
  try {
    const chunkPages = Math.max(1, Math.floor((4 << 20) / pageSize));
    const chunk = Buffer.alloc(chunkPages * pageSize);
    for (let first = 0; first < pageCount; first += chunkPages) {
      const n = Math.min(chunkPages, pageCount - first);
      chunk.fill(0);
      for (let i = 0; i < n; i++) {
        const page = chunk.subarray(i * pageSize, (i + 1) * pageSize);
        const id = first + i;
        initPageHeader(page, id, id === 0 ? PageType.Superblock : PageType.Data);
        if (id === 0) writeSuperblock(page, { pageSize, pageCount, segmentSize, storeId });
        sealPage(page);
      }
      await writeAll(data, chunk.subarray(0, n * pageSize), first * pageSize);
    }
    await data.datasync();
  } finally {
    await data.close();
  }

  const firstLsn = SEGMENT_HEADER_SIZE;
  const json = Buffer.from(JSON.stringify({ redoLsn: firstLsn, nextTxId: 1, att: [], dpt: [] }));
  const fields = { type: RecordType.Checkpoint, txId: 0, prevLsn: 0, json };
  const rec = Buffer.alloc(encodedSize(fields));
  encodeRecord(rec, firstLsn, fields);
  const seg = await openPrivate(segmentPath(walDirOf(dir), 0), 'w');
  try {
    // FULL_SIZE, as the writer makes every segment (walWriter.ts); the control file, written
    // last, is what makes the store exist, so no rename is needed here.
    await writeAll(seg, encodeSegmentHeader(storeId, 0, segmentSize, undefined, SEG_FULL_SIZE), 0);
    await writeAll(seg, rec, firstLsn);
    await seg.truncate(segmentSize);
    await seg.datasync();
  } finally {
    await seg.close();
  }
  await fsyncDir(walDirOf(dir));
  await writeControl(dir, { checkpointLsn: firstLsn, redoLsn: firstLsn, nextTxId: 1, pageSize, pageCount, segmentSize, storeId });
  return { pageSize, pageCount, segmentSize, storeId };
}

/**
 * Removes group and other access from a store made with looser modes (an older version followed
 * the umask: 0644 files, or 0666 under umask 000): the store directory, wal/ and run/, pages.db,
 * control and every WAL segment. Never loosens anything. Each change is logged (warn): the data
 * was readable by other local users until now. The caller holds the store's lock.
 */
export async function tightenStore(dir: string, log?: Logger): Promise<Tightened[]> {
  const wal = walDirOf(dir);
  const paths = [dir, wal, path.join(dir, CONTROL_SOCKET_DIR), dataFileOf(dir), path.join(dir, 'control')];
  const names = await readdir(wal).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  for (const n of names) paths.push(path.join(wal, n));
  const done: Tightened[] = [];
  for (const p of paths) {
    const t = await tightenPath(p);
    if (t) done.push(t);
  }
  if (done.length > 0) log?.warn({ store: dir, tightened: done }, 'store files were open to other users (group or other permission bits); removed those bits');
  return done;
}

function writeSuperblock(page: Uint8Array, g: StoreGeometry): void {
  const b = Buffer.from(page.buffer, page.byteOffset + PAGE_HEADER_SIZE, 40);
  b.writeUInt32LE(SUPERBLOCK_MAGIC, 0);
  b.writeUInt32LE(g.pageSize, 4);
  b.writeUInt32LE(g.pageCount, 8);
  b.writeUInt32LE(g.segmentSize, 12);
  b.set(g.storeId, 16);
  writeU64(b, 32, Date.now());
}

/**
 * Reads and checks the superblock against the control file's geometry, and the data file's
 * size against both. Any disagreement means the files are not one store.
 */
export async function checkDataFile(dir: string, data: FileHandle, g: StoreGeometry): Promise<void> {
  const file = dataFileOf(dir);
  const { size } = await data.stat();
  if (size !== g.pageSize * g.pageCount) {
    throw raError('RA_ERR_STORE_INVALID', `${file} is ${size} bytes; the control file says ${g.pageCount} pages of ${g.pageSize} bytes (${g.pageSize * g.pageCount})`);
  }
  const page = Buffer.alloc(g.pageSize);
  await data.read(page, 0, g.pageSize, 0);
  const problem = superblockProblem(page, g);
  if (problem) throw raError('RA_ERR_STORE_INVALID', `${file}: ${problem}`);
}

/**
 * Why `page` is not this store's superblock (page 0 sealed, with the geometry and store id of
 * the control file), or null when it is. A superblock of another store verifies as a page; it
 * is still not ours.
 */
export function superblockProblem(page: Uint8Array, g: StoreGeometry): string | null {
  const fault = verifyPage(page, 0);
  if (fault) return `the superblock (page 0) fails its ${fault} check`;
  const sb = Buffer.from(page.buffer, page.byteOffset + PAGE_HEADER_SIZE, 40);
  if (sb.readUInt32LE(0) !== SUPERBLOCK_MAGIC || sb.readUInt32LE(4) !== g.pageSize || sb.readUInt32LE(8) !== g.pageCount || sb.readUInt32LE(12) !== g.segmentSize || !Buffer.from(g.storeId).equals(sb.subarray(16, 32))) {
    return "the superblock does not match the control file (another store's files mixed in?)";
  }
  return null;
}

/**
 * The base copy (plugins/replication/DESIGN.md, "A new replica"): how a new or far-behind replica
 * gets a whole store from its primary over the replication channel, then streams from there.
 *
 * The owner's side (`sendBaseCopy`, called by the replication sender for a `base-request`):
 *   1. a checkpoint: every page is on disk as of its redo LSN, and the next change to any page
 *      logs a full page image (FORMAT.md);
 *   2. `base-begin`: the redo LSN, the checkpoint's LSN, the geometry and store id;
 *   3. every page as the store sees it (`PageStore.copyPages`: the cached copy when in memory,
 *      else the data file read while no page write is under way), a chunk at a time: a fuzzy
 *      copy, each page whole and at least as new as at the redo point;
 *   4. the WAL flushed; its end is the LSN the copy is consistent from (no page copied carries a
 *      change past it);
 *   5. the log from the first segment recovery of the copy needs to that LSN, as raw segment
 *      bytes (headers included, so the replica's segments carry the primary's epoch and R);
 *   6. `base-end` with that LSN.
 *
 * The replica's side (`receiveBaseCopy`): everything goes into `<dir>.init-<pid>` (the pid: an
 * agent and `replica init` copying at once never share one); copies of processes no longer alive
 * are removed first. At `base-end` the pages and segments are synced, the epoch and control files
 * written, and the directory renamed to `<dir>` (then the parent synced). A store directory
 * exists only whole: a crash in the middle leaves `<dir>.init-<pid>`, which is never opened and
 * is removed by the next attempt. The rename fails when another copy finished first. Opening the result as a replica runs redo from the redo LSN to
 * the end of the copied log (records no newer than a page's LSN are skipped), after which its
 * position (end LSN, R) is the primary's own and its `hello` verifies.
 */
import { open, readdir, rename, rm, rmdir, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError, isRaError, raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { ensurePrivateDir, openPrivate } from '../../core/privateFiles.js';
import { writeAll } from '../../core/writeAll.js';
import {
  baseBeginFrame,
  baseEndFrame,
  basePageFrame,
  baseRequestFrame,
  baseWalFrame,
  parseBaseBegin,
  parseBaseEnd,
  parseBasePage,
  parseBaseWal,
} from '../../core/replication/baseFrames.js';
import { FrameType, frameTypeName, type ReplicationChannel } from '../../core/replication/protocol.js';
import { readControl, writeControl } from './control.js';
import { faultPoint } from './faults.js';
import { verifyPage } from './format.js';
import { writeEpoch } from './replicaLog.js';
import { dataFileOf, storeExists, walDirOf, type StoreGeometry } from './storeFiles.js';
import { RecordType, decodeRecord, validRecordAt } from './walRecord.js';
import { readRecordFromDisk } from './walScan.js';
import { SEGMENT_HEADER_SIZE, isFullSize, segmentPath, segmentStartOf } from './walSegments.js';

/** Bytes of pages per `base-page` frame. */
const kPageChunkBytes = 1024 * 1024;
/** Bytes of log per `base-wal` frame (at most; a longer record goes alone). */
const kWalChunkBytes = 4 * 1024 * 1024;
/** Progress is logged every this many pages (and at the end). */
const kProgressEvery = 4096;

/** Pages copied so far of the total. */
export interface BaseCopyProgress {
  pagesCopied: number;
  pagesTotal: number;
}

/** What the owner gives the sender to copy itself (PageStore). */
export interface BaseSource {
  readonly dir: string;
  readonly geometry: StoreGeometry;
  checkpoint(): Promise<unknown>;
  /** Pages `[first, first + count)`, each whole (never torn by a concurrent write). */
  copyPages(first: number, count: number): Promise<Buffer>;
  /** Flushes the WAL; resolves with its flushed end. */
  flushAll(): Promise<number>;
}

/**
 * The owner's side: see the file's comment. `retain(lsn)` keeps the log from `lsn` while the copy
 * runs; null releases it when the copy fails. A copy sent leaves it at the consistency LSN, which
 * resolves it: the replica's hello comes from there once it has opened the copy, and a
 * checkpoint meanwhile must not retire that segment (the caller releases it then).
 */
export async function sendBaseCopy(
  ch: ReplicationChannel,
  src: BaseSource,
  o: { epoch: number; replica: string; retain(lsn: number | null): void; log?: Logger | undefined },
): Promise<number> {
  const g = src.geometry;
  const walDir = walDirOf(src.dir);
  // Every segment kept until the copy knows where its log starts: the checkpoint may be one
  // already under way (an older redo point than the end now), and another may complete meanwhile.
  o.retain(0);
  let sent = false;
  try {
    await src.checkpoint();
    const control = await readControl(src.dir);
    const ckpt = decodeRecord(await readRecordFromDisk(walDir, g.storeId, g.segmentSize, control.checkpointLsn), 0, g.pageSize);
    if (ckpt.type !== RecordType.Checkpoint || !ckpt.json) throw raError('RA_ERR_STORE_INVALID', `control file points at LSN ${control.checkpointLsn}, which is not a checkpoint record`);
    const body = JSON.parse(Buffer.from(ckpt.json).toString('utf8')) as { att: Array<[number, number, number]> };
    // Recovery of the copy reads from the oldest record of a transaction active at the checkpoint.
    const walFrom = Math.min(control.redoLsn, ...body.att.map((a) => a[1]));
    o.retain(walFrom);
    const info = { pageSize: g.pageSize, pageCount: g.pageCount, segmentSize: g.segmentSize, storeId: Buffer.from(g.storeId).toString('hex'), nextTxId: control.nextTxId, walFrom };
    ch.send(baseBeginFrame(o.epoch, { redoLsn: control.redoLsn, checkpointLsn: control.checkpointLsn, info }));
    o.log?.info({ replica: o.replica, redoLsn: control.redoLsn, pages: g.pageCount }, 'base copy started');

    const perChunk = Math.max(1, Math.floor(kPageChunkBytes / g.pageSize));
    for (let first = 0; first < g.pageCount; first += perChunk) {
      if (ch.failure) throw ch.failure;
      const count = Math.min(perChunk, g.pageCount - first);
      ch.send(basePageFrame(o.epoch, first, count, await src.copyPages(first, count)));
      await ch.drained();
      const done = first + count;
      if (Math.floor(done / kProgressEvery) !== Math.floor(first / kProgressEvery) || done === g.pageCount) {
        o.log?.info({ replica: o.replica, pagesCopied: done, pagesTotal: g.pageCount }, 'base copy progress');
      }
    }

    const consistent = await src.flushAll();
    for (let seg = segmentStartOf(walFrom, g.segmentSize); seg < consistent; seg += g.segmentSize) {
      await sendSegment(ch, o.epoch, walDir, seg, Math.min(consistent, seg + g.segmentSize));
    }
    ch.send(baseEndFrame(o.epoch, consistent));
    await ch.drained();
    o.log?.info({ replica: o.replica, consistentLsn: consistent }, 'base copy sent');
    o.retain(consistent);
    sent = true;
    return consistent;
  } finally {
    if (!sent) o.retain(null);
  }
}

/** Segment `seg`'s header and its valid records below `limit`, as `base-wal` frames. */
async function sendSegment(ch: ReplicationChannel, epoch: number, walDir: string, seg: number, limit: number): Promise<void> {
  const fh = await open(segmentPath(walDir, seg), 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw raError('RA_ERR_WAL_CORRUPT', `the log segment at ${seg} the base copy needs is missing`);
    throw err;
  });
  try {
    const header = Buffer.alloc(SEGMENT_HEADER_SIZE);
    await fh.read(header, 0, SEGMENT_HEADER_SIZE, 0);
    ch.send(baseWalFrame(epoch, seg, header));
    let at = seg + SEGMENT_HEADER_SIZE;
    while (at < limit) {
      let want = Math.min(limit - at, kWalChunkBytes);
      let buf = Buffer.alloc(want);
      let { bytesRead } = await fh.read(buf, 0, want, at - seg);
      let p = 0;
      for (let n; p < bytesRead && (n = validRecordAt(buf, p, bytesRead, at + p)) > 0; ) p += n;
      if (p === 0 && bytesRead >= 8) {
        // One record longer than the chunk.
        want = buf.readUInt32LE(0);
        if (want > kWalChunkBytes && want <= limit - at) {
          buf = Buffer.alloc(want);
          ({ bytesRead } = await fh.read(buf, 0, want, at - seg));
          if (validRecordAt(buf, 0, bytesRead, at) === want) p = want;
        }
      }
      if (p === 0) break; // the segment's unused tail: its next record did not fit
      ch.send(baseWalFrame(epoch, at, buf.subarray(0, p)));
      await ch.drained();
      at += p;
    }
    if (limit < seg + (await fh.stat()).size && at < limit) {
      throw raError('RA_ERR_WAL_CORRUPT', `no valid record at LSN ${at}, below the flushed end ${limit}`);
    }
  } finally {
    await fh.close();
  }
}

/** The directory this process writes a base copy into before it becomes `dir`. */
export const initDirOf = (dir: string, pid = process.pid): string => `${path.resolve(dir)}.init-${pid}`;

/** Removes the base copies of `dir` a process that is no longer alive left (a crash in the middle). */
async function removeDeadCopies(dir: string): Promise<void> {
  const prefix = `${path.basename(dir)}.init-`;
  for (const name of await readdir(path.dirname(dir)).catch(() => [] as string[])) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isInteger(pid) || pid <= 0 || (pid !== process.pid && alive(pid))) continue;
    await rm(path.join(path.dirname(dir), name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface ReceiveBaseOptions {
  /** This replica's name (the primary's logs and status). */
  id: string;
  /** The epoch this replica asks with (the primary's answer sets the store's). */
  epoch: number;
  onProgress?: (p: BaseCopyProgress) => void;
  log?: Logger | undefined;
}

export interface BaseCopyResult {
  redoLsn: number;
  /** The copy is consistent once its log is applied to here (it is, when the replica opens). */
  consistentLsn: number;
  epoch: number;
  pages: number;
}

/**
 * The replica's side: asks for a base copy on `ch` (connected, nothing sent yet) and writes it
 * as the store `dir`, which must not exist. See the file's comment.
 */
export async function receiveBaseCopy(ch: ReplicationChannel, dir: string, o: ReceiveBaseOptions): Promise<BaseCopyResult> {
  dir = path.resolve(dir);
  // An empty directory (made for the store by hand or by a deployment) is no store: it is replaced.
  if (!storeExists(dir) && (await exists(dir)) && (await readdir(dir)).length === 0) await rmdir(dir);
  if (storeExists(dir) || (await exists(dir))) throw raError('RA_ERR_STORE_INVALID', `${dir} already exists; a base copy never overwrites a store (move it aside first)`);
  const tmp = initDirOf(dir);
  // A copy a crash interrupted: never a store (no rename happened), so nothing of it is kept.
  await removeDeadCopies(dir);
  ch.epoch = o.epoch;
  ch.send(baseRequestFrame(o.epoch, o.id));
  const first = await ch.next();
  const begin = parseBaseBegin(first);
  // The primary's epoch: the store's from now on (its segments' headers carry it too).
  const epoch = first.epoch;
  const info = begin.info as { pageSize: number; pageCount: number; segmentSize: number; storeId: string; nextTxId: number; walFrom: number };
  const g: StoreGeometry = { pageSize: info.pageSize, pageCount: info.pageCount, segmentSize: info.segmentSize, storeId: Buffer.from(info.storeId, 'hex') };
  if (!Number.isInteger(g.pageSize) || !Number.isInteger(g.pageCount) || !Number.isInteger(g.segmentSize) || g.storeId.byteLength !== 16) {
    throw raError('RA_ERR_REPL_PROTOCOL', `base-begin frame with a bad description: ${JSON.stringify(begin.info)}`);
  }
  await ensurePrivateDir(tmp);
  await ensurePrivateDir(walDirOf(tmp));
  const data = await openPrivate(dataFileOf(tmp), 'w');
  const segments = new Map<number, FileHandle>();
  let pagesCopied = 0;
  const received = new Uint8Array(g.pageCount);
  try {
    await data.truncate(g.pageCount * g.pageSize);
    let walEnd = 0;
    for (;;) {
      const f = await ch.next();
      if (f.type === FrameType.basePage) {
        const p = parseBasePage(f, g.pageSize);
        if (p.first + p.count > g.pageCount) throw raError('RA_ERR_REPL_PROTOCOL', `base-page frame for pages ${p.first}..${p.first + p.count - 1} of a ${g.pageCount}-page store`);
        for (let i = 0; i < p.count; i++) {
          const fault = verifyPage(p.images.subarray(i * g.pageSize, (i + 1) * g.pageSize), p.first + i);
          if (fault) throw raError('RA_ERR_REPL_PROTOCOL', `base copy: page ${p.first + i} fails its ${fault} check`);
          if (!received[p.first + i]) pagesCopied++;
          received[p.first + i] = 1;
        }
        await writeAll(data, p.images, p.first * g.pageSize);
        faultPoint('base-copy');
        o.onProgress?.({ pagesCopied, pagesTotal: g.pageCount });
      } else if (f.type === FrameType.baseWal) {
        const w = parseBaseWal(f);
        const seg = segmentStartOf(w.start, g.segmentSize);
        if (w.start + w.bytes.byteLength > seg + g.segmentSize) throw raError('RA_ERR_REPL_PROTOCOL', `base-wal frame [${w.start}, ${w.start + w.bytes.byteLength}) crosses a segment's end`);
        let fh = segments.get(seg);
        if (!fh) {
          if (w.start !== seg) throw raError('RA_ERR_REPL_PROTOCOL', `base-wal frame at ${w.start} before its segment's header`);
          fh = await openPrivate(segmentPath(walDirOf(tmp), seg), 'w');
          segments.set(seg, fh);
          // A segment its writer made at full size is copied at full size (zeros after its records).
          if (isFullSize(w.bytes)) await fh.truncate(g.segmentSize);
        }
        await writeAll(fh, w.bytes, w.start - seg);
        walEnd = Math.max(walEnd, w.start + w.bytes.byteLength);
      } else if (f.type === FrameType.baseEnd) {
        const { consistentLsn } = parseBaseEnd(f);
        if (pagesCopied !== g.pageCount) throw raError('RA_ERR_REPL_PROTOCOL', `base copy ended with ${pagesCopied} of ${g.pageCount} pages`);
        if (walEnd < consistentLsn && consistentLsn - segmentStartOf(consistentLsn, g.segmentSize) > SEGMENT_HEADER_SIZE) {
          throw raError('RA_ERR_REPL_PROTOCOL', `base copy ended with the log up to ${walEnd}, before the LSN it is consistent from (${consistentLsn})`);
        }
        if (![...segments.keys()].includes(segmentStartOf(info.walFrom, g.segmentSize))) throw raError('RA_ERR_REPL_PROTOCOL', `base copy ended without the log segment of its redo point (${info.walFrom})`);
        await data.datasync();
        for (const fh of segments.values()) await fh.datasync();
        await fsyncDir(walDirOf(tmp));
        await writeEpoch(tmp, epoch);
        await writeControl(tmp, { checkpointLsn: begin.checkpointLsn, redoLsn: begin.redoLsn, nextTxId: info.nextTxId, ...g });
        await fsyncDir(tmp);
        faultPoint('base-copy-before-rename');
        await rename(tmp, dir);
        await fsyncDir(path.dirname(dir));
        o.log?.info({ dir, redoLsn: begin.redoLsn, consistentLsn, pages: pagesCopied }, 'base copy complete');
        return { redoLsn: begin.redoLsn, consistentLsn, epoch, pages: pagesCopied };
      } else {
        throw raError('RA_ERR_REPL_PROTOCOL', `unexpected ${frameTypeName(f.type)} frame during a base copy`);
      }
    }
  } catch (err) {
    if (!ch.failure) ch.fail(isRaError(err) ? err.code : 'RA_ERR_REPL_PROTOCOL', `base copy failed: ${describeError(err)}`);
    throw err;
  } finally {
    await data.close().catch(() => undefined);
    for (const fh of segments.values()) await fh.close().catch(() => undefined);
    if (!storeExists(dir)) await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
  }
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
}

/**
 * A page store run as a physical replica (the face's `replica.openReplica`; design in
 * plugins/replication/DESIGN.md, "The replica's side"): its log is the primary's, appended as it
 * arrives (replicaLog.ts), and applied to its pages behind the durable LSN (replicaApply.ts).
 *
 * Opening runs the crash recovery's analysis and redo only: no undo (a transaction in flight on
 * the primary may still commit) and no end-of-recovery checkpoint (it would write records of the
 * replica's own into a log that must stay the primary's). Its position is the end of its log,
 * applied and durable alike. Restartpoints (replicaApply.ts) keep that redo short.
 *
 * Opening is tolerant where a primary's recovery is strict: a damaged record followed by valid
 * ones (a bad sector, a flipped byte) stops a primary's recovery, since the records past it may
 * be commits nobody else has; a replica's log is only a copy of its primary's, which still holds
 * them. So the replica's log is cut at the damaged record — the damaged segment copied and the
 * later ones moved to `<dir>.wal-cut-<time>` beside the store, kept for audit, never deleted —
 * and the stream brings the rest again from there (its pages may be ahead of the cut: the records
 * that come again are skipped on them by their page LSN, as in any redo).
 */
import { copyFile, mkdir, open, readFile, rename, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../../core/fsyncDir.js';
import { redoApplyPages } from 'recovery-agent/native';
import type { Logger } from 'pino';
import { isRaError, raError } from '../../core/errors.js';
import type { ReplicaApplied, ReplicaPosition, ReplicaStore } from '../../core/contracts/PageEngine.js';
import { serialQueue } from '../../core/serial.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { readControl, type Control } from './control.js';
import { pageLsn, readPageAt, verifyPage } from './format.js';
import { recoverLocked, type RecoveryStats } from './recovery.js';
import { applyRange } from './replicaApply.js';
import { ReplicaLog } from './replicaLog.js';
import { acquireStoreLock } from './storeLock.js';
import { dataFileOf, storeExists, superblockProblem, tightenStore, walDirOf } from './storeFiles.js';
import { forEachPageRecord } from './walPages.js';
import { kRecLsn } from './walRecord.js';
import { SEGMENT_HEADER_SIZE, listSegments, segmentPath, segmentStartOf } from './walSegments.js';
import { endRecordsAt } from './walWriter.js';
import { readU64 } from './format.js';
import { settleSwap } from './storeSwap.js';

export interface OpenReplicaOptions {
  pool?: WorkerPool;
  log?: Logger;
  /** The log was cut at a damaged record (see the file's comment). */
  onLogCut?: (cut: { lsn: number; reason: string; movedTo: string }) => void;
  /** Below this many page records in a segment, apply redoes on this thread (default 4096; tests lower it). */
  parallelFrom?: number;
}

export class PageStoreReplica implements ReplicaStore {
  private applied: number;
  private closed = false;
  /**
   * Applies run one at a time; appends are ordered by the log, which writes the runs appended
   * together with one fdatasync (replicaLog.ts). An apply runs behind the durable LSN it saw at
   * its start, so the two may overlap.
   */
  private readonly applies = serialQueue();

  private constructor(
    private readonly dir: string,
    private readonly lock: { release(): Promise<void> },
    private readonly data: FileHandle,
    private control: Control,
    private readonly wal: ReplicaLog,
    /** What the open's redo did (tests and logs: how long a restart's redo was). */
    readonly recovery: RecoveryStats,
    private readonly options: OpenReplicaOptions,
  ) {
    this.applied = wal.durableLsn;
  }

  /** Opens the store in `dir` as a replica (see the file's comment). */
  static async open(dir: string, options: OpenReplicaOptions = {}): Promise<PageStoreReplica> {
    await settleSwap(dir);
    if (!storeExists(dir)) throw raError('RA_ERR_STORE_NOT_FOUND', `${dir} holds no page store (no control file)`);
    const lock = await acquireStoreLock(dir);
    let data: FileHandle | undefined;
    try {
      await tightenStore(dir, options.log);
      const r = await recoverTolerant(dir, options);
      data = r.data;
      await r.wal.close();
      const wal = await ReplicaLog.open(dir, r.geometry, r.stats.endLsn);
      return new PageStoreReplica(dir, lock, data, await readControl(dir), wal, r.stats, options);
    } catch (err) {
      await data?.close().catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw err;
    }
  }

  /** Runs appended and the fdatasyncs that made them durable (tests, benchmarks: runs received together share one). */
  get appendStats(): { readonly syncs: number; readonly runs: number } {
    return this.wal.stats;
  }

  position(): ReplicaPosition {
    return { epoch: this.wal.epoch, durableLsn: this.wal.durableLsn, appliedLsn: this.applied, rolling: this.wal.rolling };
  }

  async append(bytes: Uint8Array, startLsn: number, endLsn: number, epoch: number): Promise<ReplicaPosition> {
    this.checkOpen();
    await this.wal.append(bytes, startLsn, endLsn, epoch);
    return this.position();
  }

  apply(upto = Number.MAX_SAFE_INTEGER): Promise<ReplicaApplied> {
    this.checkOpen();
    return this.applies(() => this.applyNow(upto));
  }

  private async applyNow(upto: number): Promise<ReplicaApplied> {
    this.checkOpen();
    const durable = this.wal.durableLsn;
    if (Math.min(upto, durable) <= this.applied) return { position: this.position(), recordsRedone: 0, redoWorkers: 1, restartpoint: null };
    const out = await applyRange({
      dir: this.dir,
      walDir: walDirOf(this.dir),
      dataFile: dataFileOf(this.dir),
      control: this.control,
      from: this.applied,
      upto,
      durable,
      ...(this.options.pool ? { pool: this.options.pool } : {}),
      ...(this.options.parallelFrom !== undefined ? { parallelFrom: this.options.parallelFrom } : {}),
      syncData: () => this.data.datasync(),
    });
    this.applied = out.appliedLsn;
    if (out.control) this.control = out.control;
    return { position: this.position(), recordsRedone: out.redo.applied, redoWorkers: out.redoWorkers, restartpoint: out.control?.checkpointLsn ?? null };
  }

  async readPage(pageId: number, minLsn: number): Promise<Buffer> {
    this.checkOpen();
    if (!Number.isInteger(pageId) || pageId < 0 || pageId >= this.control.pageCount) {
      throw raError('RA_ERR_PAGE_RANGE', `page ${pageId} is outside this store's ${this.control.pageCount} pages`);
    }
    if (this.wal.durableLsn < minLsn) {
      throw raError('RA_ERR_REPLICA_BEHIND', `the replica's log ends at LSN ${this.wal.durableLsn}, before ${minLsn}`, { details: { durableLsn: this.wal.durableLsn, minLsn } });
    }
    if (this.applied < minLsn) await this.apply(minLsn);
    const { image, fault } = await readPageAt(this.data, pageId, this.control.pageSize);
    if (fault) throw raError('RA_ERR_PAGE_CORRUPT', `page ${pageId} of the replica fails its ${fault} check`, { details: { pageId, reason: fault } });
    return image;
  }

  /**
   * Installs `image`, a copy of page `pageId` from elsewhere (the primary), in place of this
   * replica's copy, made consistent with this replica's log: the image must verify as page
   * `pageId` (and, page 0, be this store's superblock), and its LSN must be at most the durable
   * LSN (RA_ERR_REPLICA_BEHIND otherwise: the stream has not brought those records yet; the caller
   * may wait and ask again). The records for the page between the image's LSN and the applied LSN
   * are redone on it, so the page written is the page at the applied LSN, as if it had never been
   * damaged; a copy ahead of the applied LSN is written, then the log applied up to it. Runs
   * between applies. Returns the installed page's LSN.
   */
  installPage(pageId: number, image: Buffer): Promise<{ lsn: number; recordsRedone: number }> {
    this.checkOpen();
    return this.applies(async () => {
      this.checkOpen();
      const { pageSize, pageCount } = this.control;
      if (!Number.isInteger(pageId) || pageId < 0 || pageId >= pageCount) throw raError('RA_ERR_PAGE_RANGE', `page ${pageId} is outside this store's ${pageCount} pages`);
      const refuse = (why: string) => raError('RA_ERR_PAGE_CORRUPT', `the copy of page ${pageId} offered to the replica is refused: ${why}`, { details: { pageId, reason: why } });
      if (image.byteLength !== pageSize) throw refuse(`${image.byteLength} bytes, not ${pageSize}`);
      const fault = verifyPage(image, pageId);
      if (fault) throw refuse(`it fails its ${fault} check`);
      if (pageId === 0) {
        const problem = superblockProblem(image, this.control);
        if (problem) throw refuse(`not this store's superblock: ${problem}`);
      }
      const from = pageLsn(image);
      const durable = this.wal.durableLsn;
      if (from > durable) throw raError('RA_ERR_REPLICA_BEHIND', `the copy of page ${pageId} is at LSN ${from}, past the end of the replica's log (${durable})`, { details: { durableLsn: durable, minLsn: from } });
      const page = Buffer.from(image);
      if (this.applied < from) {
        // The copy is ahead of this replica's pages: in place first (the damaged page would stop
        // the apply), then the apply up to it, which skips the page's records the copy has.
        await this.data.write(page, 0, pageSize, pageId * pageSize);
        await this.data.datasync();
        const before = this.applied;
        await this.applyNow(from);
        const { image: now, fault: after } = await readPageAt(this.data, pageId, pageSize);
        if (after) throw raError('RA_ERR_PAGE_CORRUPT', `page ${pageId} fails its ${after} check after the apply from ${before} to ${this.applied}`, { details: { pageId, reason: after } });
        return { lsn: pageLsn(now), recordsRedone: 0 };
      }
      const recordsRedone = await this.redoOnto(page, pageId, from, this.applied);
      await this.data.write(page, 0, pageSize, pageId * pageSize);
      await this.data.datasync();
      return { lsn: pageLsn(page), recordsRedone };
    });
  }

  /**
   * Redoes onto `page` (at LSN `from`) the log's records for `pageId` with LSNs in (from, upto);
   * returns how many changed it.
   *
   * Segments below this replica's first one are skipped: a replica made by a base copy has its
   * log only from the copy's redo point, and a cold page's copy (one not changed since long
   * before) is older than that. Sound because the copy comes from the primary with every record
   * for the page below the LSN asked for — this replica's durable LSN, at or past its first
   * segment — already on it (a page's LSN is that of the last record that changed it): so no
   * record for the page lies in (from, first segment's start), and a segment wholly below it
   * holds none to redo. A segment missing above the first one is a hole in the log: refused.
   */
  private async redoOnto(page: Buffer, pageId: number, from: number, upto: number): Promise<number> {
    const seg = this.control.segmentSize;
    const walDir = walDirOf(this.dir);
    const first = (await listSegments(walDir))[0] ?? segmentStartOf(from, seg);
    let redone = 0;
    for (let start = Math.max(segmentStartOf(from, seg), first); start < upto; start += seg) {
      const buf = await readFile(segmentPath(walDir, start)).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
        throw raError('RA_ERR_WAL_CORRUPT', `the replica's log no longer has segment ${segmentPath(walDir, start)}, which the copy of page ${pageId} (LSN ${from}) needs`, { details: { pageId, lsn: start } });
      });
      const positions: number[] = [];
      forEachPageRecord(buf, SEGMENT_HEADER_SIZE, start + SEGMENT_HEADER_SIZE, (at, id) => {
        const lsn = readU64(buf, at + kRecLsn);
        if (id === pageId && lsn > from && lsn < upto) positions.push(at);
      });
      if (positions.length === 0) continue;
      const status = new Uint32Array(1);
      redone += redoApplyPages(buf, Uint32Array.from(positions), Uint32Array.of(0, positions.length), Uint32Array.of(pageId), 0, 1, page, this.control.pageSize, status);
      if (status[0]! > 1) throw raError('RA_ERR_WAL_CORRUPT', `replaying the replica's log onto page ${pageId} failed (redo status ${status[0]})`, { details: { pageId, status: status[0] } });
    }
    return redone;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // What was started finishes first.
    await this.applies(async () => undefined).catch(() => undefined);
    try {
      await this.wal.close(); // after the appends already made
      await this.data.close();
    } finally {
      await this.lock.release();
    }
  }

  private checkOpen(): void {
    if (this.closed) throw raError('RA_ERR_STORE_CLOSED', `the replica of ${this.dir} is closed`);
  }
}

/** Damaged places cut from one log in one open, at most (each cut ends the log earlier). */
const kMaxCuts = 8;

/** The open's redo (recoverLocked, redo only), the log cut at a damaged record and run again (see the file's comment). */
async function recoverTolerant(dir: string, options: OpenReplicaOptions): ReturnType<typeof recoverLocked> {
  for (let cuts = 0; ; cuts++) {
    try {
      return await recoverLocked(dir, { ...(options.pool ? { pool: options.pool } : {}), ...(options.log ? { log: options.log } : {}), redoOnly: true });
    } catch (err) {
      const lsn = isRaError(err, 'RA_ERR_WAL_CORRUPT') ? err.details.lsn : undefined;
      if (typeof lsn !== 'number' || cuts >= kMaxCuts) throw err;
      const aside = await cutLog(dir, (await readControl(dir)).segmentSize, lsn);
      const reason = err instanceof Error ? err.message : String(err);
      options.log?.warn({ dir, lsn, movedTo: aside, err: reason }, 'replica log damaged: cut at the damaged record (the rest kept aside); the primary streams it again');
      options.onLogCut?.({ lsn, reason, movedTo: aside });
    }
  }
}

/**
 * Cuts the replica's log at `lsn`: the segment holding it is copied aside whole, then truncated
 * there (or moved aside, when nothing of it precedes `lsn`); every later segment is moved aside.
 * Returns the directory they went to.
 */
async function cutLog(dir: string, segmentSize: number, lsn: number): Promise<string> {
  const walDir = walDirOf(dir);
  const aside = `${dir}.wal-cut-${new Date().toISOString().replace(/[:.]/g, '-')}-${lsn}`;
  await mkdir(aside, { recursive: true, mode: 0o700 });
  const at = segmentStartOf(lsn, segmentSize);
  for (const start of await listSegments(walDir)) {
    if (start < at) continue;
    const file = segmentPath(walDir, start);
    const kept = path.join(aside, path.basename(file));
    if (start === at && lsn - start > SEGMENT_HEADER_SIZE) {
      await copyFile(file, kept);
      const k = await open(kept, 'r');
      await k.sync().finally(() => k.close());
      const h = await open(file, 'r+');
      try {
        // Truncated, or its records ended there with zeros after them if it was made at full size.
        await endRecordsAt(h, file, lsn - start, segmentSize);
        await h.sync();
      } finally {
        await h.close();
      }
    } else {
      await rename(file, kept);
    }
  }
  await fsyncDir(aside);
  await fsyncDir(walDir);
  return aside;
}

export const openReplica = (dir: string, options?: OpenReplicaOptions): Promise<PageStoreReplica> => PageStoreReplica.open(dir, options);

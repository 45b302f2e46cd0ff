/**
 * Taking a snapshot online, without the store lock, the way pg_basebackup does:
 *
 *   1. read the control file: the checkpoint in force gives the start LSN (its redo LSN) and
 *      where the WAL must be kept from (its redo LSN, or the first LSN of a transaction active
 *      at it); open every WAL segment from there — an open file outlives a recycling unlink;
 *   2. copy pages.db in ~1 MiB runs on the worker pool (a fuzzy copy: checkpoints write while
 *      we read); a run with a page that fails verification is read again, 3 times 50 ms apart,
 *      as the scanner does. An incremental keeps only pages whose LSN is at or after its base's
 *      start LSN, and reads only the pages the WAL since then names (walSummary.ts), or every
 *      page when that WAL is not all at hand or is large;
 *   3. copy the WAL from there to its current end (the end LSN). Pages reach pages.db only after
 *      the WAL that explains them is durable, so every page copied is explained by WAL before
 *      the end LSN: replaying it over the copy gives the store as of the end LSN.
 *
 * Every file is fdatasync'd as soon as it is written (frameWriter.ts); the manifest is written
 * only once all are durable, then the directory is synced and renamed into place. The temporary
 * directory's name holds its owner, so a later run removes those of killed runs (leftovers.ts).
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { PageEngine, StoreState } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { ensurePrivateDir } from '../../core/privateFiles.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { Compressor } from './compressor.js';
import { copyAllPages, copyChangedPages, type CopyContext } from './copyPages.js';
import { FrameWriter } from './frameWriter.js';
import { removeSnapshotLeftovers, snapshotTempPath, type Leftover } from './leftovers.js';
import { MANIFEST_FILE, MANIFEST_FORMAT, encodeManifest, loadAll, newSnapshotId, snapshotPath, snapshotsDirOf, writeFileDurable, type Manifest, type PageRun } from './manifest.js';
import { LiveWal } from './walCopy.js';
import { summarizeWal } from './walSummary.js';

export { CHUNK_BYTES } from './copyPages.js';

export interface CreateSnapshotOptions {
  /** The store's engine: its files, pages and log are read through it. */
  engine: PageEngine;
  store: string;
  dir: string;
  pool: WorkerPool;
  incremental?: boolean;
  /** Called with bytes read so far of the pages to read, and their total. */
  onProgress?: (done: number, total: number) => void;
  /** Filled in with how the snapshot went (for benchmarks, tests and logs). */
  report?: Partial<SnapshotReport>;
}

/** How a snapshot went. */
export interface SnapshotReport {
  /**
   * How the pages to read were chosen: every page (a full snapshot, or an incremental whose WAL
   * since its base is not usable), or those the WAL since the base names.
   */
  selection: 'all-pages' | 'wal-summary';
  /** Why an incremental read every page, when it did. */
  fallback?: string;
  /** Pages read; bytes of WAL read to choose them, and its segments taken from copies. */
  pagesRead: number;
  summaryWalBytes: number;
  summaryArchivedSegments: number;
  /**
   * Milliseconds: choosing the pages, copying them, copying the WAL, and waiting for the last
   * fdatasyncs once everything was written (the others overlapped the copy).
   */
  selectMs: number;
  copyMs: number;
  walMs: number;
  syncMs: number;
  /** Temporary directories of killed snapshot runs removed before this one started. */
  leftoversRemoved: Leftover[];
}

/** Takes a snapshot; returns its manifest once it is durable. */
export async function createSnapshot(o: CreateSnapshotOptions): Promise<Manifest> {
  const startedAt = Date.now();
  const leftoversRemoved = await removeSnapshotLeftovers(o.dir);
  if (o.report) o.report.leftoversRemoved = leftoversRemoved;
  const manifests = o.incremental ? (await loadAll(o.dir)).flatMap((s) => (s.manifest ? [s.manifest] : [])) : [];
  const base = manifests[manifests.length - 1] ?? null;
  if (o.incremental && !base) throw raError('RA_ERR_SNAPSHOT_INVALID', `${o.dir} holds no readable snapshot to take an incremental on; take a full one first`);
  const kind = base ? 'incremental' : 'full';
  const id = newSnapshotId(kind);
  const tmp = snapshotTempPath(o.dir, id);
  await rm(tmp, { recursive: true, force: true });
  // Private (0700) from the snapshot directory down; one an older version left open is tightened.
  await ensurePrivateDir(o.dir);
  await ensurePrivateDir(snapshotsDirOf(o.dir));
  await ensurePrivateDir(path.join(tmp, 'wal'));
  const writer = new FrameWriter();
  const { control, ckpt, wal: live } = await LiveWal.pin(o.engine, o.store);
  const compressor = new Compressor(o.pool, writer, 2 * o.pool.threads);
  try {
    const storeId = Buffer.from(control.storeId).toString('hex');
    if (base && (base.storeId !== storeId || base.pageSize !== control.pageSize || base.pageCount !== control.pageCount)) {
      throw raError('RA_ERR_SNAPSHOT_INVALID', `the newest snapshot in ${o.dir} (${base.id}) is of another store or geometry; an incremental needs a base of the same store`);
    }
    const walFromLsn = Math.min(control.redoLsn, ...ckpt.activeTransactions.map((a) => a[1]));
    const ctx: CopyContext = {
      pool: o.pool, writer, dataFile: o.engine.files.dataFile(o.store), dir: tmp, pageSize: control.pageSize, pageCount: control.pageCount,
      lsnOffset: o.engine.pages.lsnOffset, ...(o.onProgress ? { onProgress: o.onProgress } : {}),
    };
    const t0 = performance.now();
    const pick = base ? await candidates(o, control, base, manifests, live) : null;
    const t1 = performance.now();
    const copy = base ? await copyChangedPages(ctx, pick!.runs, base.startLsn) : await copyAllPages(ctx);
    const t2 = performance.now();
    const wal = await live.copy(tmp, o.dir, walFromLsn, control.storeId, compressor);
    await compressor.drain();
    const t3 = performance.now();
    if (copy.maxPageLsn > wal.endLsn) {
      throw raError('RA_ERR_SNAPSHOT_INVALID', `a copied page has LSN ${copy.maxPageLsn}, beyond the end of the WAL copied (${wal.endLsn}); the store's WAL is damaged`);
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT, id, kind, baseId: base?.id ?? null, storeId,
      pageSize: control.pageSize, pageCount: control.pageCount, segmentSize: control.segmentSize,
      startLsn: control.redoLsn, checkpointLsn: control.checkpointLsn, nextTxId: Math.max(control.nextTxId, ckpt.nextTxId),
      walFromLsn, endLsn: wal.endLsn, startedAt, finishedAt: wal.readAt,
      pagesCopied: copy.pagesCopied, pagesReread: copy.pagesReread, chunks: copy.chunks, wal: wal.entries,
    };
    // Every chunk and WAL file is durable before the manifest that names them is written.
    await writer.drain();
    if (o.report) {
      Object.assign(o.report, {
        selection: pick && !pick.fallback ? 'wal-summary' : 'all-pages',
        ...(pick?.fallback ? { fallback: pick.fallback } : {}),
        pagesRead: pick ? pick.runs.reduce((n, r) => n + r[1], 0) : control.pageCount,
        summaryWalBytes: pick?.summaryWalBytes ?? 0,
        summaryArchivedSegments: pick?.summaryArchivedSegments ?? 0,
        selectMs: t1 - t0, copyMs: t2 - t1, walMs: t3 - t2, syncMs: performance.now() - t3,
        leftoversRemoved,
      } satisfies SnapshotReport);
    }
    await writeFileDurable(path.join(tmp, MANIFEST_FILE), encodeManifest(manifest));
    await fsyncDir(path.join(tmp, 'wal'));
    await rename(tmp, snapshotPath(o.dir, id));
    await fsyncDir(snapshotsDirOf(o.dir));
    return manifest;
  } catch (err) {
    await compressor.settle();
    await writer.settle();
    await rm(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    await live.close();
  }
}

/**
 * The pages an incremental reads: those the WAL since the base's start LSN names, or every page
 * (and why) when that WAL is not all at hand or is larger than a quarter of pages.db.
 */
async function candidates(o: CreateSnapshotOptions, control: StoreState, base: Manifest, manifests: readonly Manifest[], live: LiveWal): Promise<{ runs: PageRun[]; summaryWalBytes: number; summaryArchivedSegments: number; fallback?: string }> {
  const outcome = await summarizeWal({
    engine: o.engine, readLive: (start) => live.read(start), walDir: o.engine.files.logDir(o.store), dir: o.dir, manifests, storeId: control.storeId, segmentSize: control.segmentSize, pageCount: control.pageCount,
    fromLsn: base.startLsn, mustReach: control.redoLsn, maxBytes: (control.pageCount * control.pageSize) / 4,
  });
  const s = outcome.summary;
  if (s) return { runs: s.runs, summaryWalBytes: s.walBytes, summaryArchivedSegments: s.segmentsArchived };
  return { runs: [[0, control.pageCount]], summaryWalBytes: 0, summaryArchivedSegments: 0, fallback: outcome.fallback };
}

/**
 * Restore: the newest snapshot consistent at or before the target, its chain of incrementals
 * over its full snapshot, and the WAL from its start to the target, laid out as a store
 * (data file, log, state) in a staging directory beside the target; then the engine's own
 * recovery redoes to the end of that WAL and rolls back what was not committed by then; every
 * page is verified; only then does the staging directory replace the target. A failure at any
 * step leaves the target as it was.
 *
 * The target: `lsn` (the log cut at the last record ending at or before it), `time` (the newest
 * point whose wall-clock time is known to be at or before it: a snapshot's end, or the end of an
 * archived segment), or, with neither, as far as the WAL chain goes.
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { verifyPages } from 'recovery-agent/native';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { PRIVATE_DIR_MODE, ensurePrivateDir, openPrivate } from '../../core/privateFiles.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { removeRestoreLeftovers, restoreStagingPath, type Leftover } from './leftovers.js';
import { chainOf, loadAll, snapshotPath, splitReadable, whyUnreadable, type Manifest } from './manifest.js';
import { listArchive, readRaw } from './walArchive.js';
import { chainTo, loadSegment, walSources } from './walChain.js';
import { writeAll } from '../../core/writeAll.js';

export interface RestoreOptions {
  /** The engine of the store restored: lays out its files, runs its recovery. */
  engine: PageEngine;
  snapshotDir: string;
  to: string;
  lsn?: number;
  /** ms since epoch. */
  time?: number;
  force?: boolean;
  pool?: WorkerPool;
  onProgress?: (phase: string, done: number, total: number) => void;
  /** Told of what the restore works around, e.g. a snapshot whose manifest cannot be read. */
  onWarning?: (message: string) => void;
}

export interface RestoreResult {
  snapshots: string[];
  targetLsn: number | null;
  endLsn: number;
  pagesRestored: number;
  walSegments: number;
  recordsRedone: number;
  transactionsRolledBack: number;
  pagesVerified: number;
  durationMs: number;
  /** Snapshots skipped because their manifest cannot be read (no chain restored needed them). */
  skipped: Array<{ id: string; manifest: string; problem: string }>;
  /** Staging directories of killed restores to the same target, removed before this one. */
  leftoversRemoved: Leftover[];
}

export async function restoreSnapshot(o: RestoreOptions): Promise<RestoreResult> {
  const t0 = performance.now();
  const { engine } = o;
  const to = path.resolve(o.to);
  await engine.files.settleSwap(to); // a restore to here that a crash interrupted is finished first
  let lock: { release(): Promise<void> } | null = null;
  if (existsSync(to) && (await readdir(to)).length > 0) {
    // Never over a store a live process holds: acquiring its lock throws RA_ERR_STORE_LOCKED.
    if (existsSync(path.join(to, 'LOCK')) || existsSync(path.join(to, 'control'))) lock = await engine.files.lock(to);
    if (!o.force) {
      await lock?.release();
      throw raError('RA_ERR_RESTORE_TARGET', `${to} is not empty; refusing to write over it (pass --force to replace it)`, { details: { path: to } });
    }
  }
  const staging = restoreStagingPath(to);
  try {
    const leftoversRemoved = await removeRestoreLeftovers(to);
    // A manifest that cannot be read is skipped, and said so; chainOf refuses it if the chain needs it.
    const { manifests, unreadable } = splitReadable(o.snapshotDir, await loadAll(o.snapshotDir));
    for (const u of unreadable) o.onWarning?.(`skipped snapshot ${u.id}: ${whyUnreadable(u)}`);
    if (manifests.length === 0) throw raError('RA_ERR_SNAPSHOT_INVALID', `${o.snapshotDir} holds no ${unreadable.length > 0 ? 'readable ' : ''}snapshot`);
    const archive = await listArchive(o.snapshotDir);
    const sources = await walSources(o.snapshotDir, manifests, archive);
    const target = o.lsn ?? (o.time !== undefined ? lsnAtTime(o.time, manifests, [...sources.values()]) : Infinity);

    const candidates = manifests.filter((m) => m.endLsn <= target).sort((a, b) => a.endLsn - b.endLsn);
    const top = candidates[candidates.length - 1];
    if (!top) {
      const first = Math.min(...manifests.map((m) => m.endLsn));
      throw raError('RA_ERR_SNAPSHOT_INVALID', `no snapshot is consistent at or before LSN ${target}; the earliest consistent point is LSN ${first}`, { details: { target, earliest: first } });
    }
    const chain = chainOf(top.id, new Map(manifests.map((m) => [m.id, m])), unreadable);
    const segs = chainTo(engine, sources, top.walFromLsn, target, top.segmentSize);

    await rm(staging, { recursive: true, force: true });
    // The restored store is private (0700, files 0600) like one the page store creates.
    await ensurePrivateDir(staging);
    const logDir = engine.files.logDir(staging);
    await ensurePrivateDir(logDir);
    const pagesRestored = await layOutPages(o, staging, chain);
    const storeId = Buffer.from(top.storeId, 'hex');
    let endLsn = top.walFromLsn;
    for (const [i, src] of segs.entries()) {
      const seg = await loadSegment(engine, src, storeId, top.segmentSize, target);
      await writeNewFile(path.join(logDir, engine.log.segmentName(src.startLsn)), seg.bytes);
      endLsn = seg.endLsn;
      o.onProgress?.('wal', i + 1, segs.length);
    }
    if (endLsn < top.endLsn) throw raError('RA_ERR_WAL_GAP', `the WAL for snapshot ${top.id} ends at LSN ${endLsn}, before its consistency point ${top.endLsn}: LSN ${endLsn} to ${top.endLsn} is missing`, { details: { missingFrom: endLsn, missingTo: top.endLsn } });
    await fsyncDir(logDir);
    await engine.files.writeState(staging, { checkpointLsn: top.checkpointLsn, redoLsn: top.startLsn, nextTxId: top.nextTxId, pageSize: top.pageSize, pageCount: top.pageCount, segmentSize: top.segmentSize, storeId });

    o.onProgress?.('redo', 0, 1);
    const stats = await engine.recover(staging, { ...(o.pool ? { pool: o.pool } : {}) });
    const pagesVerified = await verifyAllPages(engine, staging, top.pageSize, top.pageCount, (d) => o.onProgress?.('verify', d, top.pageCount));

    // Made with the staging directory beside it; a parent is never tightened, only created 0700.
    await mkdir(path.dirname(to), { recursive: true, mode: PRIVATE_DIR_MODE });
    await engine.files.swapIn(staging, to);
    lock = null; // its file went away with the replaced directory
    return {
      snapshots: chain.map((m) => m.id),
      targetLsn: Number.isFinite(target) ? target : null,
      endLsn: stats.endLsn,
      pagesRestored,
      walSegments: segs.length,
      recordsRedone: stats.recordsRedone,
      transactionsRolledBack: stats.transactionsRolledBack,
      pagesVerified,
      durationMs: Math.round(performance.now() - t0),
      skipped: unreadable.map((u) => ({ id: u.id, manifest: u.manifest, problem: u.problem })),
      leftoversRemoved,
    };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await lock?.release();
  }
}

/** The newest LSN whose wall-clock time is known to be at or before `time`. */
export function lsnAtTime(time: number, manifests: readonly Manifest[], sources: ReadonlyArray<{ startLsn: number; rawBytes: number; at: number }>): number {
  const points = [
    ...manifests.map((m) => ({ lsn: m.endLsn, at: m.finishedAt })),
    ...sources.map((s) => ({ lsn: s.startLsn + s.rawBytes, at: s.at })),
  ].filter((p) => p.at <= time);
  if (points.length === 0) throw raError('RA_ERR_SNAPSHOT_INVALID', `nothing in the snapshot directory is known to predate ${new Date(time).toISOString()}`);
  return Math.max(...points.map((p) => p.lsn));
}

/** Writes the full snapshot's pages, then each incremental's over them; returns pages written. */
async function layOutPages(o: RestoreOptions, staging: string, chain: Manifest[]): Promise<number> {
  const { pageSize, pageCount } = chain[0]!;
  const data = await openPrivate(o.engine.files.dataFile(staging), 'w');
  let pages = 0;
  try {
    await data.truncate(pageSize * pageCount);
    const total = chain.reduce((n, m) => n + m.chunks.length, 0);
    let done = 0;
    for (const m of chain) {
      // Decompression runs on libuv's thread pool; keep a few chunks in flight.
      const window = 4;
      const loads = m.chunks.map((c) => ({ c, p: null as Promise<Buffer> | null }));
      const start = (i: number) => {
        const l = loads[i];
        if (l && !l.p) {
          const file = path.join(snapshotPath(o.snapshotDir, m.id), l.c.file);
          l.p = readRaw(file, l.c);
          l.p.catch(() => undefined);
        }
      };
      for (let i = 0; i < loads.length; i++) {
        for (let k = i; k < Math.min(loads.length, i + window); k++) start(k);
        const raw = await loads[i]!.p!;
        loads[i]!.p = null;
        let at = 0;
        for (const [first, count] of loads[i]!.c.pages) {
          if (first + count > pageCount) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `snapshot ${m.id}: ${loads[i]!.c.file} names pages beyond the store's ${pageCount}`);
          await writeAll(data, raw.subarray(at, at + count * pageSize), first * pageSize);
          at += count * pageSize;
          pages += count;
        }
        o.onProgress?.('pages', ++done, total);
      }
    }
    await data.datasync();
  } finally {
    await data.close();
  }
  return pages;
}

async function writeNewFile(file: string, bytes: Uint8Array): Promise<void> {
  const h = await openPrivate(file, 'w');
  try {
    await writeAll(h, bytes, 0);
    await h.datasync();
  } finally {
    await h.close();
  }
}

/**
 * Verifies every page of a store's data file; throws RA_ERR_PAGE_CORRUPT naming the bad ones.
 * Pages are checked in 4 MiB batches by the native page check (the reference engine's page
 * format; one call per batch instead of one per page).
 */
export async function verifyAllPages(engine: PageEngine, dir: string, pageSize: number, pageCount: number, onProgress?: (done: number) => void): Promise<number> {
  const h = await open(engine.files.dataFile(dir), 'r');
  const bad: Array<{ pageId: number; reason: string }> = [];
  const reasons = ['', 'checksum', 'magic', 'version', 'page-id', 'lsn-beyond-wal'];
  try {
    const per = Math.max(1, Math.floor((4 << 20) / pageSize));
    const buf = Buffer.alloc(per * pageSize);
    const out = new Uint32Array(2 * per); // room for every page of a batch to be bad
    for (let first = 0; first < pageCount; first += per) {
      const n = Math.min(per, pageCount - first);
      const { bytesRead } = await h.read(buf, 0, n * pageSize, first * pageSize);
      if (bytesRead !== n * pageSize) throw raError('RA_ERR_PAGE_CORRUPT', `restored data file is short at page ${first}`);
      const nBad = verifyPages(buf.subarray(0, n * pageSize), pageSize, first, Number.MAX_SAFE_INTEGER, out);
      for (let k = 0; k < nBad; k++) bad.push({ pageId: first + out[2 * k]!, reason: reasons[out[2 * k + 1]!] ?? 'unknown' });
      onProgress?.(first + n);
    }
  } finally {
    await h.close();
  }
  if (bad.length > 0) throw raError('RA_ERR_PAGE_CORRUPT', `${bad.length} restored page(s) fail verification: ${bad.slice(0, 10).map((b) => `${b.pageId} (${b.reason})`).join(', ')}`, { details: { count: bad.length, pages: bad.slice(0, 100) } });
  return pageCount;
}

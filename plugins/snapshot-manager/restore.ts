/**
 * Restore: the newest snapshot consistent at or before the target, its chain of incrementals
 * over its full snapshot, and the WAL from its start to the target, laid out as a store
 * (data file, log, state) in a staging directory beside the target; then the engine's own
 * recovery redoes to the end of that WAL and rolls back what was not committed by then; every
 * page is verified; only then does the staging directory replace the target. A failure at any
 * step leaves the target as it was.
 *
 * The target: `lsn` (the log cut at the last record ending at or before it, as before commits
 * carried their time: every transaction whose commit record ends by then stays committed),
 * `time` (the last commit whose time is at or before it: replay stops right after that commit
 * record, and every transaction that committed later is rolled back like a loser), or, with
 * neither, as far as the WAL chain goes. `exclusive` leaves out a commit exactly at the target
 * (its time equal to `time`, or its record ending exactly at `lsn`). Whatever the target, the
 * result names the last commit replayed: its LSN, transaction and time (null in a log written
 * before commit records carried their time).
 */
import { existsSync } from 'node:fs';
import { mkdir, open, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { verifyFile } from 'recovery-agent/native';
import { setImmediate as eventLoopTurn } from 'node:timers/promises';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { PRIVATE_DIR_MODE, ensurePrivateDir, openPrivate } from '../../core/privateFiles.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { removeRestoreLeftovers, restoreStagingPath, type Leftover } from './leftovers.js';
import { chainOf, loadAll, snapshotPath, splitReadable, whyUnreadable, type Manifest } from './manifest.js';
import { listArchive } from './walArchive.js';
import { defineTask } from '../../core/taskRef.js';
import restoreChunk, { restoreChunkResult, type RestoreChunkInput, type RestoreChunkResult } from './restoreTask.js';
import { chainTo, loadSegment, walSources, type WalSource } from './walChain.js';
import { salvageLiveLog } from './walSalvage.js';
import { forEachCommit, lastCommit, type CommitPoint } from './commitTimes.js';
import { writeAll } from '../../core/writeAll.js';

export interface RestoreOptions {
  /** The engine of the store restored: lays out its files, runs its recovery. */
  engine: PageEngine;
  snapshotDir: string;
  to: string;
  lsn?: number;
  /** ms since epoch: restore to the last commit at or before it. */
  time?: number;
  /** Leave out a commit exactly at the target (`time`, or a commit record ending at `lsn`). */
  exclusive?: boolean;
  force?: boolean;
  /** A failed store's directory whose live log, where it still reads, continues the archive (walSalvage.ts). */
  salvageFrom?: string;
  pool?: WorkerPool;
  onProgress?: (phase: string, done: number, total: number) => void;
  /** Told of what the restore works around, e.g. a snapshot whose manifest cannot be read. */
  onWarning?: (message: string) => void;
  /** Filled in with where the time went, in ms (for benchmarks and `--verbose` output). */
  timings?: Partial<RestoreTimings>;
}

/**
 * Wall-clock ms of each phase of a restore. They run one after another but for two: the WAL's
 * runs beside the pages' (`walMs` overlaps `pagesMs`), and the data file's last fdatasync beside
 * recovery and the check (`pagesSyncMs` is what is left of it after them).
 */
export interface RestoreTimings {
  /** Reading manifests and the archive's sidecars, choosing the chain. */
  planMs: number;
  /** Finding the commit at or before `time` (0 without `time`). */
  timeSearchMs: number;
  /** Reading, checking and decompressing the snapshots' chunks and writing their pages. */
  pagesMs: number;
  /** The wait, after the check, for the last fdatasync of the laid-out data file. */
  pagesSyncMs: number;
  /** Loading the WAL segments, finding their last commit, writing and fdatasyncing them (beside the pages). */
  walMs: number;
  /** The engine's recovery (redo, undo, its checkpoint). */
  recoverMs: number;
  /** Checking every page. */
  verifyMs: number;
  /** Replacing the target by the staging directory. */
  swapMs: number;
}

export interface RestoreResult {
  snapshots: string[];
  /** Where the log was cut (records ending at or before it are replayed); null: the whole chain. */
  targetLsn: number | null;
  /** The last commit replayed (the restore stopped at it), or null when the replayed log holds none. */
  stoppedAt: CommitPoint | null;
  endLsn: number;
  pagesRestored: number;
  walSegments: number;
  recordsRedone: number;
  transactionsRolledBack: number;
  pagesVerified: number;
  /** Log bytes read from `salvageFrom`'s own log beyond what the archive and snapshots held. */
  salvagedBytes: number;
  durationMs: number;
  /** Snapshots skipped because their manifest cannot be read (no chain restored needed them). */
  skipped: Array<{ id: string; manifest: string; problem: string }>;
  /** Staging directories of killed restores to the same target, removed before this one. */
  leftoversRemoved: Leftover[];
}

export type { CommitPoint };

/**
 * Chunks in flight per pool worker. The main thread hands out the next chunk only when it gets
 * to run, and it lays out the WAL meanwhile (synchronous decoding and scanning): with two per
 * worker the workers ran dry behind it (one did fewer chunks than the other) and a restore of
 * 1 GiB took 3.0–3.7 s under load 9–10, with four 2.1–2.8 s in the same minutes (eight: 2.5–3.2).
 * A chunk queued costs no memory: each worker reuses its own two buffers.
 */
const kChunksPerWorker = 4;

/** Bytes of pages written between two background fdatasyncs of a restore's data file. */
const kEarlySyncBytes = 64 << 20;

const restoreChunkTask = defineTask<RestoreChunkInput, RestoreChunkResult>(new URL('./restoreTask.js', import.meta.url));

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
  let pagesDurable: Promise<void> | null = null;
  const tm = o.timings ?? {};
  let mark = performance.now();
  const lap = (k: keyof RestoreTimings) => {
    const now = performance.now();
    tm[k] = (tm[k] ?? 0) + (now - mark);
    mark = now;
  };
  try {
    const leftoversRemoved = await removeRestoreLeftovers(to);
    // A manifest that cannot be read is skipped, and said so; chainOf refuses it if the chain needs it.
    const { manifests, unreadable } = splitReadable(o.snapshotDir, await loadAll(o.snapshotDir));
    for (const u of unreadable) o.onWarning?.(`skipped snapshot ${u.id}: ${whyUnreadable(u)}`);
    if (manifests.length === 0) throw raError('RA_ERR_SNAPSHOT_INVALID', `${o.snapshotDir} holds no ${unreadable.length > 0 ? 'readable ' : ''}snapshot`);
    const archive = await listArchive(o.snapshotDir);
    const sources = await walSources(o.snapshotDir, manifests, archive);
    const newest = manifests.reduce((a, b) => (b.endLsn > a.endLsn ? b : a));
    const salvagedBytes = o.salvageFrom !== undefined ? await salvageLiveLog(engine, o.salvageFrom, newest, sources, o.onWarning) : 0;
    lap('planMs');
    const target =
      o.time !== undefined
        ? await lsnAtTime(engine, o.time, Boolean(o.exclusive), manifests, sources)
        : o.lsn !== undefined
          ? o.lsn - (o.exclusive ? 1 : 0)
          : Infinity;
    lap('timeSearchMs');

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
    lap('planMs');
    // The pages and the WAL are laid out side by side: the WAL's reading, checking and fdatasync
    // need none of the pages, and run on this thread while the pool's workers decode pages (and
    // the disk writes both back at once). The first failure stops the other; a pages failure is
    // the one reported when both fail.
    const stop = new AbortController();
    const storeId = Buffer.from(top.storeId, 'hex');
    const walPhase = async () => {
      const w0 = performance.now();
      let endLsn = top.walFromLsn;
      let stoppedAt: CommitPoint | null = null;
      for (const [i, src] of segs.entries()) {
        if (stop.signal.aborted) return null;
        const seg = await loadSegment(engine, src, storeId, top.segmentSize, target);
        stoppedAt = lastCommit(engine, seg.bytes, src.startLsn, Math.max(0, top.walFromLsn - src.startLsn)) ?? stoppedAt;
        // At full size if the writer made it so: the restored log is the store's own, byte for byte.
        await writeSegmentCopy(engine, path.join(logDir, engine.log.segmentName(src.startLsn)), seg.bytes, top.segmentSize);
        endLsn = seg.endLsn;
        o.onProgress?.('wal', i + 1, segs.length);
      }
      if (endLsn < top.endLsn) throw raError('RA_ERR_WAL_GAP', `the WAL for snapshot ${top.id} ends at LSN ${endLsn}, before its consistency point ${top.endLsn}: LSN ${endLsn} to ${top.endLsn} is missing`, { details: { missingFrom: endLsn, missingTo: top.endLsn } });
      await fsyncDir(logDir);
      await engine.files.writeState(staging, { checkpointLsn: top.checkpointLsn, redoLsn: top.startLsn, nextTxId: top.nextTxId, pageSize: top.pageSize, pageCount: top.pageCount, segmentSize: top.segmentSize, storeId });
      tm.walMs = (tm.walMs ?? 0) + (performance.now() - w0);
      return { endLsn, stoppedAt };
    };
    const stopOnFailure = <T>(p: Promise<T>) => p.catch((err: unknown) => (stop.abort(err), Promise.reject(err)));
    const [pagesOut, walOut] = await Promise.allSettled([stopOnFailure(writePages(o, staging, chain, (k, ms) => k === 'pagesMs' && (tm.pagesMs = (tm.pagesMs ?? 0) + ms), stop.signal)), stopOnFailure(walPhase())]);
    if (pagesOut.status === 'fulfilled') pagesDurable = pagesOut.value.durable;
    if (pagesOut.status === 'rejected') throw pagesOut.reason;
    if (walOut.status === 'rejected') throw walOut.reason;
    const { pages: pagesRestored } = pagesOut.value;
    const { stoppedAt } = walOut.value!;
    mark = performance.now();
    if (stoppedAt === null && Number.isFinite(target)) {
      // E.g. --time on a store quiet since a checkpoint and the snapshot: the snapshot is the store at the target.
      o.onWarning?.(`stopped at snapshot ${top.id}'s consistency point (LSN ${top.endLsn}); the last commit before it is not known (its WAL from LSN ${top.walFromLsn} holds none)`);
    }

    o.onProgress?.('redo', 0, 1);
    const stats = await engine.recover(staging, { ...(o.pool ? { pool: o.pool } : {}) });
    lap('recoverMs');
    const pagesVerified = await verifyAllPages(engine, staging, top.pageSize, top.pageCount, (d) => o.onProgress?.('verify', d, top.pageCount));
    lap('verifyMs');
    // The data file's last fdatasync ran beside recovery and the check; the swap needs it done.
    await pagesDurable;
    lap('pagesSyncMs');

    // Made with the staging directory beside it; a parent is never tightened, only created 0700.
    await mkdir(path.dirname(to), { recursive: true, mode: PRIVATE_DIR_MODE });
    await engine.files.swapIn(staging, to);
    lock = null; // its file went away with the replaced directory
    lap('swapMs');
    return {
      snapshots: chain.map((m) => m.id),
      targetLsn: Number.isFinite(target) ? target : null,
      stoppedAt,
      endLsn: stats.endLsn,
      pagesRestored,
      walSegments: segs.length,
      recordsRedone: stats.recordsRedone,
      transactionsRolledBack: stats.transactionsRolledBack,
      pagesVerified,
      salvagedBytes,
      durationMs: Math.round(performance.now() - t0),
      skipped: unreadable.map((u) => ({ id: u.id, manifest: u.manifest, problem: u.problem })),
      leftoversRemoved,
    };
  } catch (err) {
    await pagesDurable?.catch(() => undefined); // the data file is closed before its directory goes
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    await lock?.release();
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Where to cut the log to restore to the last commit at or before `time` (before it, with
 * `exclusive`): the end of that commit's record, or the base snapshot's consistency point
 * (`endLsn`) when no commit after it is at or before `time` (the store was quiet from the
 * snapshot to `time`, so the snapshot is the store at `time`).
 *
 * The base is the newest snapshot finished at or before `time` whose log before `endLsn` holds
 * no commit later than `time`. Its `finishedAt` is taken once `endLsn` is fixed, so every commit
 * before `endLsn` normally took its time before it; but a wall clock stepped back between the
 * commits and the snapshot breaks that, so those commits are checked too, and a base holding a
 * later one gives way to an older base. From `endLsn` on, the commits are read in log order and
 * the restore stops before the first one later than `time` (as PostgreSQL's
 * recovery_target_time does; the writer keeps commit times from going backwards, so that is also
 * the last commit at or before `time`). A commit there without a time (a log written before
 * commits carried one) cannot be placed: RA_ERR_SNAPSHOT_INVALID, restore by LSN instead.
 *
 * When the archived WAL ends before any commit later than `time`, commits up to `time` may be
 * missing from it (they were in segments not archived yet): refused, as PostgreSQL refuses a
 * recovery that ends before its target, unless a snapshot finished at or after `time` has its
 * consistency point within the WAL read: it read the log by then, so the WAL up to there is the
 * whole log at `time` (but for commits not yet durable, so not yet acknowledged, then: the same
 * cut as the snapshot itself, which is the store as it finished).
 */
export async function lsnAtTime(engine: PageEngine, time: number, exclusive: boolean, manifests: readonly Manifest[], sources: Map<number, WalSource>): Promise<number> {
  const after = (t: number) => (exclusive ? t >= time : t > time);
  const bases = manifests.filter((m) => !after(m.finishedAt)).sort((a, b) => b.endLsn - a.endLsn);
  if (bases.length === 0) {
    const oldest = Math.min(...manifests.map((m) => m.finishedAt));
    throw raError('RA_ERR_SNAPSHOT_INVALID', `${iso(time)} is before the oldest snapshot finished (${iso(oldest)}): no snapshot is consistent ${exclusive ? 'before' : 'at or before'} that time`, { details: { time, oldest } });
  }
  let late: { base: Manifest; commit: CommitPoint } | null = null;
  for (const base of bases) {
    const r = await commitsAfterBase(engine, base, after, sources);
    if (r.late) {
      late ??= { base, commit: r.late };
      continue; // the clock stepped back: this snapshot holds a commit made after `time`
    }
    if (r.untimed) {
      const u = r.untimed;
      throw raError('RA_ERR_SNAPSHOT_INVALID', `commit times are unknown: the commit at LSN ${u.lsn} (transaction ${u.txId}) carries no time (its log was written before commit records carried one); restore by --lsn instead`, { details: { lsn: u.lsn, txId: u.txId } });
    }
    if (!r.over && !manifests.some((m) => m.finishedAt >= time && m.endLsn <= r.readTo)) {
      const last = r.last;
      throw raError(
        'RA_ERR_SNAPSHOT_INVALID',
        `${iso(time)} is beyond the archived WAL: it ends at LSN ${r.readTo}${last?.time != null ? ` (its last commit at LSN ${last.lsn}, ${iso(last.time)})` : ''} with no commit later than that time and no snapshot finished after it, so commits up to it may be missing; archive the rest of the WAL (or take a snapshot) and retry, or restore to what is archived with --lsn ${r.readTo}`,
        { details: { time, walEnd: r.readTo } },
      );
    }
    return r.last && r.last.lsn >= base.endLsn ? r.last.endLsn : base.endLsn;
  }
  const { base, commit } = late!;
  throw raError('RA_ERR_SNAPSHOT_INVALID', `no snapshot is consistent ${exclusive ? 'before' : 'at or before'} ${iso(time)}: each one finished by then holds a later commit (snapshot ${base.id}: the commit at LSN ${commit.lsn}, ${iso(commit.time!)}; the clock may have stepped back); restore by --lsn instead`, {
    details: { time, snapshot: base.id, lsn: commit.lsn },
  });
}

/**
 * The commits of the WAL from `base`'s start: `late`, the first before its `endLsn` later than
 * the target (the base cannot be used); else `last`, the last one at or before it (before or
 * after `endLsn`), and what stopped the reading: `over`, the first after `endLsn` later than the
 * target, or `untimed`, one with no time; or the end of the WAL, `readTo`.
 */
async function commitsAfterBase(engine: PageEngine, base: Manifest, after: (t: number) => boolean, sources: Map<number, WalSource>) {
  const storeId = Buffer.from(base.storeId, 'hex');
  const r: { late: CommitPoint | null; last: CommitPoint | null; over: CommitPoint | null; untimed: CommitPoint | null; readTo: number } = { late: null, last: null, over: null, untimed: null, readTo: base.walFromLsn };
  for (const src of chainTo(engine, sources, base.walFromLsn, Infinity, base.segmentSize)) {
    const seg = await loadSegment(engine, src, storeId, base.segmentSize, Infinity);
    forEachCommit(engine, seg.bytes, src.startLsn, Math.max(0, base.walFromLsn - src.startLsn), (c) => {
      if (c.lsn < base.endLsn) {
        if (c.time !== null && after(c.time)) {
          r.late = c;
          return true;
        }
      } else if (c.time === null) {
        r.untimed = c;
        return true;
      } else if (after(c.time)) {
        r.over = c;
        return true;
      }
      r.last = c;
    });
    r.readTo = seg.endLsn;
    if (r.late || r.over || r.untimed) break;
  }
  return r;
}

/**
 * Writes the full snapshot's pages, then each incremental's over them, and fdatasyncs the data
 * file; returns pages written. `writePages` without the wait for the final fdatasync.
 */
export async function layOutPages(
  o: Pick<RestoreOptions, 'engine' | 'snapshotDir' | 'pool' | 'onProgress'>,
  staging: string,
  chain: Manifest[],
  lap: (k: 'pagesMs' | 'pagesSyncMs', ms: number) => void,
  signal?: AbortSignal,
): Promise<number> {
  const { pages, durable } = await writePages(o, staging, chain, lap, signal);
  await durable;
  return pages;
}

/**
 * Writes the full snapshot's pages, then each incremental's over them; returns the pages written
 * and `durable`, which settles once the data file is fdatasynced and closed (or rejects with
 * why not): a restore goes on with recovery meanwhile and waits for it only before the swap.
 *
 * Each chunk is read, checked, decoded and written by restoreTask.ts: on the pool's workers
 * when there is a pool, four chunks per worker in flight (all of a snapshot's chunks name
 * different pages, so their writes may land in any order; an incremental starts only once the
 * snapshot under it is written), else one after another on this thread.
 *
 * The data file is fdatasynced every 64 MiB written, in the background (one at a time), so the
 * disk writes the pages back while later chunks decode: the final fdatasync then has only the
 * last few MiB left instead of the whole store (0.7–0.8 s per GiB here when it came last).
 *
 * `lap` is told the ms of its two phases (`pagesSyncMs` from the last page written to
 * `durable`); `signal` stops it (with its reason) between chunks.
 */
export async function writePages(
  o: Pick<RestoreOptions, 'engine' | 'snapshotDir' | 'pool' | 'onProgress'>,
  staging: string,
  chain: Manifest[],
  lap: (k: 'pagesMs' | 'pagesSyncMs', ms: number) => void,
  signal?: AbortSignal,
): Promise<{ pages: number; durable: Promise<void> }> {
  const { pageSize, pageCount } = chain[0]!;
  let mark = performance.now();
  const lapped = (k: 'pagesMs' | 'pagesSyncMs') => {
    const now = performance.now();
    lap(k, now - mark);
    mark = now;
  };
  const data = await openPrivate(o.engine.files.dataFile(staging), 'w');
  let pages = 0;
  let syncing: Promise<unknown> | null = null;
  let syncError: unknown = null;
  try {
    await data.truncate(pageSize * pageCount);
    const total = chain.reduce((n, m) => n + m.chunks.length, 0);
    let done = 0;
    const run = (input: RestoreChunkInput) => (o.pool ? o.pool.run(restoreChunkTask, input) : restoreChunk(input));
    const window = o.pool ? kChunksPerWorker * o.pool.threads : 1;
    const writeTurn = new Int32Array(new SharedArrayBuffer(4));
    let unsynced = 0;
    const wrote = (bytes: number) => {
      unsynced += bytes;
      if (unsynced < kEarlySyncBytes || syncing) return;
      unsynced = 0;
      syncing = data.datasync().then(
        () => (syncing = null),
        (err: unknown) => ((syncError ??= err), (syncing = null)),
      );
    };
    for (const m of chain) {
      const inputs = m.chunks.map((c): RestoreChunkInput => {
        const runs: number[] = [];
        for (const [first, count] of c.pages) {
          if (first + count > pageCount) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `snapshot ${m.id}: ${c.file} names pages beyond the store's ${pageCount}`);
          runs.push(first, count);
        }
        const file = path.join(snapshotPath(o.snapshotDir, m.id), c.file);
        return { file, bytes: c.bytes, xxh3: c.xxh3, rawBytes: c.rawBytes, rawXxh3: c.rawXxh3, runs, fd: data.fd, pageSize, writeTurn };
      });
      let next = 0;
      let failure: unknown = null;
      // Each lane takes the next chunk when its last one is written; the first failure stops them all.
      const lane = async () => {
        while (failure === null && next < inputs.length) {
          if (signal?.aborted) {
            failure ??= signal.reason;
            return;
          }
          const input = inputs[next++]!;
          try {
            const n = restoreChunkResult(await run(input));
            pages += n;
            wrote(n * pageSize);
          } catch (err) {
            failure ??= err;
            return;
          }
          o.onProgress?.('pages', ++done, total);
        }
      };
      await Promise.all(Array.from({ length: Math.min(window, inputs.length) }, lane));
      if (failure !== null) throw failure;
    }
  } catch (err) {
    await syncing;
    await data.close();
    throw err;
  }
  lapped('pagesMs');
  const durable = (async () => {
    try {
      await syncing;
      if (syncError !== null) throw syncError;
      await data.datasync();
      lapped('pagesSyncMs');
    } finally {
      await data.close();
    }
  })();
  // The caller awaits it later; until then an early failure must not count as unhandled.
  durable.catch(() => undefined);
  return { pages, durable };
}

/**
 * A WAL segment's copy (header first, up to its last record) as a new file, fdatasynced: at the
 * length the engine says (a segment made at full size keeps it, its tail a hole), or through its
 * `segmentFile` when it predates `segmentFileSize` (contract 1.5.0).
 */
export async function writeSegmentCopy(engine: PageEngine, file: string, bytes: Uint8Array, segmentSize: number): Promise<void> {
  if (engine.log.segmentFileSize) await writeNewFile(file, bytes, engine.log.segmentFileSize(bytes, segmentSize));
  else await writeNewFile(file, engine.log.segmentFile(bytes, segmentSize));
}

/**
 * Writes `bytes` to a new file and fdatasyncs it; with `length` past the bytes, the file is
 * extended to it first (a hole: zeros that cost no write).
 */
export async function writeNewFile(file: string, bytes: Uint8Array, length = bytes.byteLength): Promise<void> {
  const h = await openPrivate(file, 'w');
  try {
    await writeAll(h, bytes, 0);
    if (length > bytes.byteLength) await h.truncate(length);
    await h.datasync();
  } finally {
    await h.close();
  }
}

/**
 * Verifies every page of a store's data file; throws RA_ERR_PAGE_CORRUPT naming the bad ones.
 * The native `verifyFile` reads and checks the pages (the reference engine's page format) on
 * two threads, this one among them; it blocks its caller, so it is called on 32 MiB slices with
 * a turn of the event loop between them (a restore inside the agent keeps it answering).
 */
export async function verifyAllPages(engine: PageEngine, dir: string, pageSize: number, pageCount: number, onProgress?: (done: number) => void): Promise<number> {
  const h = await open(engine.files.dataFile(dir), 'r');
  const bad: Array<{ pageId: number; reason: string }> = [];
  const reasons = ['', 'checksum', 'magic', 'version', 'page-id', 'lsn-beyond-wal', 'file-ends-before'];
  try {
    const per = Math.max(1, Math.floor((32 << 20) / pageSize));
    const out = new Uint32Array(2 * per); // room for every page of a slice to be bad
    for (let first = 0; first < pageCount; first += per) {
      const n = Math.min(per, pageCount - first);
      const nBad = verifyFile(h.fd, pageSize, first, n, Number.MAX_SAFE_INTEGER, kVerifyThreads, out);
      for (let k = 0; k < nBad; k++) bad.push({ pageId: first + out[2 * k]!, reason: reasons[out[2 * k + 1]!] ?? 'unknown' });
      onProgress?.(first + n);
      await eventLoopTurn();
    }
  } finally {
    await h.close();
  }
  if (bad.length > 0) throw raError('RA_ERR_PAGE_CORRUPT', `${bad.length} restored page(s) fail verification: ${bad.slice(0, 10).map((b) => `${b.pageId} (${b.reason})`).join(', ')}`, { details: { count: bad.length, pages: bad.slice(0, 100) } });
  return pageCount;
}

/** Threads `verifyAllPages` checks pages on (the machines this runs on have 2 CPUs or more). */
const kVerifyThreads = 2;

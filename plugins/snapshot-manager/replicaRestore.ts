/**
 * A replica store from a snapshot of its primary's store and the WAL archive (#14: "a new or
 * far-behind replica catches up from a snapshot plus the WAL archive, then from the stream"),
 * which, unlike the base copy, reads nothing from the primary.
 *
 * A restore (restore.ts) is no replica: it runs the engine's crash recovery, whose undo and
 * checkpoint append the restored store's own records (CLRs, a checkpoint) to the log, so the
 * restored log is no longer the primary's and its `hello` could never verify. Here the log is
 * left exactly as the primary wrote it: the archived segments (and the snapshot's own copy of
 * the segment it ended in) go into the replica's `wal/` whole, headers included (the epoch and
 * the rolling checksum R at each segment's start, which the primary's `hello` check compares),
 * cut only after their last valid record; the state names the snapshot's checkpoint; and the
 * replica's open is redo only (`openReplica`), as after a base copy. Its position is then the
 * end of the archive, from where the primary streams — if it still has the log there: the
 * caller's `check` asks it before anything replaces a store.
 *
 * Staged in `<to>.restoring-<owner>` (the restore's staging, removed by the next restore or
 * replica init to `to` once its process is gone) and renamed into place only once complete,
 * synced and opened once; an existing store is refused without `force`, and with it moved to
 * `<to>.replaced-<time>`, never deleted (as `replica init` does).
 */
import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { PageEngine, ReplicaPosition } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { PRIVATE_DIR_MODE, ensurePrivateDir } from '../../core/privateFiles.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { removeRestoreLeftovers, restoreStagingPath, type Leftover } from './leftovers.js';
import { archiveDirOf, chainOf, loadAll, splitReadable, whyUnreadable, type Manifest } from './manifest.js';
import { layOutPages, verifyAllPages, writeSegmentCopy } from './restore.js';
import { listArchive } from './walArchive.js';
import { chainTo, loadSegment, walSources } from './walChain.js';

export interface ReplicaRestoreOptions {
  engine: PageEngine;
  /** The primary store's snapshot directory (its snapshots and WAL archive), shared or copied here. */
  snapshotDir: string;
  /** Where the replica store goes. */
  to: string;
  /** The snapshot to start from (default: the newest, the one consistent at the highest LSN). */
  snapshot?: string;
  /** Move an existing store aside (`<to>.replaced-<time>`) instead of refusing. */
  force?: boolean;
  pool?: WorkerPool;
  onProgress?: (phase: string, done: number, total: number) => void;
  onWarning?: (message: string) => void;
  /**
   * Called with the staged replica's position (the end of the archive) before it is moved into
   * place; throwing refuses the result (nothing replaced, the staging removed). The CLI asks the
   * primary whether it still has the log there.
   */
  check?: (position: ReplicaPosition) => Promise<void>;
}

export interface ReplicaRestoreResult {
  /** The chain laid out, full snapshot first. */
  snapshots: string[];
  /** Where the replica's redo starts (the snapshot's). */
  redoLsn: number;
  /** The end of the replica's log (the archive's): the primary streams from here. */
  endLsn: number;
  /** The rolling checksum R of the log at `endLsn`, hex (what the `hello` carries). */
  rolling: string;
  epoch: number;
  pagesRestored: number;
  walSegments: number;
  /** Where an existing store was moved (with `force`), or null. */
  replaced: string | null;
  skipped: Array<{ id: string; manifest: string; problem: string }>;
  leftoversRemoved: Leftover[];
  durationMs: number;
}

export async function restoreReplica(o: ReplicaRestoreOptions): Promise<ReplicaRestoreResult> {
  const t0 = performance.now();
  const { engine } = o;
  const to = path.resolve(o.to);
  // Refused before any work; checked again (a live holder) right before the move.
  if (existsSync(to) && !o.force) throw raError('RA_ERR_USAGE', `${to} already exists; replica init never overwrites a store (--force moves it aside to ${to}.replaced-<time>)`);
  await refuseHeld(engine, to);
  const leftoversRemoved = await removeRestoreLeftovers(to);
  const staging = restoreStagingPath(to);
  try {
    const { manifests, unreadable } = splitReadable(o.snapshotDir, await loadAll(o.snapshotDir));
    for (const u of unreadable) o.onWarning?.(`skipped snapshot ${u.id}: ${whyUnreadable(u)}`);
    const top = pickSnapshot(o, manifests);
    const chain = chainOf(top.id, new Map(manifests.map((m) => [m.id, m])), unreadable);
    const sources = await walSources(o.snapshotDir, manifests, await listArchive(o.snapshotDir));
    // The whole chain from the snapshot's WAL start: the replica catches up from the archive.
    const segs = chainTo(engine, sources, top.walFromLsn, Infinity, top.segmentSize);

    await rm(staging, { recursive: true, force: true });
    await ensurePrivateDir(staging);
    const logDir = engine.files.logDir(staging);
    await ensurePrivateDir(logDir);
    const pagesRestored = await layOutPages(o, staging, chain, () => undefined);
    const storeId = Buffer.from(top.storeId, 'hex');
    let endLsn = top.walFromLsn;
    for (const [i, src] of segs.entries()) {
      // The segment as the primary wrote it (its header checked against the store), to its last valid record.
      const seg = await loadSegment(engine, src, storeId, top.segmentSize, Infinity);
      await writeSegmentCopy(engine, path.join(logDir, engine.log.segmentName(src.startLsn)), seg.bytes, top.segmentSize);
      endLsn = seg.endLsn;
      o.onProgress?.('wal', i + 1, segs.length);
    }
    if (endLsn < top.endLsn) throw raError('RA_ERR_WAL_GAP', `the WAL for snapshot ${top.id} ends at LSN ${endLsn}, before its consistency point ${top.endLsn}: LSN ${endLsn} to ${top.endLsn} is missing`, { details: { missingFrom: endLsn, missingTo: top.endLsn } });
    await fsyncDir(logDir);
    await engine.files.writeState(staging, { checkpointLsn: top.checkpointLsn, redoLsn: top.startLsn, nextTxId: top.nextTxId, pageSize: top.pageSize, pageCount: top.pageCount, segmentSize: top.segmentSize, storeId });
    // The last segment from the archive: the primary retired it and went on in the next one,
    // which the replica's log then starts (its header only), to be checked where the primary has it.
    const lastRetired = segs.length > 0 && path.resolve(path.dirname(segs[segs.length - 1]!.path)) === path.resolve(archiveDirOf(o.snapshotDir));
    const { epoch } = await engine.replica.adoptLog(staging, { lastRetired });
    if (lastRetired) endLsn = engine.log.segmentStartOf(endLsn - 1, top.segmentSize) + top.segmentSize + engine.log.segmentHeaderSize;
    await fsyncDir(staging);

    // Opened once as the agent will (redo only, nothing appended to the log): the log and the
    // pages are proven to make a replica before anything is replaced, and its position is known.
    o.onProgress?.('redo', 0, 1);
    const replica = await engine.replica.openReplica(staging, o.pool ? { pool: o.pool } : {});
    let position: ReplicaPosition;
    try {
      position = replica.position();
    } finally {
      await replica.close();
    }
    await verifyAllPages(engine, staging, top.pageSize, top.pageCount, (d) => o.onProgress?.('verify', d, top.pageCount));
    if (position.durableLsn !== endLsn) {
      throw raError('RA_ERR_WAL_CORRUPT', `the restored replica's log ends at LSN ${position.durableLsn}, not at the archive's end ${endLsn}: its segments do not follow each other as the primary wrote them`, { details: { endLsn, durableLsn: position.durableLsn } });
    }
    await o.check?.(position);

    await mkdir(path.dirname(to), { recursive: true, mode: PRIVATE_DIR_MODE });
    let replaced: string | null = null;
    if (existsSync(to)) {
      await refuseHeld(engine, to);
      replaced = `${to}.replaced-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      await rename(to, replaced);
    }
    await rename(staging, to);
    await fsyncDir(path.dirname(to));
    return {
      snapshots: chain.map((m) => m.id),
      redoLsn: top.startLsn,
      endLsn: position.durableLsn,
      rolling: position.rolling.toString(16),
      epoch,
      pagesRestored,
      walSegments: segs.length,
      replaced,
      skipped: unreadable.map((u) => ({ id: u.id, manifest: u.manifest, problem: u.problem })),
      leftoversRemoved,
      durationMs: Math.round(performance.now() - t0),
    };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
}

/** The named snapshot, or the newest (consistent at the highest LSN). */
function pickSnapshot(o: ReplicaRestoreOptions, manifests: readonly Manifest[]): Manifest {
  if (manifests.length === 0) throw raError('RA_ERR_SNAPSHOT_INVALID', `${o.snapshotDir} holds no readable snapshot`);
  if (o.snapshot !== undefined) {
    const m = manifests.find((x) => x.id === o.snapshot);
    if (!m) throw raError('RA_ERR_SNAPSHOT_INVALID', `${o.snapshotDir} holds no readable snapshot "${o.snapshot}" (snapshots: ${manifests.map((x) => x.id).join(', ')})`, { details: { id: o.snapshot } });
    return m;
  }
  return [...manifests].sort((a, b) => a.endLsn - b.endLsn)[manifests.length - 1]!;
}

/** RA_ERR_STORE_LOCKED when a live process holds the store at `dir`. */
async function refuseHeld(engine: PageEngine, dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  const holder = await engine.files.lockHolder(dir);
  if (holder !== null) throw raError('RA_ERR_STORE_LOCKED', `${dir} is open by process ${holder} (stop the agent that replicates it first)`, { details: { pid: holder } });
}

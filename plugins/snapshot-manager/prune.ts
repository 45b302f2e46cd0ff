/**
 * Retention: keep the newest `keepFull` full snapshots and the newest `keepIncremental`
 * incrementals (those younger than `maxAgeMs`, when given), plus everything a kept snapshot
 * needs: its chain of bases down to its full snapshot, and the archived WAL from the oldest
 * kept snapshot's WAL start on. The newest snapshot's chain is always kept, so pruning never
 * leaves nothing to restore from. Snapshots whose manifest cannot be read are left alone.
 * Temporary directories of killed snapshot runs are removed too (leftovers.ts).
 */
import { rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { removeArchiveLeftovers, removeSnapshotLeftovers, type Leftover } from './leftovers.js';
import { archiveDirOf, chainOf, loadAll, snapshotPath, snapshotsDirOf, walFileName, type Manifest } from './manifest.js';
import { listArchivedStarts } from './walArchive.js';

export interface PruneOptions {
  /** The engine of the store the snapshots are of: where its log segments start. */
  engine: PageEngine;
  keepFull: number;
  keepIncremental: number;
  maxAgeMs?: number;
  dryRun?: boolean;
  now?: number;
}

export interface PruneResult {
  kept: string[];
  deleted: string[];
  walSegmentsDeleted: number[];
  /** Temporary directories of killed snapshot runs: removed (or, in a dry run, found). */
  leftovers: { removed: Leftover[] };
}

export async function pruneSnapshots(dir: string, o: PruneOptions): Promise<PruneResult> {
  for (const [k, v] of [['keepFull', o.keepFull], ['keepIncremental', o.keepIncremental]] as const) {
    if (!Number.isInteger(v) || v < 0) throw raError('RA_ERR_USAGE', `${k} must be a non-negative integer (got ${JSON.stringify(v)})`);
  }
  const all = await loadAll(dir);
  const manifests = all.filter((s) => s.manifest).map((s) => s.manifest!);
  const byId = new Map(manifests.map((m) => [m.id, m]));
  const now = o.now ?? Date.now();
  const young = (m: Manifest) => o.maxAgeMs === undefined || now - m.finishedAt <= o.maxAgeMs;
  const newestFirst = [...manifests].reverse();
  const wanted = [
    ...newestFirst.filter((m) => m.kind === 'full' && young(m)).slice(0, o.keepFull),
    ...newestFirst.filter((m) => m.kind === 'incremental' && young(m)).slice(0, o.keepIncremental),
    ...newestFirst.slice(0, 1),
  ];
  const keep = new Set<string>();
  for (const m of wanted) {
    try {
      for (const dep of chainOf(m.id, byId)) keep.add(dep.id);
    } catch {
      keep.add(m.id); // a broken chain: keep what there is, restore will name what is missing
    }
  }
  const deleted = manifests.filter((m) => !keep.has(m.id)).map((m) => m.id);
  const keptManifests = manifests.filter((m) => keep.has(m.id));
  const walFloor = keptManifests.length > 0 ? Math.min(...keptManifests.map((m) => o.engine.log.segmentStartOf(m.walFromLsn, m.segmentSize))) : -1;
  const walSegmentsDeleted = walFloor < 0 ? [] : (await listArchivedStarts(dir)).filter((start) => start < walFloor);

  if (!o.dryRun) {
    for (const id of deleted) {
      // Rename-free delete: the manifest goes first, so a crash midway leaves no half snapshot that lists as whole.
      await unlink(path.join(snapshotPath(dir, id), 'manifest.json')).catch(() => undefined);
      await rm(snapshotPath(dir, id), { recursive: true, force: true });
    }
    if (deleted.length > 0) await fsyncDir(snapshotsDirOf(dir));
    for (const start of walSegmentsDeleted) {
      const base = path.join(archiveDirOf(dir), walFileName(start));
      await unlink(`${base}.json`).catch(() => undefined);
      await unlink(`${base}.lz4`).catch(() => undefined);
    }
    if (walSegmentsDeleted.length > 0) await fsyncDir(archiveDirOf(dir));
  }
  const leftovers = { removed: [...(await removeSnapshotLeftovers(dir, { dryRun: o.dryRun ?? false })), ...(await removeArchiveLeftovers(dir, { dryRun: o.dryRun ?? false }))] };
  return { kept: manifests.filter((m) => keep.has(m.id)).map((m) => m.id), deleted, walSegmentsDeleted, leftovers };
}

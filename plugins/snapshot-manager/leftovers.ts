/**
 * Temporary directories of snapshot and restore runs, and the removal of those left behind by
 * runs that were killed (SIGKILL, OOM, power loss) before they could clean up:
 *
 *   <dir>/snapshots/.<id>.<pid>-<start>.tmp   a snapshot being built (createSnapshot.ts)
 *   <to>.restoring-<pid>-<start>              a restore being staged (restore.ts)
 *
 * The name holds its owner: the pid and that process's start time in clock ticks since boot
 * (field 22 of /proc/<pid>/stat, as the store's LOCK file does). It is given by the mkdir that
 * creates the directory, so no live run's directory is ever without an owner. A directory is a
 * leftover when its owner is gone: no process has that pid, or the process that has it started
 * at another time (the pid was reused) — never while the owner runs, however long it takes.
 *
 * Names from before owners were recorded (`.<id>.tmp`, `<to>.restoring-<pid>`) are leftovers
 * when their pid is gone, or when nothing in them has changed for LEGACY_IDLE_MS (a live run
 * writes its files continuously).
 *
 * Without /proc nothing can be told about owners, and nothing is removed.
 */
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { processStartTime } from '../pagestore/storeLock.js';
import { snapshotsDirOf } from './manifest.js';

/** A leftover found (and removed, unless a dry run). */
export interface Leftover {
  path: string;
  /** Its owner's pid, when the name records one. */
  pid: number | null;
  /** Disk space it held (allocated blocks). */
  bytes: number;
  /** Why it is a leftover. */
  why: string;
}

/** Ownerless (older) names count as leftovers once nothing in them changed for this long. */
export const LEGACY_IDLE_MS = 3600_000;

/** This process as an owner: `<pid>-<start time>`. */
function ownerTag(): string {
  return `${process.pid}-${processStartTime(process.pid) ?? 'unknown'}`;
}

/** Where this process builds snapshot `id` in `dir`. */
export function snapshotTempPath(dir: string, id: string): string {
  return path.join(snapshotsDirOf(dir), `.${id}.${ownerTag()}.tmp`);
}

/** Where this process stages a restore to `to`. */
export function restoreStagingPath(to: string): string {
  return `${to}.restoring-${ownerTag()}`;
}

/** Removes the temporary directories of killed snapshot runs in `dir` (a dry run only finds them). */
export async function removeSnapshotLeftovers(dir: string, o: { dryRun?: boolean } = {}): Promise<Leftover[]> {
  const parent = snapshotsDirOf(dir);
  return removeLeftovers(parent, (name) => {
    const m = /^\.[^./]+\.(?:(\d+)-(\d+|unknown)\.)?tmp$/.exec(name);
    return m ? { pid: m[1] !== undefined ? Number(m[1]) : null, start: m[2] ?? null } : null;
  }, o.dryRun ?? false);
}

/** Removes the staging directories of killed restores to `to`. */
export async function removeRestoreLeftovers(to: string): Promise<Leftover[]> {
  const prefix = `${path.basename(to)}.restoring-`;
  return removeLeftovers(path.dirname(to), (name) => {
    if (!name.startsWith(prefix)) return null;
    const m = /^(\d+)(?:-(\d+|unknown))?$/.exec(name.slice(prefix.length));
    return m ? { pid: Number(m[1]), start: m[2] ?? null } : null;
  }, false);
}

type Owner = { pid: number | null; start: string | null };

async function removeLeftovers(parent: string, ownerOf: (name: string) => Owner | null, dryRun: boolean): Promise<Leftover[]> {
  if (processStartTime(process.pid) === null) return []; // no /proc: owners cannot be checked
  const names = await readdir(parent).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const found: Leftover[] = [];
  for (const name of names.sort()) {
    const owner = ownerOf(name);
    if (!owner) continue;
    const p = path.join(parent, name);
    const usage = await diskUsage(p);
    if (!usage) continue; // gone meanwhile, or not a directory
    const why = leftoverReason(owner, usage.newestChangeMs);
    if (!why) continue;
    if (!dryRun) await rm(p, { recursive: true, force: true });
    found.push({ path: p, pid: owner.pid, bytes: usage.bytes, why });
  }
  return found;
}

/** Why a directory with this owner is a leftover, or null while its owner may still run. */
function leftoverReason(owner: Owner, newestChangeMs: number): string | null {
  if (owner.pid !== null) {
    const now = processStartTime(owner.pid);
    if (now === null) return `process ${owner.pid} is gone`;
    if (owner.start !== null && owner.start !== 'unknown') {
      return now === owner.start ? null : `pid ${owner.pid} now belongs to another process (started at tick ${now}, not ${owner.start})`;
    }
  }
  const idleMs = Date.now() - newestChangeMs;
  return idleMs >= LEGACY_IDLE_MS ? `its name records no start time to tell its owner by, and nothing in it changed for ${Math.round(idleMs / 60_000)} min` : null;
}

/** Allocated bytes under `p` and the newest modification time in it; null if it is not a directory. */
async function diskUsage(p: string): Promise<{ bytes: number; newestChangeMs: number } | null> {
  const top = await lstat(p).catch(() => null);
  if (!top?.isDirectory()) return null;
  let bytes = top.blocks * 512;
  let newestChangeMs = top.mtimeMs;
  const entries = await readdir(p, { recursive: true }).catch(() => [] as string[]);
  for (const e of entries) {
    const st = await lstat(path.join(p, e)).catch(() => null);
    if (!st) continue;
    bytes += st.blocks * 512;
    newestChangeMs = Math.max(newestChangeMs, st.mtimeMs);
  }
  return { bytes, newestChangeMs };
}

/** One line for people: how many were removed, the space, and where. */
export function describeLeftovers(removed: readonly Leftover[], verb = 'removed'): string {
  const bytes = removed.reduce((n, l) => n + l.bytes, 0);
  return `${verb} ${removed.length} temporary ${removed.length === 1 ? 'directory' : 'directories'} of killed runs (${bytes} bytes): ${removed.map((l) => l.path).join(', ')}`;
}

/**
 * Temporary directories of snapshot and restore runs, and the removal of those left behind by
 * runs that were killed (SIGKILL, OOM, power loss) before they could clean up:
 *
 *   <dir>/snapshots/.<id>.<owner>.tmp   a snapshot being built (createSnapshot.ts)
 *   <to>.restoring-<owner>              a restore being staged (restore.ts)
 *
 * `<owner>` is `<pid>-<start>-<space>`: the pid, that process's start time in clock ticks since
 * boot (field 22 of /proc/<pid>/stat, as the store's LOCK file has it), and the pid space those
 * mean something in (the boot, and the pid namespace: a container, another host sharing the
 * directory over NFS). It is given by the mkdir that creates the directory, so no live run's
 * directory is ever without an owner. A directory of this pid space is a leftover when its owner
 * is gone: no process has that pid, or the process that has it started at another time (the pid
 * was reused) — never while the owner runs, however long it takes.
 *
 * What cannot be checked here — a directory of another pid space, or a name from before owners
 * were recorded (`.<id>.tmp`, `<to>.restoring-<pid>`) — is a leftover only once nothing in it has
 * changed for LEGACY_IDLE_MS (a live run writes its files continuously). Without /proc nothing
 * can be told about owners, and nothing is removed.
 */
import { readFileSync, readlinkSync } from 'node:fs';
import { lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { processStartTime } from '../../core/processStartTime.js';
import { archiveDirOf, snapshotsDirOf } from './manifest.js';

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

/** Directories whose owner cannot be checked count as leftovers once nothing in them changed for this long. */
export const LEGACY_IDLE_MS = 3600_000;

/** `<pid>-<start>-<space>`, as in a name; <space> is `<boot id prefix>n<pid namespace inode>`. */
const OWNER = /^(\d+)-(\d+)-([0-9a-f]+n\d+)$/;

/** This process's pid space, or null when /proc does not tell. */
function pidSpace(): string | null {
  try {
    const boot = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').replace(/[^0-9a-f]/g, '').slice(0, 12);
    const ns = /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1];
    return boot && ns ? `${boot}n${ns}` : null;
  } catch {
    return null;
  }
}

/** This process as an owner; `unknown` parts (no /proc) make a name no one will ever remove but by idleness. */
function ownerTag(): string {
  return `${process.pid}-${processStartTime(process.pid) ?? 'unknown'}-${pidSpace() ?? 'unknown'}`;
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
  return removeLeftovers(snapshotsDirOf(dir), (name) => {
    const m = /^\.[^./]+\.(?:([^./]+)\.)?tmp$/.exec(name);
    return m ? ownerOf(m[1]) : null;
  }, o.dryRun ?? false);
}

/**
 * Removes temporary files of killed WAL archivers in `dir`'s archive (`<lsn>.wal.lz4.tmp`,
 * `<lsn>.wal.json.tmp`: written, then renamed into place). Their writer, a store's owner, is not
 * named in them, so only those unchanged for LEGACY_IDLE_MS go; a live archiver renames its
 * file within a second. Removing one early would only make that archiving fail and be retried.
 */
export async function removeArchiveLeftovers(dir: string, o: { dryRun?: boolean } = {}): Promise<Leftover[]> {
  const archive = archiveDirOf(dir);
  const names = await readdir(archive).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const found: Leftover[] = [];
  for (const name of names.filter((n) => /^[0-9a-f]{16}\.wal\.(?:lz4|json)\.tmp$/.test(n)).sort()) {
    const p = path.join(archive, name);
    const st = await lstat(p).catch(() => null);
    if (!st?.isFile() || Date.now() - st.mtimeMs < LEGACY_IDLE_MS) continue;
    if (!o.dryRun) await rm(p, { force: true });
    found.push({ path: p, pid: null, bytes: st.blocks * 512, why: `an archiver's temporary file, unchanged for ${Math.round((Date.now() - st.mtimeMs) / 60_000)} min` });
  }
  return found;
}

/** Removes the staging directories of killed restores to `to`. */
export async function removeRestoreLeftovers(to: string): Promise<Leftover[]> {
  const prefix = `${path.basename(to)}.restoring-`;
  return removeLeftovers(path.dirname(to), (name) => (name.startsWith(prefix) && name.length > prefix.length ? ownerOf(name.slice(prefix.length)) : null), false);
}

/** What a name says of its owner: all of it, a bare pid or nothing (older names); null: not our name. */
type Owner = { pid: number; start: string; space: string } | { pid: number | null; start: null; space: null };

function ownerOf(tag: string | undefined): Owner | null {
  if (tag === undefined) return { pid: null, start: null, space: null };
  const m = OWNER.exec(tag);
  if (m) return { pid: Number(m[1]), start: m[2]!, space: m[3]! };
  if (/^\d+$/.test(tag)) return { pid: Number(tag), start: null, space: null };
  return /^\d+-(?:\d+|unknown)-(?:[0-9a-z]+|unknown)$/.test(tag) ? { pid: Number(tag.split('-')[0]), start: null, space: null } : null;
}

async function removeLeftovers(parent: string, ownerIn: (name: string) => Owner | null, dryRun: boolean): Promise<Leftover[]> {
  const here = pidSpace();
  if (here === null || processStartTime(process.pid) === null) return []; // no /proc: owners cannot be checked
  const names = await readdir(parent).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  const found: Leftover[] = [];
  for (const name of names.sort()) {
    const owner = ownerIn(name);
    if (!owner) continue;
    const p = path.join(parent, name);
    const usage = await diskUsage(p);
    if (!usage) continue; // gone meanwhile, or not a directory
    const why = leftoverReason(owner, here, usage.newestChangeMs);
    if (!why) continue;
    if (!dryRun) await rm(p, { recursive: true, force: true });
    found.push({ path: p, pid: owner.pid, bytes: usage.bytes, why });
  }
  return found;
}

/** Why a directory with this owner is a leftover, or null while its owner may still run. */
function leftoverReason(owner: Owner, here: string, newestChangeMs: number): string | null {
  if (owner.space === here) {
    const now = processStartTime(owner.pid);
    if (now === null) return `process ${owner.pid} is gone`;
    return now === owner.start ? null : `pid ${owner.pid} now belongs to another process (started at tick ${now}, not ${owner.start})`;
  }
  const idleMs = Date.now() - newestChangeMs;
  if (idleMs < LEGACY_IDLE_MS) return null;
  const unknown = owner.space !== null ? `made in another boot or pid namespace (${owner.space})` : 'its name records no owner that can be checked';
  return `${unknown}, and nothing in it changed for ${Math.round(idleMs / 60_000)} min`;
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

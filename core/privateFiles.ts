/**
 * Files and directories only their owner may use: what a store, its snapshots, its WAL archive
 * and the agent's own state are made of (0600 files, 0700 directories).
 *
 * The mode is given when a file or directory is created (open or mkdir with a mode), never set
 * afterwards by a chmod, so no other user can open it in between. The umask can only take bits
 * away, so under a umask of 000 a file is still 0600. process.umask() is not used: it changes
 * the whole process and is not allowed in worker threads.
 *
 * Something that already exists with group or other bits is tightened (those bits removed), never
 * loosened, when it belongs to this process's user (or the process is root); anything else is
 * left as it is, since only its owner may change it. A symlink is never followed to tighten what
 * it points at: it may point anywhere (a store's run/ made a link to /tmp must not make a root
 * process chmod /tmp).
 *
 * A root process working in another user's directory (the agent recovering, checkpointing or
 * restoring that user's store) gives what it creates there to the directory's owner: a 0600 file
 * of root's would otherwise lock the owner out of its own store (its control file, a new WAL
 * segment, the lock file).
 */
import { chmodSync, lstatSync, mkdirSync, type Stats } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** Mode of every file the agent or a store creates. */
export const PRIVATE_FILE_MODE = 0o600;
/** Mode of every directory the agent or a store creates (parents included). */
export const PRIVATE_DIR_MODE = 0o700;
/** Group and other permission bits: what tightening removes. */
const kGroupOtherBits = 0o077;

/** A file or directory whose mode was tightened. */
export interface Tightened {
  path: string;
  /** Permission bits before and after, in octal (e.g. "644" → "600"). */
  from: string;
  to: string;
}

const octal = (mode: number) => (mode & 0o7777).toString(8);

/** True when this process may chmod something owned by `uid`. */
function mayChmod(uid: number): boolean {
  const euid = process.geteuid?.();
  return euid === undefined || euid === 0 || euid === uid;
}

/** The tightened mode of `st`, or null when it needs no change, is a symlink, or is not this process's to change. */
function tighter(st: Stats): number | null {
  if (st.isSymbolicLink() || (st.mode & kGroupOtherBits) === 0 || !mayChmod(st.uid)) return null;
  return st.mode & 0o7777 & ~kGroupOtherBits;
}

/**
 * Who should own what this process creates in `dir`: its owner, when this process is root and
 * `dir` belongs to another user; else null (what it creates stays its own).
 */
export async function ownerFor(dir: string): Promise<{ uid: number; gid: number } | null> {
  if (process.geteuid?.() !== 0) return null;
  const st = await stat(dir);
  return st.uid === 0 ? null : { uid: st.uid, gid: st.gid };
}

/**
 * Opens `file` for writing as a private file: created 0600; one that existed with group or other
 * bits is tightened before anything is written to it. Given to the directory's owner (ownerFor).
 */
export async function openPrivate(file: string, flags: 'w' | 'w+' | 'wx' | 'a'): Promise<FileHandle> {
  const h = await open(file, flags, PRIVATE_FILE_MODE);
  try {
    const st = await h.stat();
    const mode = tighter(st);
    if (mode !== null) await h.chmod(mode);
    const owner = await ownerFor(path.dirname(file));
    if (owner && (st.uid !== owner.uid || st.gid !== owner.gid)) await h.chown(owner.uid, owner.gid);
  } catch (err) {
    await h.close().catch(() => undefined);
    throw err;
  }
  return h;
}

/**
 * Makes sure `dir` exists and is private: missing directories on the way are created 0700 (each
 * given to its parent's owner, see ownerFor), and `dir` itself, if it existed (and is no
 * symlink), is tightened. Returns what was tightened (nothing or `dir`).
 */
export async function ensurePrivateDir(dir: string): Promise<Tightened[]> {
  const first = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first !== undefined) {
    const made: string[] = [];
    for (let d = path.resolve(dir); ; d = path.dirname(d)) {
      made.unshift(d);
      if (d === path.resolve(first) || d === path.dirname(d)) break;
    }
    for (const d of made) {
      const owner = await ownerFor(path.dirname(d));
      if (owner) await lchown(d, owner.uid, owner.gid);
    }
  }
  const t = await tightenPath(dir);
  return t ? [t] : [];
}

/** The same, synchronously (for the agent's start). */
export function ensurePrivateDirSync(dir: string): Tightened[] {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const st = lstatSync(dir);
  const mode = tighter(st);
  if (mode === null) return [];
  chmodSync(dir, mode);
  return [{ path: dir, from: octal(st.mode), to: octal(mode) }];
}

/**
 * Removes group and other bits from `file` when it has any, is no symlink and belongs to this
 * process's user; returns what changed, or null. A missing file is no error (null).
 */
export async function tightenPath(file: string): Promise<Tightened | null> {
  let st: Stats;
  try {
    st = await lstat(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const mode = tighter(st);
  if (mode === null) return null;
  await chmod(file, mode);
  return { path: file, from: octal(st.mode), to: octal(mode) };
}

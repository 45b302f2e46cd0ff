/**
 * One writer per store: a pid lock file (`LOCK`) in the store directory, like PostgreSQL's
 * postmaster.pid. It holds the owner's pid and the start time of that process (field 22 of
 * /proc/<pid>/stat), so a pid reused by an unrelated process after a crash is seen as stale.
 *
 * A stale lock (owner dead, or pid now another process) is taken over: renamed aside, checked
 * to be the stale one, removed, and the lock created again with O_EXCL, so that of processes
 * racing to take it over exactly one wins.
 */
import { link, readFile, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { processStartTime } from '../../core/processStartTime.js';
import { openPrivate } from '../../core/privateFiles.js';
import { writeAll } from '../../core/writeAll.js';

export interface StoreLock {
  readonly file: string;
  release(): Promise<void>;
}

export { processStartTime };

function ownerAlive(pid: number, start: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  return processStartTime(pid) === start;
}

/** The pid of the live process that holds the store's lock, or null (free, or stale); read-only. */
export async function lockHolder(dir: string): Promise<number | null> {
  const content = await readFile(path.join(dir, 'LOCK'), 'utf8').catch(() => null);
  if (content === null) return null;
  const [pidText, start] = content.split('\n');
  const pid = Number(pidText);
  return start !== undefined && ownerAlive(pid, start) ? pid : null;
}

export async function acquireStoreLock(dir: string): Promise<StoreLock> {
  const file = path.join(dir, 'LOCK');
  const me = `${process.pid}\n${processStartTime(process.pid) ?? 'unknown'}\n`;
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const h = await openPrivate(file, 'wx');
      try {
        await writeAll(h, Buffer.from(me), 0);
        await h.datasync();
      } finally {
        await h.close();
      }
      let released = false;
      return {
        file,
        release: async () => {
          if (released) return;
          released = true;
          // Only remove the lock if it is still ours.
          const now = await readFile(file, 'utf8').catch(() => '');
          if (now === me) await unlink(file).catch(() => undefined);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const content = await readFile(file, 'utf8').catch(() => null);
    if (content === null) continue; // removed meanwhile: try again
    const [pidText, start] = content.split('\n');
    const pid = Number(pidText);
    if (start !== undefined && ownerAlive(pid, start)) {
      throw raError('RA_ERR_STORE_LOCKED', `store ${dir} is locked by process ${pid} (${file}); one writer per store`, { details: { pid, lockFile: file } });
    }
    if (content.split('\n').length < 3 && attempt === 0) {
      // Possibly being written right now by a new owner: look again shortly before calling it stale.
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const aside = `${file}.stale.${process.pid}.${attempt}`;
    try {
      await rename(file, aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      continue;
    }
    // If a racing process took the stale lock over first, what we moved aside is its live lock:
    // put it back (link fails if yet another one exists by now) and look again.
    if ((await readFile(aside, 'utf8').catch(() => content)) !== content) await link(aside, file).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
  }
  throw raError('RA_ERR_STORE_LOCKED', `could not take the lock of store ${dir} (${file}) after 5 attempts`);
}

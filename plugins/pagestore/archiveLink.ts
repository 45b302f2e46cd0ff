/**
 * A store remembers where its WAL is archived: `<store>/archive`, one line of JSON
 * `{"target": "/abs/snapshot/dir"}`, written the first time an owner opens the store (or
 * recovers it) with an archiver that names its target, and rewritten when the target changes.
 *
 * Why: a checkpoint recycles the WAL segments recovery no longer needs, and an archive needs
 * every one of them (page rebuilds and point-in-time restores replay it without a gap). The
 * archiver is code the caller passes; a caller that forgets it (a `recover` from the command
 * line after the application was killed, an application opened without it) must not recycle
 * segments nobody archived. So a store that remembers an archive recycles a segment only
 * through an archiver, and keeps it otherwise, for the next owner that archives.
 *
 * To stop archiving a store for good, delete this file while nobody has the store open.
 */
import { readFile, rename, open } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { writeAll } from '../../core/writeAll.js';
import { fsyncDir } from '../../core/fsyncDir.js';

export const ARCHIVE_FILE = 'archive';

/** The archive target `dir` remembers, or null when it has none. */
export async function readArchiveLink(dir: string): Promise<string | null> {
  let text: string;
  try {
    text = await readFile(path.join(dir, ARCHIVE_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  let target: unknown;
  try {
    target = (JSON.parse(text) as { target?: unknown }).target;
  } catch {
    target = undefined;
  }
  if (typeof target !== 'string' || !path.isAbsolute(target)) {
    // Damaged: still an archive the store was told to keep; refuse rather than guess.
    throw raError('RA_ERR_STORE_INVALID', `${path.join(dir, ARCHIVE_FILE)} is damaged (expected {"target": "/absolute/dir"}); fix it or delete it to stop archiving this store`);
  }
  return target;
}

/** Makes `dir` remember `target` (absolute) as its archive, durably. */
export async function writeArchiveLink(dir: string, target: string): Promise<void> {
  const file = path.join(dir, ARCHIVE_FILE);
  const tmp = `${file}.tmp`;
  const h = await open(tmp, 'w', 0o600);
  try {
    await writeAll(h, Buffer.from(JSON.stringify({ target: path.resolve(target) }) + '\n'), 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, file);
  await fsyncDir(dir);
}

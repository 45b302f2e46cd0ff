/**
 * The newest LSN at which the store's live WAL changes a page: a lower bound of the page's LSN
 * that survives a reopen (the cache's memory of evicted pages does not). A repair image older
 * than it misses a logged change. Reads every live segment; for repairs, not for a hot path.
 */
import { readFile } from 'node:fs/promises';
import { readU64 } from './format.js';
import { walDirOf } from './storeFiles.js';
import { forEachPageRecord } from './walPages.js';
import { kRecLsn } from './walRecord.js';
import { SEGMENT_HEADER_SIZE, listSegments, segmentPath } from './walSegments.js';

export async function newestLoggedLsn(dir: string, pageId: number): Promise<number> {
  return (await newestLoggedLsns(dir, pageId)).get(pageId) ?? 0;
}

/**
 * The same for every page the live WAL changes, in one read of it (`only`: that page alone): what
 * the owner keeps, so that a repair asks a map instead of reading every segment (`PageStore`).
 */
export async function newestLoggedLsns(dir: string, only?: number): Promise<Map<number, number>> {
  const walDir = walDirOf(dir);
  const newest = new Map<number, number>();
  for (const start of await listSegments(walDir)) {
    let bytes: Buffer;
    try {
      bytes = await readFile(segmentPath(walDir, start));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // recycled meanwhile: older than what follows
      throw err;
    }
    if (bytes.byteLength <= SEGMENT_HEADER_SIZE) continue;
    forEachPageRecord(bytes, SEGMENT_HEADER_SIZE, start + SEGMENT_HEADER_SIZE, (at, id) => {
      if (only !== undefined && id !== only) return;
      const lsn = readU64(bytes, at + kRecLsn);
      if (lsn > (newest.get(id) ?? 0)) newest.set(id, lsn);
    });
  }
  return newest;
}

/**
 * How much WAL a store has since its last checkpoint, read from its files without opening it
 * (no lock: the owner may be writing). The end of the log is the last segment's start plus its
 * size for a segment that grows as written; one made at full size (walSegments.ts FULL_SIZE) is a
 * sparse file whose allocated bytes (st_blocks) end with its records, to the filesystem's block
 * (an estimate within 4 KiB, read without reading the file). The redo point is in the control
 * file, whose mtime is the time of the last checkpoint (it is replaced atomically by each one).
 */
import { stat } from 'node:fs/promises';
import type { LogUsage } from '../../core/contracts/PageEngine.js';
import path from 'node:path';
import { readControl } from './control.js';
import { walDirOf } from './storeFiles.js';
import { listSegments, segmentPath, writtenBytes } from './walSegments.js';

/** The face's `LogUsage` (core/contracts/PageEngine.ts), under the page store's name for its log. */
export type WalUsage = LogUsage;

/** Reads a store's WAL usage. Throws RA_ERR_STORE_NOT_FOUND / RA_ERR_STORE_INVALID like readControl. */
export async function walUsage(dir: string): Promise<WalUsage> {
  for (let attempt = 0; ; attempt++) {
    const control = await readControl(dir);
    const checkpointAt = (await stat(path.join(dir, 'control'))).mtimeMs;
    const walDir = walDirOf(dir);
    const segments = await listSegments(walDir);
    const last = segments.at(-1);
    try {
      const endLsn = last === undefined ? control.redoLsn : last + writtenBytes(await stat(segmentPath(walDir, last)), control.segmentSize);
      return { redoLsn: control.redoLsn, endLsn, sinceCheckpointBytes: Math.max(0, endLsn - control.redoLsn), segments: segments.length, segmentSize: control.segmentSize, checkpointAt };
    } catch (err) {
      // The last segment was recycled between the listing and the stat (a checkpoint ran): look again.
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 2) throw err;
    }
  }
}

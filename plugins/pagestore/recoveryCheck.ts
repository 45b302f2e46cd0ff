/**
 * Read-only checks of a store's log, apart from recovery itself so that `scan` (which runs one)
 * loads none of the redo, undo and worker pool code: whether crash recovery would accept the
 * store, and whether it would have anything to do.
 */
import { isRaError } from '../../core/errors.js';
import { readArchiveLink } from './archiveLink.js';
import type { CheckpointBody } from './checkpoint.js';
import { readControl } from './control.js';
import { walDirOf } from './storeFiles.js';
import { RecordType, decodeRecord } from './walRecord.js';
import { readRecordFromDisk, scanWal } from './walScan.js';

/**
 * What would make recovery of `dir` refuse, found without a lock and without writing: the
 * archive file, the checkpoint record the control file names, and the WAL from where recovery
 * would read it (a damaged header, a gap, a damaged record with valid ones after it). Null when
 * recovery would go ahead. A live owner may append or recycle meanwhile: callers read again
 * before they report.
 */
export async function recoveryProblem(dir: string): Promise<string | null> {
  try {
    await readArchiveLink(dir);
    const control = await readControl(dir);
    const walDir = walDirOf(dir);
    const rec = decodeRecord(await readRecordFromDisk(walDir, control.storeId, control.segmentSize, control.checkpointLsn), 0, control.pageSize);
    if (rec.type !== RecordType.Checkpoint || !rec.json) return `control file points at LSN ${control.checkpointLsn}, which is not a checkpoint record`;
    const ckpt = JSON.parse(Buffer.from(rec.json).toString('utf8')) as CheckpointBody;
    await scanWal(walDir, control.storeId, control.segmentSize, Math.min(control.redoLsn, ...ckpt.att.map((a) => a[1])));
    return null;
  } catch (err) {
    if (isRaError(err, 'RA_ERR_WAL_CORRUPT') || isRaError(err, 'RA_ERR_STORE_INVALID') || isRaError(err, 'RA_ERR_STORE_NOT_FOUND')) return (err as Error).message;
    throw err;
  }
}

/**
 * What crash recovery would still have to do to the store in `dir` (nobody has it open), found
 * without a lock and without writing; null when nothing: the last checkpoint is the last record,
 * nothing was dirty or active at it. How a recovery is verified without running another (which
 * would be a second recovery to count and log).
 */
export async function recoveryPending(dir: string): Promise<string | null> {
  const control = await readControl(dir);
  const walDir = walDirOf(dir);
  const rec = decodeRecord(await readRecordFromDisk(walDir, control.storeId, control.segmentSize, control.checkpointLsn), 0, control.pageSize);
  if (rec.type !== RecordType.Checkpoint || !rec.json) return `control file points at LSN ${control.checkpointLsn}, which is not a checkpoint record`;
  const ckpt = JSON.parse(Buffer.from(rec.json).toString('utf8')) as CheckpointBody;
  if (ckpt.att.length > 0) return `${ckpt.att.length} transaction(s) were active at the last checkpoint`;
  if (control.redoLsn < control.checkpointLsn || ckpt.dpt.length > 0) return `pages changed before the last checkpoint may be missing from the data file (redo from LSN ${control.redoLsn})`;
  const scan = await scanWal(walDir, control.storeId, control.segmentSize, control.checkpointLsn);
  if (scan.count > 1) return `${scan.count - 1} record(s) follow the last checkpoint`;
  return null;
}

/**
 * Salvage of a failed store's live log for a restore elsewhere: the segments the archive does
 * not hold yet (or holds shorter) are read from the store's own log directory, if its disk still
 * reads, and offered to the restore as WAL sources beside the archive's. This is what keeps
 * commits acknowledged after the last archived segment when a disk fails its writes but still
 * reads (the usual first symptom); a disk that does not read gives nothing, and the restore ends
 * where the archive does.
 *
 * Only a run of contiguous, trustworthy log is offered: each segment's header must be this
 * store's, its records are checked one by one and it is cut before the first that fails; a
 * segment that cannot be read or has a bad header ends the run (a later segment after a hole
 * would splice unrelated log onto the restored one). A segment cut by damage before a later one
 * is refused by the restore's recovery (records stop where the next would still have fitted);
 * the restorer then restores from the archive alone (index.ts).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import type { Manifest } from './manifest.js';
import type { WalSource } from './walChain.js';

/** Adds the failed store's readable log to `sources`; returns the log bytes it added beyond what they held. */
export async function salvageLiveLog(engine: PageEngine, storeDir: string, newest: Manifest, sources: Map<number, WalSource>, onWarning?: (m: string) => void): Promise<number> {
  const { log } = engine;
  const logDir = engine.files.logDir(storeDir);
  let starts: number[];
  try {
    starts = (await log.listSegments(logDir)).sort((a, b) => a - b);
  } catch (err) {
    onWarning?.(`the failed store's log ${logDir} cannot be listed (${(err as Error).message}): restoring from the archive alone`);
    return 0;
  }
  const storeId = Buffer.from(newest.storeId, 'hex');
  let added = 0;
  let expected: number | null = null;
  for (const start of starts) {
    if (expected !== null && start !== expected) break;
    const file = path.join(logDir, log.segmentName(start));
    let raw: Buffer;
    try {
      raw = await readFile(file);
    } catch (err) {
      onWarning?.(`segment ${file} of the failed store cannot be read (${(err as Error).message}): the salvaged log ends before it`);
      break;
    }
    if (log.checkSegmentHeader(raw, storeId, start, newest.segmentSize) !== null) break;
    const valid = log.scanRecords(raw, log.segmentHeaderSize, raw.byteLength, start + log.segmentHeaderSize);
    const bytes = raw.subarray(0, valid);
    const have = sources.get(start)?.rawBytes ?? 0;
    if (valid > have) {
      sources.set(start, { startLsn: start, rawBytes: valid, path: file, entry: { file: path.basename(file), bytes: valid, xxh3: '', rawBytes: valid, rawXxh3: '', startLsn: start }, at: Date.now(), raw: bytes });
      added += valid - have;
    }
    expected = start + newest.segmentSize;
  }
  return added;
}

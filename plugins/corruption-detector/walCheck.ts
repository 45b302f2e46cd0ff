/**
 * A check of a store's live log (its WAL segments), through the engine's page face only: every
 * record of the sealed segments, and of the current one up to the durable LSN its live owner
 * reports, walked with the engine's own record checks (length, LSN, checksum). A record there
 * that fails them is damage — not the log's end: the owner made it durable, and crash recovery
 * would stop at it and lose every acknowledged commit after it.
 *
 * What counts as the end of a segment: its file ends with its last record (the store cuts its
 * log at the last valid record when it opens, and only appends), and the writer moves to the next segment only when the next
 * record does not fit in this one (the rule walSummary.ts in the snapshot manager reads copies
 * with), so a sealed segment whose records end where the next segment's first record would
 * still have fitted lost records: a bit flipped in one, or its tail cut off — unless the next
 * segment starts a new epoch (a promotion starts one in a new segment). The current segment
 * is read only below the durable LSN the owner reported before the read, so records being
 * written are never taken for damage. Segments are unlinked when retired (never renamed and
 * reused), so one gone under the read is skipped.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { withOwner, type PageEngine } from '../../core/contracts/PageEngine.js';
import { isRaError } from '../../core/errors.js';

export interface WalDamage {
  /** The segment file and the LSN its byte 0 stands for. */
  file: string;
  segmentStartLsn: number;
  /** Where the valid records stop: the LSN of the first record that fails, and its offset in the file. */
  lsn: number;
  offset: number;
  /** What is wrong there. */
  reason: string;
  /** The failing record's stored and computed checksums, when its length still frames it. */
  expected: string | null;
  found: string | null;
}

export interface WalCheck {
  /** The owner's durable LSN (null: no live owner, so only sealed segments were checked). */
  durableLsn: number | null;
  /** The store's redo LSN: crash recovery replays the log from here. */
  redoLsn: number;
  segments: number;
  bytes: number;
  damage: WalDamage[];
}

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException | null)?.code === 'ENOENT';

/** Checks the live log of the store in `dir`; see the module comment. */
export async function checkLiveWal(engine: PageEngine, dir: string, options: { timeoutMs?: number } = {}): Promise<WalCheck> {
  // The durable LSN first: everything below it was on disk before any segment is read.
  let durableLsn: number | null = null;
  try {
    durableLsn = (await withOwner(engine, dir, (o) => o.status(), { timeoutMs: options.timeoutMs ?? 2000 })).flushedLsn;
  } catch (err) {
    if (!isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) throw err;
  }
  const state = await engine.files.readState(dir);
  const { log } = engine;
  const hdr = log.segmentHeaderSize;
  const logDir = engine.files.logDir(dir);
  const starts = await log.listSegments(logDir);
  const out: WalCheck = { durableLsn, redoLsn: state.redoLsn, segments: 0, bytes: 0, damage: [] };
  /** The previous segment's start and where its valid records end (position), to check it once this one's first record is known. */
  let prev: { start: number; end: number; file: string; buf: Uint8Array; reported: boolean } | null = null;

  const damageAt = (file: string, start: number, buf: Uint8Array, at: number, reason: string): WalDamage => {
    const sums = log.recordChecksums?.(buf, at) ?? null;
    const mismatch = sums && sums.stored !== sums.computed ? `; its checksum is ${sums.computed}, it stores ${sums.stored}` : '';
    return { file, segmentStartLsn: start, lsn: start + at, offset: at, reason: reason + mismatch, expected: sums?.stored ?? null, found: sums?.computed ?? null };
  };

  for (let i = 0; i < starts.length; i++) {
    const start = starts[i]!;
    const current = i === starts.length - 1;
    // The current segment holds nothing durable yet: nothing to check (it may be being created).
    // Without a live owner it is still read for a cut (below).
    if (current && durableLsn !== null && durableLsn <= start + hdr) break;
    const file = path.join(logDir, log.segmentName(start));
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch (err) {
      if (isEnoent(err)) {
        prev = null; // retired under the read
        continue;
      }
      throw err;
    }
    out.segments++;
    out.bytes += buf.byteLength;
    const bad = log.checkSegmentHeader(buf, state.storeId, start, state.segmentSize);
    if (bad) {
      out.damage.push({ file, segmentStartLsn: start, lsn: start, offset: 0, reason: `segment header: ${bad}`, expected: null, found: null });
      prev = null;
      continue;
    }
    // A segment made at full size ends its records where its zeros begin (walSegments.ts).
    const content = log.segmentContent(buf, buf.byteLength, state.segmentSize);
    if (content.cut && current && durableLsn === null) {
      // No live owner: a cut newest segment is what recovery refuses (the records past the cut
      // may have been durable): damage.
      const end = log.scanRecords(buf, hdr, buf.byteLength, start + hdr);
      out.damage.push(damageAt(file, start, buf, end, `the segment file is ${content.cut}`));
      break;
    }
    // A sealed segment cut: its records may still seem to end where the next first record would
    // not have fitted (a large one), but its length says records are gone (walScan.ts refuses it).
    let reported = false;
    if (content.cut && !current) {
      out.damage.push(damageAt(file, start, buf, log.scanRecords(buf, hdr, buf.byteLength, start + hdr), `the sealed segment file is ${content.cut}`));
      reported = true;
    }
    buf = buf.subarray(0, content.length);
    // No live owner: what the current segment holds is not known durable (it may be a torn tail).
    if (current && durableLsn === null) break;
    const limit = current ? Math.min(buf.byteLength, durableLsn! - start) : buf.byteLength;
    const end = log.scanRecords(buf, hdr, limit, start + hdr);
    // A new epoch (a promotion) starts in a new segment whatever room the last one had left.
    const sameEpoch = !log.segmentEpoch || !prev || log.segmentEpoch(prev.buf) === log.segmentEpoch(buf);
    if (prev && prev.start + state.segmentSize === start) {
      // The previous segment was left for this one only if this one's first record did not fit after its records.
      if (end === hdr) {
        if (!current) out.damage.push(damageAt(file, start, buf, hdr, 'a sealed segment whose first record fails its check'));
      } else if (!prev.reported && sameEpoch && prev.end + log.recordLength(buf, hdr) <= state.segmentSize) {
        out.damage.push(damageAt(prev.file, prev.start, prev.buf, prev.end, `the records stop at offset ${prev.end}, where the next record would still have fitted in the segment`));
      }
    }
    // A sealed segment's file ends with its last record (the store cuts its log at the last valid
    // record when it opens, and only appends): bytes after the valid records are records lost to damage.
    if (!current && !reported && end < buf.byteLength) {
      out.damage.push(damageAt(file, start, buf, end, `the records stop at offset ${end}, ${buf.byteLength - end} bytes before the end of the sealed segment`));
      reported = true;
    }
    // Below the durable LSN every record must be there: a cut-off tail (the file shorter) is damage too.
    if (current && start + end < durableLsn!) out.damage.push(damageAt(file, start, buf, end, `the records stop at LSN ${start + end}, below the durable LSN ${durableLsn}`));
    // Cut past the durable LSN: nothing lost yet, but a crash now would stop recovery at the cut
    // (the owner's next checkpoint seals the segment: checkpoint-past-damage asks for one).
    else if (current && content.cut) out.damage.push(damageAt(file, start, buf, end, `the segment file is ${content.cut}; its records up to the durable LSN ${durableLsn} are whole`));
    prev = { start, end, file, buf, reported };
  }
  return out;
}

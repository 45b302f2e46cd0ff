/**
 * The snapshot manager as a page source (core/contracts/PageSource.ts): the data repairer asks
 * it for a verified copy of a corrupt page, and it rebuilds one from a snapshot and the WAL.
 *
 * Rebuilding one page from a snapshot and the WAL, like Oracle's block media recovery: the
 * page's image from the newest snapshot that holds it, then every WAL record for the page newer
 * than that image, from the snapshot's WAL start to the end of the log, applied in LSN order.
 *
 * Why this is the page as of the end of the log:
 *   - a snapshot copies pages after its start LSN (the redo LSN of the checkpoint in force), and
 *     every change older than that LSN was on disk by then, so the image holds every change
 *     before the start LSN; any later one is in the WAL from the snapshot's WAL start on;
 *   - an incremental holds the pages whose LSN passed its base's start LSN; a page missing from
 *     every incremental of a chain had no change from the full snapshot's start until the
 *     newest incremental's copy, so the full snapshot's image and the newest snapshot's WAL
 *     start are enough;
 *   - redo repeats history: records of transactions still open or rolled back later are
 *     applied too, as crash recovery's redo would (their undo is logged as CLRs, applied too).
 *
 * The WAL comes from the store's live segments when they are there, else from the archive or a
 * snapshot's own copy (walChain.ts). A segment missing before the log's end is RA_ERR_WAL_GAP.
 *
 * Online (the store has a live owner), "the end of the log" is the owner's durable (flushed) LSN,
 * taken before any segment is read: the records are replayed up to it and must all be found. Why
 * that is the page's current version: the repairer saw the page bad on disk and not in the
 * owner's memory before asking; such a page cannot change (changing it needs it in memory, and
 * loading it fails while its disk copy is bad), and it left memory clean, after every record for
 * it was durable (WAL before page). So every record for it lies below any durable LSN taken
 * since. Reading up to that LSN, and no further, also makes the read immune to the owner
 * appending meanwhile: every segment below it was complete before the read began, so a live
 * segment the owner fills and leaves behind while it is read is never taken for a partial copy.
 * Records are found, checked and applied through the engine's log face (`forEachPageRecord`,
 * `applyToPage`: the kernels of crash recovery). The image is verified before and after.
 */
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { PageEngine, StoreState } from '../../core/contracts/PageEngine.js';
import type { PageSource, PageSourceStore } from '../../core/contracts/PageSource.js';
import { raError, describeError } from '../../core/errors.js';
import { blocksFor, readBlockRecords, type BlockIndex } from './archiveBlocks.js';
import { chainOf, loadAll, snapshotPath, type ChunkEntry, type Manifest } from './manifest.js';
import { readChecked, readRaw } from './walArchive.js';
import { loadSegment, walSources, type WalSource } from './walChain.js';

/**
 * The snapshot page source: `snapshotDirOf` says where a store's snapshots and WAL archive are
 * (its `snapshots.dir`), or that it has none, and then the source says so when asked.
 */
export function snapshotPageSource(snapshotDirOf: (store: { id: string; path: string }) => string | undefined): PageSource {
  return {
    id: 'snapshot',
    async pageFor(store: PageSourceStore, pageId: number, signal?: AbortSignal) {
      const dir = snapshotDirOf(store);
      if (!dir) throw raError('RA_ERR_REPAIR_NO_SOURCE', `the store has no snapshots.dir to rebuild page ${pageId} from`, { details: { pageId } });
      signal?.throwIfAborted();
      // Taken first: the read goes up to it and no further (see the file's comment).
      const durableLsn = store.owner ? (await store.owner.status()).flushedLsn : undefined;
      const { image, ...rebuilt } = await rebuildPage(store.engine, store.path, dir, pageId, durableLsn);
      return { image, lsn: store.engine.pages.lsn(image), ...(durableLsn !== undefined ? { asOfLsn: durableLsn } : {}), account: { from: `snapshot ${rebuilt.snapshot}`, ...rebuilt } };
    },
  };
}

export interface RebuiltPage {
  pageId: number;
  /** Sealed and verified: the page as of `endLsn`. */
  image: Buffer;
  /** The snapshot whose image it started from, and that image's LSN. */
  snapshot: string;
  imageLsn: number;
  /**
   * WAL replayed: from the snapshot's WAL start to the end of the log found, or (`durableLsn`
   * given) to that LSN, every record below it found.
   */
  walFromLsn: number;
  endLsn: number;
  durableLsn?: number;
  recordsApplied: number;
  /**
   * Segments read from the live WAL and from the archive or snapshots; archived ones whose block
   * filters rule the page out; blocks of archived segments decoded.
   */
  segments: { live: number; archived: number; skipped: number; blocks: number };
}

/**
 * Rebuilds page `pageId` of the store in `storeDir` (of `engine`) from the snapshots and WAL in
 * `snapshotDir`: as of the end of the log found, or, given the live owner's `durableLsn` (taken
 * before this is called), as of that LSN, refusing (RA_ERR_WAL_GAP) a WAL that ends before it.
 */
export async function rebuildPage(engine: PageEngine, storeDir: string, snapshotDir: string, pageId: number, durableLsn?: number): Promise<RebuiltPage> {
  const control = await engine.files.readState(storeDir);
  if (!Number.isInteger(pageId) || pageId < 0 || pageId >= control.pageCount) {
    throw raError('RA_ERR_PAGE_RANGE', `page ${pageId} is outside the store (pages 0..${control.pageCount - 1})`, { details: { pageId } });
  }
  const storeId = Buffer.from(control.storeId).toString('hex');
  const loaded = await loadAll(snapshotDir);
  const manifests = loaded.flatMap((l) => (l.manifest && l.manifest.storeId === storeId && l.manifest.pageSize === control.pageSize && l.manifest.pageCount === control.pageCount ? [l.manifest] : []));
  const byId = new Map(manifests.map((m) => [m.id, m]));
  const problems: string[] = [];
  // Newest snapshot first; an older chain is tried when a newer one cannot give the page.
  for (let i = manifests.length - 1; i >= 0; i--) {
    const top = manifests[i]!;
    try {
      const { image, from } = await imageFromChain(engine, snapshotDir, chainOf(top.id, byId), pageId);
      return { ...(await replay(engine, storeDir, snapshotDir, control, manifests, image, pageId, top.walFromLsn, durableLsn ?? Infinity)), pageId, snapshot: from.id };
    } catch (err) {
      problems.push(`${top.id}: ${describeError(err)}`);
    }
  }
  const why = manifests.length === 0 ? `${snapshotDir} holds no readable snapshot of this store` : problems.join('; ');
  throw raError('RA_ERR_REPAIR_NO_SOURCE', `no snapshot and WAL can rebuild page ${pageId}: ${why}`, { details: { pageId, problems } });
}

/** The image of the page in the newest snapshot of `chain` that holds it, verified. */
async function imageFromChain(engine: PageEngine, dir: string, chain: readonly Manifest[], pageId: number): Promise<{ image: Buffer; from: Manifest }> {
  for (let k = chain.length - 1; k >= 0; k--) {
    const m = chain[k]!;
    const hit = locate(m.chunks, pageId);
    if (!hit) continue;
    const file = path.join(snapshotPath(dir, m.id), hit.chunk.file);
    const raw = await readRaw(file, hit.chunk);
    const image = Buffer.from(raw.subarray(hit.index * m.pageSize, (hit.index + 1) * m.pageSize));
    const fault = image.byteLength === m.pageSize ? engine.pages.verify(image, pageId) : 'short';
    if (fault) throw raError('RA_ERR_SNAPSHOT_CORRUPT', `page ${pageId} in ${file} fails its ${fault} check`, { details: { file, pageId } });
    return { image, from: m };
  }
  throw raError('RA_ERR_SNAPSHOT_INVALID', `no snapshot of chain ${chain[chain.length - 1]!.id} holds page ${pageId}`);
}

function locate(chunks: readonly ChunkEntry[], pageId: number): { chunk: ChunkEntry; index: number } | null {
  for (const chunk of chunks) {
    let index = 0;
    for (const [first, count] of chunk.pages) {
      if (pageId >= first && pageId < first + count) return { chunk, index: index + pageId - first };
      index += count;
    }
  }
  return null;
}

/**
 * Applies to `image`, page `pageId`, every record for it from `fromLsn` to the end of the log, or
 * (`upto` finite: the owner's durable LSN) every record below `upto`, all of which must be found.
 */
async function replay(engine: PageEngine, storeDir: string, snapshotDir: string, control: StoreState, manifests: readonly Manifest[], image: Buffer, pageId: number, fromLsn: number, upto: number) {
  const { log } = engine;
  const imageLsn = engine.pages.lsn(image);
  const { segmentSize, storeId, pageSize } = control;
  const walDir = engine.files.logDir(storeDir);
  const segmentPath = (s: number) => path.join(walDir, log.segmentName(s));
  let archived: Map<number, WalSource> | null = null;
  const archive = async () => (archived ??= await walSources(snapshotDir, manifests));
  const segments = { live: 0, archived: 0, skipped: 0, blocks: 0 };
  /** Positions of the page's records in the bytes at hand (reused). */
  const mine: number[] = [];
  let recordsApplied = 0;
  let endLsn = fromLsn;
  /** Where the previous segment's valid records end, when it was read (-1: skipped or none). */
  let prevEnd = -1;
  const first = log.segmentStartOf(fromLsn, segmentSize);
  const liveBuf = { b: spareBuffers.pop() ?? Buffer.alloc(0) };
  try {
    for (let s = first; ; s += segmentSize) {
      if (s >= upto && s > first) break; // past the durable end: not needed, and maybe being written
      let seg = await segmentAt(s);
      let later = false;
      if (!seg) {
        later = [...(await log.listSegments(walDir)), ...(await archive()).keys()].some((x) => x > s);
        // The owner may have created and filled this segment (and started the next) since it was
        // looked for; it is a gap only if it is still missing now that a later one is known.
        if (later) seg = await segmentAt(s);
      }
      if (!seg) {
        if (s === first || later) {
          throw raError('RA_ERR_WAL_GAP', `the WAL segment at LSN ${s} (${s}..${s + segmentSize - 1}) is in neither the store's WAL nor the archive; page ${pageId} cannot be brought past LSN ${endLsn}`, { details: { missingFrom: s, missingTo: s + segmentSize - 1 } });
        }
        break;
      }
      const begin = s === first ? Math.max(fromLsn - s, log.segmentHeaderSize) : log.segmentHeaderSize;
      if ('index' in seg) {
        // Archived (so whole), in indexed blocks: only the blocks whose filter names the page.
        for (const b of blocksFor(seg.index, pageId)) {
          const { bytes, base } = readBlockRecords(seg.file, seg.frame, seg.index, seg.rawBytes, b);
          const from = Math.max(seg.index.firsts[b]!, begin) - base;
          const next = seg.index.firsts[b + 1] ?? -1;
          if (from >= bytes.byteLength || (next >= 0 && from + base >= next)) continue;
          segments.blocks++;
          apply(s, bytes, from, s + base + from, Math.min(next >= 0 ? next - base : Infinity, upto - s - base));
        }
        prevEnd = -1;
        endLsn = s + seg.rawBytes;
        continue;
      }
      const bytes = seg.bytes;
      const end = apply(s, bytes, begin, s + begin, upto - s);
      // A record that does not fit the rest of a segment starts the next one; a segment whose
      // valid records stop earlier although the next one's first record would have fitted is a
      // partial copy or a damaged one: replaying on would skip records.
      if (prevEnd >= 0 && end > begin && prevEnd + log.recordLength(bytes, begin) <= segmentSize) {
        throw raError('RA_ERR_WAL_GAP', `the WAL read of segment ${s - segmentSize} ends at LSN ${s - segmentSize + prevEnd}, before the segment's end (a partial or damaged copy): LSN ${s - segmentSize + prevEnd} to ${s - 1} is missing`, { details: { missingFrom: s - segmentSize + prevEnd, missingTo: s - 1 } });
      }
      if (end === begin && s > first) break; // an empty segment: the end of the log
      prevEnd = end;
      endLsn = s + end;
    }
  } finally {
    spareBuffers.push(liveBuf.b);
  }
  if (Number.isFinite(upto)) {
    // Records past the durable LSN were skipped; those below it must all have been found.
    if (endLsn < upto) throw raError('RA_ERR_WAL_GAP', `the WAL found ends at LSN ${endLsn}, before the owner's durable LSN ${upto}: LSN ${endLsn} to ${upto - 1} is missing, and page ${pageId} cannot be brought to the durable end`, { details: { missingFrom: endLsn, missingTo: upto - 1 } });
    endLsn = upto;
  }
  const fault = engine.pages.verify(image, pageId);
  if (fault) throw raError('RA_ERR_REPAIR_NO_SOURCE', `page ${pageId} rebuilt from the snapshot and WAL fails its ${fault} check`, { details: { pageId } });
  return { image, imageLsn, walFromLsn: fromLsn, endLsn, ...(Number.isFinite(upto) ? { durableLsn: upto } : {}), recordsApplied, segments };

  /**
   * Applies the records for the page newer than the image among those of `bytes` from `from`
   * (LSN `lsn`), in order, up to the first starting at `stop` or later; returns where the valid
   * records end.
   */
  function apply(s: number, bytes: Buffer, from: number, lsn: number, stop: number): number {
    mine.length = 0;
    const end = log.forEachPageRecord(bytes, from, lsn, (at, id) => {
      if (id !== pageId || at >= stop || log.recordLsn(bytes, at) <= imageLsn) return;
      mine.push(at);
    });
    if (mine.length > 0) {
      try {
        recordsApplied += log.applyToPage(image, pageId, pageSize, bytes, mine);
      } catch (err) {
        throw raError('RA_ERR_WAL_CORRUPT', `replaying WAL segment ${s} onto page ${pageId} failed: ${describeError(err)}`, { cause: err, details: { pageId } });
      }
    }
    return end;
  }

  /** Segment `s`: the live file if the store still has it, else the archived or a snapshot's copy. */
  async function segmentAt(s: number): Promise<{ bytes: Buffer } | { index: BlockIndex; frame: Buffer; file: string; rawBytes: number } | null> {
    const live = await readLive(segmentPath(s), liveBuf);
    if (live && !log.checkSegmentHeader(live, storeId, s, segmentSize)) {
      segments.live++;
      return { bytes: live };
    }
    let src = (await archive()).get(s);
    if (!src && !live) {
      // A checkpoint may have archived and recycled it since the archive was listed.
      archived = null;
      src = (await archive()).get(s);
    }
    if (!src) {
      if (!live) return null;
      // The owner creating its next segment: the header is not (all) on disk yet. The log ends
      // before it, as long as nothing later exists (found by the chaos harness: a repair that
      // came at that moment failed and was escalated).
      const creating = live.byteLength < log.segmentHeaderSize || live.subarray(0, log.segmentHeaderSize).every((b) => b === 0);
      if (creating && !(await log.listSegments(walDir)).some((x) => x > s)) return null;
      throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(s)}: ${log.checkSegmentHeader(live, storeId, s, segmentSize)}, and the archive has no copy`);
    }
    const index = (src.entry as { blocks?: BlockIndex }).blocks;
    if (index) {
      if (blocksFor(index, pageId).length === 0) {
        segments.skipped++;
        return { index, frame: Buffer.alloc(0), file: src.path, rawBytes: src.rawBytes };
      }
      segments.archived++;
      return { index, frame: await readChecked(src.path, src.entry), file: src.path, rawBytes: src.rawBytes };
    }
    segments.archived++;
    return { bytes: (await loadSegment(engine, src, storeId, segmentSize, Infinity)).bytes };
  }
}

/**
 * Buffers for live segments, reused across segments and rebuilds (a fresh 16 MiB buffer per
 * segment costs more in page faults than the read); one per rebuild in progress.
 */
const spareBuffers: Buffer[] = [];

/**
 * A live segment's bytes as they are now (a view on `buf.b`, grown if needed), or null when it
 * is gone (recycled after archiving).
 */
async function readLive(file: string, buf: { b: Buffer }): Promise<Buffer | null> {
  let h;
  try {
    h = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const { size } = await h.stat();
    if (buf.b.byteLength < size) buf.b = Buffer.allocUnsafe(size);
    let done = 0;
    for (let n; done < size && (n = (await h.read(buf.b, done, size - done, done)).bytesRead) > 0; ) done += n;
    return buf.b.subarray(0, done);
  } finally {
    await h.close();
  }
}

/**
 * Taking a snapshot online, without the store lock, the way pg_basebackup does:
 *
 *   1. read the control file: the checkpoint in force gives the start LSN (its redo LSN) and
 *      where the WAL must be kept from (its redo LSN, or the first LSN of a transaction active
 *      at it); open every WAL segment from there — an open file outlives a recycling unlink;
 *   2. copy pages.db in ~1 MiB runs on the worker pool (a fuzzy copy: checkpoints write while
 *      we read); a run with a page that fails verification is read again, 3 times 50 ms apart,
 *      as the scanner does; an incremental keeps only pages whose LSN is at or after its
 *      base's start LSN;
 *   3. copy the WAL from there to its current end (the end LSN). Pages reach pages.db only after
 *      the WAL that explains them is durable, so every page copied is explained by WAL before
 *      the end LSN: replaying it over the copy gives the store as of the end LSN.
 *
 * Slabs of ~1 MiB are read, verified and compressed on the worker pool (copyTask.ts,
 * compressTask.ts), several in flight.
 */
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { sharedBytes, defineTask, type SharedBytes, type WorkerPool } from '../../core/workerPool.js';
import { readControl } from '../pagestore/control.js';
import { fsyncDir } from '../pagestore/fsyncDir.js';
import type { CheckpointBody } from '../pagestore/checkpoint.js';
import { dataFileOf, walDirOf } from '../pagestore/storeFiles.js';
import { RecordType, decodeRecord, validRecordAt } from '../pagestore/walRecord.js';
import { readRecordFromDisk } from '../pagestore/walScan.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, listSegments, segmentName, segmentPath, segmentStartOf } from '../pagestore/walSegments.js';
import type { CompressInput, CompressResult } from './compressTask.js';
import type { CopyInput, CopyResult } from './copyTask.js';
import { MANIFEST_FILE, MANIFEST_FORMAT, encodeManifest, loadAll, newSnapshotId, snapshotPath, snapshotsDirOf, writeFileDurable, type ChunkEntry, type Manifest, type PageRun, type WalEntry } from './manifest.js';
import { listArchive } from './walArchive.js';

const compressTask = defineTask<CompressInput, CompressResult>(new URL('./compressTask.js', import.meta.url));
const copyTask = defineTask<CopyInput, CopyResult>(new URL('./copyTask.js', import.meta.url));

/** Raw bytes per chunk: lz4-napi matches the C CLI from about 1 MiB (TARGETS.md). */
export const CHUNK_BYTES = 1 << 20;

export interface CreateSnapshotOptions {
  store: string;
  dir: string;
  pool: WorkerPool;
  incremental?: boolean;
  /** Called with bytes of pages.db read so far and the total. */
  onProgress?: (done: number, total: number) => void;
  /** Filled in with where the time went (for benchmarks). */
  timings?: { copyMs?: number; walMs?: number; syncMs?: number };
}

/** Takes a snapshot; returns its manifest once it is durable. */
export async function createSnapshot(o: CreateSnapshotOptions): Promise<Manifest> {
  const startedAt = Date.now();
  const base = o.incremental ? await newestSnapshot(o.dir) : null;
  if (o.incremental && !base) throw raError('RA_ERR_SNAPSHOT_INVALID', `${o.dir} holds no readable snapshot to take an incremental on; take a full one first`);
  const kind = base ? 'incremental' : 'full';
  const id = newSnapshotId(kind);
  const tmp = path.join(snapshotsDirOf(o.dir), `.${id}.tmp`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(path.join(tmp, 'wal'), { recursive: true });
  const { control, ckpt, segments } = await pinWal(o.store);
  try {
    const storeId = Buffer.from(control.storeId).toString('hex');
    if (base && (base.storeId !== storeId || base.pageSize !== control.pageSize || base.pageCount !== control.pageCount)) {
      throw raError('RA_ERR_SNAPSHOT_INVALID', `the newest snapshot in ${o.dir} (${base.id}) is of another store or geometry; an incremental needs a base of the same store`);
    }
    const walFromLsn = Math.min(control.redoLsn, ...ckpt.att.map((a) => a[1]));
    const t0 = performance.now();
    const copy = await copyPagesOnPool(o, tmp, control.pageSize, control.pageCount, base ? base.startLsn : -1);
    const t1 = performance.now();
    const wal = await copyWal(o, tmp, segments, walFromLsn, control.segmentSize, control.storeId);
    const t2 = performance.now();
    if (copy.maxPageLsn > wal.endLsn) {
      throw raError('RA_ERR_SNAPSHOT_INVALID', `a copied page has LSN ${copy.maxPageLsn}, beyond the end of the WAL copied (${wal.endLsn}); the store's WAL is damaged`);
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT, id, kind, baseId: base?.id ?? null, storeId,
      pageSize: control.pageSize, pageCount: control.pageCount, segmentSize: control.segmentSize,
      startLsn: control.redoLsn, checkpointLsn: control.checkpointLsn, nextTxId: Math.max(control.nextTxId, ckpt.nextTxId),
      walFromLsn, endLsn: wal.endLsn, startedAt, finishedAt: wal.readAt,
      pagesCopied: copy.pagesCopied, pagesReread: copy.pagesReread, chunks: copy.chunks, wal: wal.entries,
    };
    await syncFiles([...manifest.chunks, ...manifest.wal].map((e) => path.join(tmp, e.file)));
    if (o.timings) Object.assign(o.timings, { copyMs: t1 - t0, walMs: t2 - t1, syncMs: performance.now() - t2 });
    await writeFileDurable(path.join(tmp, MANIFEST_FILE), encodeManifest(manifest));
    await fsyncDir(path.join(tmp, 'wal'));
    await rename(tmp, snapshotPath(o.dir, id));
    await fsyncDir(snapshotsDirOf(o.dir));
    return manifest;
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  } finally {
    await Promise.all(segments.map((s) => s.handle.close().catch(() => undefined)));
  }
}

/** The newest snapshot whose manifest reads, or null. */
async function newestSnapshot(dir: string): Promise<Manifest | null> {
  const all = await loadAll(dir);
  for (let i = all.length - 1; i >= 0; i--) if (all[i]!.manifest) return all[i]!.manifest!;
  return null;
}

interface PinnedSegment {
  start: number;
  handle: FileHandle;
}

/** Reads the control file and opens the WAL segments it needs; retries if a checkpoint races. */
async function pinWal(store: string) {
  for (let attempt = 0; ; attempt++) {
    const control = await readControl(store);
    const walDir = walDirOf(store);
    const segments: PinnedSegment[] = [];
    try {
      const rec = decodeRecord(await readRecordFromDisk(walDir, control.storeId, control.segmentSize, control.checkpointLsn), 0, control.pageSize);
      if (rec.type !== RecordType.Checkpoint || !rec.json) throw raError('RA_ERR_STORE_INVALID', `control file of ${store} points at LSN ${control.checkpointLsn}, not a checkpoint record`);
      const ckpt = JSON.parse(Buffer.from(rec.json).toString('utf8')) as CheckpointBody;
      const first = segmentStartOf(Math.min(control.redoLsn, ...ckpt.att.map((a) => a[1])), control.segmentSize);
      for (const start of await listSegments(walDir)) {
        if (start >= first) segments.push({ start, handle: await open(segmentPath(walDir, start), 'r') });
      }
      if (segments[0]?.start !== first) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, first)} is missing`);
      return { control, ckpt, segments };
    } catch (err) {
      await Promise.all(segments.map((s) => s.handle.close().catch(() => undefined)));
      // A checkpoint may have switched the control file and recycled segments meanwhile.
      if (attempt >= 4) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

/** Runs compress tasks with at most `2 × threads` slabs in flight, reusing slabs. */
class Compressor {
  private free: SharedBytes[] = [];
  private inflight = new Set<Promise<void>>();
  private readonly max: number;
  constructor(private readonly pool: WorkerPool) {
    this.max = Math.max(2, pool.threads * 2);
  }
  /** A slab to fill; waits for one to come free. */
  async slab(): Promise<SharedBytes> {
    await this.room();
    return this.free.pop() ?? sharedBytes(CHUNK_BYTES);
  }
  /** Waits until another task may be submitted. */
  async room(): Promise<void> {
    while (this.free.length === 0 && this.inflight.size >= this.max) await Promise.race(this.inflight);
  }
  submit(slab: SharedBytes, length: number, file: string, done: (r: CompressResult) => void): void {
    const p = this.pool.run(compressTask, { slab, length, file }).then(done).finally(() => {
      this.inflight.delete(p);
      if (slab.byteLength === CHUNK_BYTES) this.free.push(slab);
    });
    this.inflight.add(p);
  }
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }
}

/**
 * The page copy: each ~1 MiB run of pages is read and verified by a worker (copyTask.ts),
 * `2 × threads` runs in flight. A full snapshot's worker also compresses the run into a chunk;
 * an incremental's picks the pages changed since `sinceLsn`, which this thread packs into
 * ~1 MiB chunks compressed on the pool. A run with a page that fails is tried again 3 times,
 * 50 ms apart; a page failing every time is corruption, and the snapshot fails.
 */
async function copyPagesOnPool(o: CreateSnapshotOptions, tmp: string, pageSize: number, pageCount: number, sinceLsn: number) {
  const perSlab = Math.max(1, Math.floor(CHUNK_BYTES / pageSize));
  const chunks: ChunkEntry[] = [];
  const free: SharedBytes[] = [];
  const inflight = new Set<Promise<void>>();
  let pagesReread = 0;
  let pagesCopied = 0;
  let maxPageLsn = 0;
  let done = 0;
  let failure: unknown = null;
  const newEntry = (pages: PageRun[]) => {
    const entry = { file: `chunk-${String(chunks.length).padStart(5, '0')}.lz4`, pages } as ChunkEntry;
    chunks.push(entry);
    return entry;
  };
  // Incrementals: packing selected pages into chunks, one packer at a time (a promise chain).
  const compressor = new Compressor(o.pool);
  let pack: { slab: SharedBytes; fill: number; runs: PageRun[] } | null = null;
  let packing: Promise<void> = Promise.resolve();
  const flushPack = async () => {
    if (!pack || pack.fill === 0) return;
    const entry = newEntry(pack.runs);
    compressor.submit(pack.slab, pack.fill * pageSize, path.join(tmp, entry.file), (r) => Object.assign(entry, r));
    pack = null;
  };
  const packPages = async (src: SharedBytes, ids: number[]) => {
    for (let k = 0; k < ids.length; k++) {
      pack ??= { slab: await compressor.slab(), fill: 0, runs: [] };
      pack.slab.set(src.subarray(k * pageSize, (k + 1) * pageSize), pack.fill * pageSize);
      const last = pack.runs[pack.runs.length - 1];
      if (last && last[0] + last[1] === ids[k]) last[1]++;
      else pack.runs.push([ids[k]!, 1]);
      if (++pack.fill === perSlab) await flushPack();
    }
  };
  const runChunk = async (slab: SharedBytes, firstPage: number, count: number, entry: ChunkEntry | null) => {
    const input = { slab, dataFile: dataFileOf(o.store), firstPage, count, pageSize, file: entry ? path.join(tmp, entry.file) : '', sinceLsn };
    for (let attempt = 0; ; attempt++) {
      const r = await o.pool.run(copyTask, input);
      if (r.bad.length === 0) {
        if (entry) Object.assign(entry, r.chunk);
        else await (packing = packing.then(() => packPages(slab, r.selected)));
        pagesCopied += entry ? count : r.selected.length;
        maxPageLsn = Math.max(maxPageLsn, r.maxPageLsn);
        done += count;
        o.onProgress?.(done * pageSize, pageCount * pageSize);
        return;
      }
      if (attempt === 3) {
        const id = firstPage + r.bad[0]!;
        throw raError('RA_ERR_PAGE_CORRUPT', `page ${id} (and ${r.bad.length - 1} more in pages ${firstPage}..${firstPage + count - 1}) fails verification on every read; refusing to snapshot corrupt pages (repair them first)`, { details: { pageId: id } });
      }
      pagesReread += r.bad.length;
      await new Promise((res) => setTimeout(res, 50));
    }
  };
  for (let first = 0; first < pageCount && !failure; first += perSlab) {
    while (inflight.size >= o.pool.threads * 2) await Promise.race(inflight);
    const count = Math.min(perSlab, pageCount - first);
    const slab = free.pop() ?? sharedBytes(perSlab * pageSize);
    const p: Promise<void> = runChunk(slab, first, count, sinceLsn < 0 ? newEntry([[first, count]]) : null)
      .catch((err: unknown) => void (failure ??= err))
      .finally(() => {
        inflight.delete(p);
        free.push(slab);
      });
    inflight.add(p);
  }
  await Promise.all(inflight);
  await packing.then(flushPack).catch((err: unknown) => void (failure ??= err));
  await compressor.drain().catch((err: unknown) => void (failure ??= err));
  if (failure) throw failure;
  return { chunks, pagesCopied, pagesReread, maxPageLsn };
}

/** fdatasyncs files, a few at a time (libuv's thread pool runs them in parallel). */
async function syncFiles(files: string[]): Promise<void> {
  for (let i = 0; i < files.length; i += 8) {
    await Promise.all(files.slice(i, i + 8).map(async (f) => {
      const h = await open(f, 'r+');
      try {
        await h.datasync();
      } finally {
        await h.close();
      }
    }));
  }
}

async function readFull(h: FileHandle, buf: Uint8Array, length: number, position: number): Promise<void> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await h.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw raError('RA_ERR_STORE_INVALID', `short read of the data file at byte ${position + done}`);
    done += bytesRead;
  }
}

/** Copies the WAL from `fromLsn` to the end of its valid records; returns that end. */
async function copyWal(o: CreateSnapshotOptions, tmp: string, pinned: PinnedSegment[], fromLsn: number, segmentSize: number, storeId: Uint8Array) {
  // Segments created since pinning (the copy may have taken a while).
  const walDir = walDirOf(o.store);
  for (const start of await listSegments(walDir)) {
    if (start > pinned[pinned.length - 1]!.start) {
      const handle = await open(segmentPath(walDir, start), 'r').catch(() => null);
      if (handle) pinned.push({ start, handle });
    }
  }
  const readAt = Date.now();
  const archived = new Set((await listArchive(o.dir)).map((a) => a.startLsn));
  const compressor = new Compressor(o.pool);
  const entries: WalEntry[] = [];
  let endLsn = fromLsn;
  try {
    for (let i = 0; i < pinned.length; i++) {
      const seg = pinned[i]!;
      if (i > 0 && seg.start !== pinned[i - 1]!.start + segmentSize) {
        const gap = pinned[i - 1]!.start + segmentSize;
        if (!archived.has(gap)) throw raError('RA_ERR_WAL_GAP', `WAL segment at LSN ${gap} was recycled during the snapshot and is not in the archive (${gap}..${seg.start - 1} missing); configure the archiver or retry`);
      }
      const { size } = await seg.handle.stat();
      const slab = sharedBytes(Math.max(size, 8));
      await readFull(seg.handle, slab, size, 0);
      // Cut at the first record that is not (yet) valid: the writer may be mid-write there.
      const problem = checkSegmentHeader(slab, storeId, seg.start, segmentSize);
      if (problem) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${segmentPath(walDir, seg.start)}: ${problem}`);
      let p = i === 0 ? Math.max(fromLsn - seg.start, SEGMENT_HEADER_SIZE) : SEGMENT_HEADER_SIZE;
      for (let len; p < size && (len = validRecordAt(slab, p, size, seg.start + p)) > 0; ) p += len;
      endLsn = seg.start + p;
      const entry = { file: `wal/${segmentName(seg.start)}.lz4`, startLsn: seg.start } as WalEntry;
      entries.push(entry);
      await compressor.room();
      compressor.submit(slab, p, path.join(tmp, entry.file), (r) => Object.assign(entry, r));
      if (p < size) break; // the valid log ends inside this segment
    }
  } finally {
    await compressor.drain();
  }
  return { entries, endLsn, readAt };
}

/**
 * The page copy of a snapshot, on the worker pool.
 *
 * Full snapshots (`copyAllPages`): pages.db is cut into runs of ~1 MiB, each a chunk. A few
 * lanes — async loops, each owning a slab and a frame slab — take the next run: the main thread
 * reads it (on libuv's threads) and verifies and hashes it (copyTask.ts `checkRun`), a worker
 * compresses it (compressTask.ts `frame`), the main thread writes the frame and queues its
 * fdatasync (frameWriter.ts), and the lane takes the next run. With more lanes than workers, a
 * worker always has a run waiting while others are read or written, and it never waits for the
 * disk itself.
 *
 * Incrementals (`copyChangedPages`): the candidate pages (every page, or those the WAL names:
 * walSummary.ts) in slabs of ~1 MiB; a worker reads, verifies and selects those changed since
 * the base (copyTask.ts `select`); a slab at least half full of them is compressed into a chunk
 * by the same task, fewer are packed by the main thread into ~1 MiB chunks compressed on the
 * pool (compressor.ts).
 *
 * A run with a page that fails verification is read again, 3 times 50 ms apart (a checkpoint
 * may be writing it); a page failing every time is corruption, and the snapshot fails.
 *
 * Concurrency rules: main thread only, apart from the tasks. A slab belongs to one lane (or one
 * compression) at a time and is not touched while its task runs. After a failure no lane takes
 * new work; the functions return only once every task and write they started has settled.
 */
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { raError } from '../../core/errors.js';
import { defineTask, sharedBytes, type SharedBytes, type WorkerPool } from '../../core/workerPool.js';
import { Compressor } from './compressor.js';
import type { CompressInput, FrameResult } from './compressTask.js';
import { checkRun, type SelectInput, type SelectResult } from './copyTask.js';
import type { FrameWriter } from './frameWriter.js';
import { frameBound } from './lz4Frame.js';
import { xxh3Hex, type ChunkEntry, type PageRun } from './manifest.js';

const frameTask = defineTask<CompressInput, FrameResult>(new URL('./compressTask.js', import.meta.url), 'frame');
const selectTask = defineTask<SelectInput, SelectResult>(new URL('./copyTask.js', import.meta.url), 'select');

/** Raw bytes per chunk: large enough for LZ4 to reach full speed, small enough to re-read. */
export const CHUNK_BYTES = 1 << 20;
/** Reads of a run whose pages fail verification, after the first, and the pause between. */
const kRereads = 3;
const kRereadPauseMs = 50;

export interface CopyContext {
  pool: WorkerPool;
  writer: FrameWriter;
  dataFile: string;
  /** Where the chunk files go. */
  dir: string;
  pageSize: number;
  pageCount: number;
  /** Where a page's LSN is (the engine's `pages.lsnOffset`), for the page checks. */
  lsnOffset: number;
  onProgress?: (done: number, total: number) => void;
}

export interface PageCopy {
  chunks: ChunkEntry[];
  pagesCopied: number;
  pagesReread: number;
  maxPageLsn: number;
}

const chunkFile = (i: number) => `chunk-${String(i).padStart(5, '0')}.lz4`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `lanes` copies of `lane` until they finish; the first failure stops them all. */
async function runLanes(lanes: number, lane: (stopped: () => boolean) => Promise<void>): Promise<void> {
  let failure: unknown = null;
  const stopped = () => failure !== null;
  await Promise.all(Array.from({ length: lanes }, () => lane(stopped).catch((err: unknown) => void (failure ??= err))));
  if (failure) throw failure;
}

/** Runs `attempt` until it reports no bad page, 1 + kRereads times at most, 50 ms apart. */
async function withRereads<R extends { bad: number[] }>(attempt: () => Promise<R>, badPageId: (r: R) => number, where: string, reread: (pages: number) => void): Promise<R> {
  for (let i = 0; ; i++) {
    const r = await attempt();
    if (r.bad.length === 0) return r;
    if (i === kRereads) {
      const id = badPageId(r);
      throw raError('RA_ERR_PAGE_CORRUPT', `page ${id} (and ${r.bad.length - 1} more in ${where}) fails verification on every read; refusing to snapshot corrupt pages (repair them first)`, { details: { pageId: id } });
    }
    reread(r.bad.length);
    await sleep(kRereadPauseMs);
  }
}

export async function copyAllPages(c: CopyContext): Promise<PageCopy> {
  const perSlab = Math.max(1, Math.floor(CHUNK_BYTES / c.pageSize));
  const chunks: ChunkEntry[] = [];
  for (let first = 0; first < c.pageCount; first += perSlab) {
    chunks.push({ file: chunkFile(chunks.length), pages: [[first, Math.min(perSlab, c.pageCount - first)]] } as ChunkEntry);
  }
  const copy: PageCopy = { chunks, pagesCopied: 0, pagesReread: 0, maxPageLsn: 0 };
  const data = await open(c.dataFile, 'r');
  let next = 0;
  try {
    // Two runs per worker in its queue or its hands, and two being read or written.
    await runLanes(2 * c.pool.threads + 2, async (stopped) => {
      const slab = sharedBytes(perSlab * c.pageSize);
      const frame = sharedBytes(frameBound(perSlab * c.pageSize));
      while (!stopped() && next < chunks.length) {
        const entry = chunks[next++]!;
        const [firstPage, count] = entry.pages[0]!;
        const raw = slab.subarray(0, count * c.pageSize);
        const checked = await withRereads(
          async () => {
            await readFull(data, c.dataFile, slab, raw.byteLength, firstPage * c.pageSize);
            return checkRun(raw, c.pageSize, firstPage, count, c.lsnOffset);
          },
          (x) => firstPage + x.bad[0]!,
          `pages ${firstPage}..${firstPage + count - 1}`,
          (n) => (copy.pagesReread += n),
        );
        const rawXxh3 = xxh3Hex(raw);
        const f = await c.pool.run(frameTask, { slab, length: raw.byteLength, frame });
        Object.assign(entry, { bytes: f.bytes, xxh3: f.xxh3, rawBytes: raw.byteLength, rawXxh3 });
        await c.writer.write(path.join(c.dir, entry.file), frame.subarray(0, entry.bytes));
        copy.pagesCopied += count;
        copy.maxPageLsn = Math.max(copy.maxPageLsn, checked.maxPageLsn);
        c.onProgress?.((firstPage + count) * c.pageSize, c.pageCount * c.pageSize);
      }
    });
  } finally {
    await data.close();
  }
  return copy;
}

/**
 * Copies the candidate pages (runs, ascending) whose LSN is at or after `sinceLsn` into chunks
 * of ~1 MiB. Page 0 is never copied.
 */
export async function copyChangedPages(c: CopyContext, candidates: readonly PageRun[], sinceLsn: number): Promise<PageCopy> {
  const perSlab = Math.max(1, Math.floor(CHUNK_BYTES / c.pageSize));
  const jobs = slabJobs(candidates, perSlab);
  const total = candidates.reduce((n, r) => n + r[1], 0);
  const copy: PageCopy = { chunks: [], pagesCopied: 0, pagesReread: 0, maxPageLsn: 0 };
  const compressor = new Compressor(c.pool, c.writer, 2 * c.pool.threads);
  // Packing, one slab at a time (a promise chain): selected pages go into the current chunk.
  type Pack = { slab: SharedBytes; fill: number; runs: PageRun[] };
  let pack: Pack | null = null;
  let packing: Promise<void> = Promise.resolve();
  const flushPack = () => {
    if (!pack || pack.fill === 0) return;
    const entry = { file: chunkFile(copy.chunks.length), pages: pack.runs } as ChunkEntry;
    copy.chunks.push(entry);
    compressor.submit(pack.slab, pack.fill * c.pageSize, path.join(c.dir, entry.file), entry);
    pack = null;
  };
  const packPages = async (src: SharedBytes, ids: readonly number[]) => {
    for (let k = 0; k < ids.length; k++) {
      pack ??= { slab: await compressor.acquire(perSlab * c.pageSize), fill: 0, runs: [] };
      pack.slab.set(src.subarray(k * c.pageSize, (k + 1) * c.pageSize), pack.fill * c.pageSize);
      const last = pack.runs[pack.runs.length - 1];
      if (last && last[0] + last[1] === ids[k]) last[1]++;
      else pack.runs.push([ids[k]!, 1]);
      if (++pack.fill === perSlab) flushPack();
    }
  };
  let next = 0;
  let done = 0;
  try {
    await runLanes(2 * c.pool.threads, async (stopped) => {
      const slab = sharedBytes(perSlab * c.pageSize);
      const frame = sharedBytes(frameBound(perSlab * c.pageSize));
      while (!stopped() && next < jobs.length) {
        const runs = jobs[next++]!;
        const input: SelectInput = { slab, frame, dataFile: c.dataFile, runs, pageSize: c.pageSize, lsnOffset: c.lsnOffset, sinceLsn };
        const r = await withRereads(() => c.pool.run(selectTask, input), (x) => x.bad[0]!, `pages ${runs[0]}..${runs[runs.length - 2]! + runs[runs.length - 1]! - 1}`, (n) => (copy.pagesReread += n));
        if (r.chunk) {
          // The task compressed a slab's worth of pages into a chunk of their own.
          const entry = { file: chunkFile(copy.chunks.length), pages: runsOf(r.selected), ...r.chunk } as ChunkEntry;
          copy.chunks.push(entry);
          await c.writer.write(path.join(c.dir, entry.file), frame.subarray(0, entry.bytes));
        } else {
          await (packing = packing.then(() => packPages(slab, r.selected)));
        }
        copy.pagesCopied += r.selected.length;
        copy.maxPageLsn = Math.max(copy.maxPageLsn, r.maxPageLsn);
        for (let k = 1; k < runs.length; k += 2) done += runs[k]!;
        c.onProgress?.(done * c.pageSize, total * c.pageSize);
      }
    });
    await packing;
    flushPack();
  } finally {
    const left = pack as Pack | null; // assigned in the closures above
    if (left) compressor.release(left.slab);
    await compressor.settle();
  }
  await compressor.drain();
  return copy;
}

/** Page ids, ascending, as runs. */
function runsOf(ids: readonly number[]): PageRun[] {
  const runs: PageRun[] = [];
  for (const id of ids) {
    const last = runs[runs.length - 1];
    if (last && last[0] + last[1] === id) last[1]++;
    else runs.push([id, 1]);
  }
  return runs;
}

/** Candidate runs cut and grouped into slabs of `perSlab` pages: flat [first, count, …] each. */
function slabJobs(runs: readonly PageRun[], perSlab: number): number[][] {
  const jobs: number[][] = [];
  let cur: number[] = [];
  let fill = 0;
  for (const run of runs) {
    for (let [first, count] = run; count > 0; ) {
      const take = Math.min(count, perSlab - fill);
      cur.push(first, take);
      first += take;
      count -= take;
      if ((fill += take) === perSlab) {
        jobs.push(cur);
        cur = [];
        fill = 0;
      }
    }
  }
  if (fill > 0) jobs.push(cur);
  return jobs;
}

/** Reads `length` bytes of `file` (open as `h`) at `position` into the start of `buf`. */
export async function readFull(h: FileHandle, file: string, buf: Uint8Array, length: number, position: number): Promise<void> {
  for (let done = 0; done < length; ) {
    const { bytesRead } = await h.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw raError('RA_ERR_STORE_INVALID', `short read of ${file} at byte ${position + done}: the file is shorter than expected (${position + length} bytes)`);
    done += bytesRead;
  }
}

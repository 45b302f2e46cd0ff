/**
 * Streaming redo: analysis and redo in one forward read of the log, overlapped across threads.
 *
 * The flow. The reading thread (the caller's) reads the log from the analysis start LSN one
 * segment at a time into a *window*: a SharedArrayBuffer of a few segment-sized slots, reused
 * round-robin (segment k goes to slot k mod S). For each segment it validates the records
 * (walScan.ts's `scanSegments`, the same rules as the two-pass scan), runs analysis over them
 * (transactions and their last LSNs; the loser set at the end), checks the redo records against
 * the store (`redoCheckRecords`: a record outside the store fails recovery before any page is
 * written), and hands each redo record's position and page id to the worker that owns the page
 * (blocks of 64 adjacent pages dealt round-robin, as the two-pass parallel redo does). Workers
 * (redoStreamTask.ts) apply records to pages they hold in memory (pageRedo.ts `PageRedo`)
 * while the reader goes on; they write the changed pages back once, at the end.
 *
 * The rings. Each worker has one SPSC ring (core/ring) of 8-byte entries: (position, page id)
 * of a redo record, or a segment-end marker (page id 0xffffffff, position = the segment's
 * sequence number). The reader pushes a segment's entries in one batch and one publish per
 * worker; the worker drains whole batches. Nothing is copied but the 8 bytes: the record bytes
 * stay in the window, which the worker reads in place.
 *
 * Backpressure. Two kinds. The ring: when a worker falls behind and its ring fills, the reader
 * waits (Atomics.waitAsync, never blocking the event loop) for space. The window: a slot may be
 * refilled only once every worker has applied the records that point into it. A worker applies
 * its queued records at segment markers (below) and then publishes "applied through segment k"
 * in a shared control word; the reader waits on those words before it reuses a slot. Memory is
 * therefore bounded by the window, the rings and the workers' page caches, whatever the size of
 * the log; the two-pass redo holds the whole log in memory.
 *
 * A worker applies at every segment marker (applyEvery = 1): a page is verified once and sealed
 * once whatever the number of applies (PageRedo's held pages), so an apply costs little more
 * than its records, and applying as each segment arrives keeps the pipeline smooth — applying
 * every S/2 segments left the reader waiting on a full ring while a worker ran a long apply,
 * and the worker idle while the reader read the next S/2. The window is small for the same
 * reason and because its memory is fresh: on a virtual machine first-touching a page costs
 * about as much as reading it (measured here: 128 MiB touched 540 ms of CPU in 4 KiB pages),
 * so 4 slots instead of 8 save a fault-in of 64 MiB.
 *
 * Read-ahead: while the reader analyses segment k, segments k+1 … k+S-1 are already being read
 * (by libuv's threads) into their slots as those slots are free, so reads overlap analysis too.
 *
 * Ending. A control word carries the verdict. When the log has been read to its end (a clean
 * end or a torn tail) the reader sets it to COMMIT and closes every ring; each worker drains its
 * ring, applies what is left, writes its changed pages back and returns its counts. When the
 * reader fails — damage followed by valid records (RA_ERR_WAL_CORRUPT), a record outside the
 * store, an I/O error — it sets ABORT and closes the rings; the workers drop their pages
 * without writing (within their page budget, see PageRedo) and the reader's error is thrown
 * once they have stopped. When a worker fails (its task rejects), the reader notices at its next
 * segment or wait, aborts the others the same way and throws the worker's error. Either way no
 * thread is left waiting on a ring: the reader's waits time out every 100 ms to check for a
 * failed worker, and a worker's waits end when the ring is closed.
 *
 * Without a worker pool (or for a small log) the same flow runs on the reading thread: one
 * `PageRedo` fed directly, no rings. The window then only bounds memory.
 *
 * After redo, the window serves undo as a cache of segments (`records`): undo reads losers'
 * records newest first, mostly from the last segments, which are still there.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { adviseHugePages } from 'recovery-agent/native';
import { readU32 } from '../../core/bytes.js';
import { raError } from '../../core/errors.js';
import type { RingProducer } from '../../core/ring/index.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { PageRedo } from './pageRedo.js';
import { redoStreamTask } from './redoStreamTaskRef.js';
import type { RedoResult } from './redoApply.js';
import { WalAnalysis, type ChunkRedo } from './walAnalysis.js';
import { RECORD_MIN_SIZE, RecordType, commitTimeAt, kRecLength, kRecType, validRecordAt } from './walRecord.js';
import { readSegmentInto, scanSegments, segmentsFrom, type SegmentSource, type WalEnd, type WalRegion } from './walScan.js';
import { foldRecords } from './walRolling.js';
import { kAbort, kCommit, kEntryBytes, kSegmentEnd, kVerdict } from './redoStreamWire.js';
import { SEGMENT_HEADER_SIZE, segmentPath, segmentPosition, segmentStartOf, type SegmentPosition } from './walSegments.js';

/** The worker side's input (redoStreamTask.ts). */
export type RedoStreamTaskInput = {
  readonly ring: Uint8Array<SharedArrayBuffer>;
  readonly control: Int32Array<SharedArrayBuffer>;
  readonly worker: number;
  readonly wal: Uint8Array<SharedArrayBuffer>;
  readonly dataFile: string;
  readonly pageSize: number;
  readonly pageCount: number;
  readonly budgetBytes: number;
  /** Apply queued records every this many segment markers. */
  readonly applyEvery: number;
};


export { kAbort, kCommit, kEntryBytes, kRunning, kSegmentEnd, kVerdict } from './redoStreamWire.js';

/**
 * Entries per worker ring (2^17 × 8 bytes = 1 MiB): a few segments' worth of records, so the
 * reader seldom waits for a worker that is applying (a 16 MiB segment of TPC-B holds ~45 000
 * redo records, ~22 000 per worker of two).
 */
const kRingEntries = 1 << 17;
/** Bytes of log the window aims to hold; at least 4 segments, at most 2^32 bytes (u32 positions). */
const kWindowBytes = 64 << 20;
/** Pages a redo thread keeps in memory before it writes back early (see PageRedo). */
const kPageBudgetBytes = 512 << 20;
/** Pages per block of the partition between workers (as in the two-pass redo). */
const kBlockPages = 64;
/** Below this much log, threads cost more than they save: redo runs on the reading thread. */
const kMinParallelLogBytes = 512 << 10;
/**
 * Bytes undo reads for a record outside the window: records are a few hundred bytes, so most fit;
 * a longer one is read again whole. (32 KiB per read copied ~1 GiB from the page cache for the
 * bench's 32 000 loser records.)
 */
const kRecordReadBytes = 4 << 10;
/** How long a reader's wait lasts before it checks for a failed worker. */
const kWaitSliceMs = 100;

export interface StreamRedoInput {
  walDir: string;
  storeId: Uint8Array;
  segmentSize: number;
  /** Where analysis starts: min(redoLsn, first LSN of every transaction active at the checkpoint). */
  fromLsn: number;
  /** Where redo starts. */
  redoLsn: number;
  dataFile: string;
  pageSize: number;
  pageCount: number;
  /** Workers for redo; without, redo runs on this thread. */
  pool?: WorkerPool;
  /** How many workers (default: the pool's threads). */
  workers?: number;
  /** Slots of the window (default: 128 MiB of segments, at least 4). Small ones exercise slot reuse. */
  windowSegments?: number;
  /** Entries per worker ring, a power of two (default 2^15). Small ones exercise a full ring. */
  ringEntries?: number;
  /** Bytes of pages kept in memory, shared by the workers (default 512 MiB). Small ones exercise early write-back. */
  pageBudgetBytes?: number;
}

export interface StreamRedoOutput {
  end: WalEnd;
  losers: Array<{ txId: number; lastLsn: number }>;
  maxTxId: number;
  redo: RedoResult;
  redoRecords: number;
  redoWorkers: number;
  /** Pages with a record in the redo range. */
  covered: PageSet;
  /** How many pages have a record in the redo range (the dirty page table's size). */
  dirtyPages: number;
  /** The log's records by LSN, for undo (the window as a segment cache). */
  records: SegmentWindow;
  /** When the reader reached the end of the log (performance.now()). */
  readDoneAt: number;
}

/** A set of page ids: a bitmap, lazily touched. */
export class PageSet {
  /** Bit p & 7 of byte p >> 3 is page p (walAnalyze fills it in natively). */
  readonly bits: Uint8Array;
  constructor(pageCount: number) {
    this.bits = new Uint8Array(Math.ceil(pageCount / 8));
  }
  has(pageId: number): boolean {
    return (this.bits[pageId >>> 3]! & (1 << (pageId & 7))) !== 0;
  }
  add(pageId: number): void {
    this.bits[pageId >>> 3]! |= 1 << (pageId & 7);
  }
}

export async function streamRedo(input: StreamRedoInput): Promise<StreamRedoOutput> {
  const { segmentSize, pageSize, pageCount } = input;
  const segments = await segmentsFrom(input.walDir, segmentSize, input.fromLsn);
  const slots = input.windowSegments ?? Math.max(4, Math.min(Math.floor(kWindowBytes / segmentSize), Math.floor(0xffffffff / segmentSize)));
  if (!Number.isInteger(slots) || slots < 2 || slots * segmentSize > 0xffffffff) {
    throw raError('RA_ERR_CONFIG', `the redo window must hold 2 or more segments and at most 4 GiB (got ${slots} of ${segmentSize} bytes)`);
  }
  const window = new SegmentWindow(input.walDir, input.storeId, segmentSize, Math.min(slots, segments.length), segments);
  // Segment k's records may point into slot k mod S until applied: applied at each segment's
  // end, so the reader has S - 1 slots to fill ahead of the slowest worker (see the file header).
  const applyEvery = 1;
  const wanted = input.pool ? (input.workers ?? input.pool.threads) : 0;
  let logBytes = 0;
  for (let i = 0; wanted > 1 && i < segments.length && logBytes < kMinParallelLogBytes; i++) logBytes += await window.fileSize(i);
  const workers = wanted > 1 && logBytes >= kMinParallelLogBytes ? wanted : 0;
  // The rings are loaded only when there are workers to feed: a small log (and every clean
  // restart) redoes on this thread and never needs them.
  const sink = workers > 0 ? new RingSink(input, window, workers, applyEvery, await import('../../core/ring/index.js')) : new InlineSink(input, window, applyEvery);

  const covered = new PageSet(pageCount);
  // The per-record analysis runs natively, fused with validation: one call per segment (walAnalysis.ts).
  const analysis = new WalAnalysis(input.redoLsn, pageSize, pageCount, workers, kBlockPages, covered.bits);
  let redoRecords = 0;

  const source: SegmentSource = {
    load: async (index) => {
      await sink.failed();
      return window.load(index, sink);
    },
    probe: (index) => window.probe(index),
  };
  let end: WalEnd;
  try {
    // One native pass per segment validates and analyses its records (analysis.scan); the
    // segment's analysis is taken once the scan has decided the segment is sound up to them.
    const onSegment = async (region: WalRegion): Promise<void> => {
      const seq = window.seqOf(region);
      // Every record must fit its page and the store before anything is written (take throws).
      const redo = analysis.take();
      redoRecords += redo.total;
      await sink.segment(seq, redo);
    };
    end = await scanSegments(input.walDir, input.storeId, segmentSize, input.fromLsn, segments, source, onSegment, analysis.scan);
  } catch (err) {
    await sink.end(false).catch(() => undefined);
    throw err;
  }
  const readDoneAt = performance.now();
  const redo = await sink.end(true);
  await window.redoDone();
  // Transactions that ended were forgotten as they ended; the rest never ended.
  return { end, losers: analysis.losers(), maxTxId: analysis.maxTxId, redo, redoRecords, redoWorkers: Math.max(1, workers), covered, dirtyPages: analysis.dirtyPages.size, records: window, readDoneAt };
}

/** Where the reader's redo records go: this thread's PageRedo, or the workers' rings. */
interface RedoSink {
  /** Segments `seq` and before have been applied by every consumer: their slots may be reused. */
  appliedThrough(): number;
  /** Waits until `appliedThrough() >= seq` (throws if a consumer failed). */
  waitApplied(seq: number): Promise<void>;
  /** Throws the error of a failed consumer, if any. */
  failed(): Promise<void>;
  /** The redo records of segment `seq`, dealt to the workers by the analysis (and the segment's end). */
  segment(seq: number, redo: ChunkRedo): Promise<void>;
  /** Ends redo: with `commit`, every change is applied and written; without, nothing more is written. */
  end(commit: boolean): Promise<RedoResult>;
}

class InlineSink implements RedoSink {
  private readonly redo: PageRedo;
  private applied = -1;
  private pending = 0;
  private ended = false;

  constructor(input: StreamRedoInput, window: SegmentWindow, private readonly applyEvery: number) {
    this.redo = new PageRedo(window.bytes, input.dataFile, input.pageSize, input.pageCount, input.pageBudgetBytes ?? kPageBudgetBytes);
  }

  appliedThrough(): number {
    return this.applied;
  }

  async waitApplied(seq: number): Promise<void> {
    if (this.applied < seq) throw new Error(`internal: inline redo has applied through segment ${this.applied}, not ${seq}`);
  }

  async failed(): Promise<void> {}

  async segment(seq: number, redo: ChunkRedo): Promise<void> {
    this.redo.addMany(redo.entries, redo.starts[0]!, redo.counts[0]!);
    if (++this.pending >= this.applyEvery) {
      this.redo.apply();
      this.applied = seq;
      this.pending = 0;
    }
  }

  async end(commit: boolean): Promise<RedoResult> {
    if (this.ended) return this.redo.result;
    this.ended = true;
    return this.redo.finish(commit);
  }
}

type WaitAsync = (a: Int32Array, index: number, value: number, timeoutMs: number) => { async: false; value: string } | { async: true; value: Promise<string> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

class RingSink implements RedoSink {
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * 32));
  private readonly producers: RingProducer[] = [];
  private readonly tasks: Array<Promise<RedoResult>>;
  private failure: { err: unknown } | undefined;
  private ended: Promise<RedoResult> | undefined;

  constructor(input: StreamRedoInput, window: SegmentWindow, private readonly workers: number, applyEvery: number, rings: typeof import('../../core/ring/index.js')) {
    const { RingProducer, SpscRing } = rings;
    if (workers + 1 > this.control.length) throw raError('RA_ERR_CONFIG', `streaming redo supports at most ${this.control.length - 1} workers (got ${workers})`);
    this.tasks = [];
    for (let w = 0; w < workers; w++) {
      const sab = SpscRing.create(input.ringEntries ?? kRingEntries, kEntryBytes);
      this.producers.push(new RingProducer(sab));
      const task = input.pool!.run(redoStreamTask, {
        ring: new Uint8Array(sab),
        control: this.control,
        worker: w,
        wal: window.bytes,
        dataFile: input.dataFile,
        pageSize: input.pageSize,
        pageCount: input.pageCount,
        budgetBytes: Math.floor((input.pageBudgetBytes ?? kPageBudgetBytes) / workers),
        applyEvery,
      });
      // Noticed at the reader's next segment or wait; the rejection is rethrown from end().
      task.catch((err: unknown) => {
        this.failure ??= { err };
      });
      this.tasks.push(task);
    }
  }

  appliedThrough(): number {
    let min = Infinity;
    for (let w = 0; w < this.workers; w++) min = Math.min(min, Atomics.load(this.control, 1 + w) - 1);
    return min;
  }

  async waitApplied(seq: number): Promise<void> {
    for (let w = 0; w < this.workers; w++) {
      for (;;) {
        await this.failed();
        const v = Atomics.load(this.control, 1 + w);
        if (v - 1 >= seq) break;
        const r = waitAsync(this.control, 1 + w, v, kWaitSliceMs);
        if (r.async) await r.value;
      }
    }
  }

  async failed(): Promise<void> {
    if (this.failure) throw this.failure.err;
  }

  async segment(seq: number, redo: ChunkRedo): Promise<void> {
    // The analysis dealt the records to their workers; one batch (and one publish) per worker,
    // its segment-end marker in the free pair after the worker's group.
    const { entries } = redo;
    for (let w = 0; w < this.workers; w++) {
      const at = redo.starts[w]!;
      const n = redo.counts[w]!;
      entries[2 * (at + n)] = seq;
      entries[2 * (at + n) + 1] = kSegmentEnd;
      await this.push(w, entries.subarray(2 * at), n + 1);
    }
  }

  /**
   * Pushes `count` entries (pairs of u32 in `from`) into worker w's ring, waiting for space as
   * needed. Entries are copied in at most two block copies per reservation (the reserved slots
   * run to the ring's end, then wrap): a loop over entries in JavaScript cost the reader about a
   * tenth of its CPU time.
   */
  private async push(w: number, from: Uint32Array, count: number): Promise<void> {
    const ring = this.producers[w]!;
    const words = ring.int32;
    const src = new Int32Array(from.buffer, from.byteOffset, 2 * count);
    const ringEntries = words.length / 2;
    for (let done = 0; done < count; ) {
      const n = ring.reserve(count - done);
      if (n === 0) {
        await this.failed();
        await ring.waitForSpace(kWaitSliceMs);
        continue;
      }
      const slot = ring.offsetOf(0) / kEntryBytes;
      const first = Math.min(n, ringEntries - slot);
      words.set(src.subarray(2 * done, 2 * (done + first)), 2 * slot);
      if (first < n) words.set(src.subarray(2 * (done + first), 2 * (done + n)), 0);
      ring.commit(n);
      done += n;
    }
  }

  end(commit: boolean): Promise<RedoResult> {
    this.ended ??= this.finish(commit);
    return this.ended;
  }

  private async finish(commit: boolean): Promise<RedoResult> {
    // The verdict before the close: a worker that sees the ring closed reads it next.
    Atomics.store(this.control, kVerdict, commit && !this.failure ? kCommit : kAbort);
    for (const p of this.producers) p.close();
    const settled = await Promise.allSettled(this.tasks);
    const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (rejected) throw rejected.reason;
    return settled
      .map((s) => (s as PromiseFulfilledResult<RedoResult>).value)
      .reduce((a, r) => ({
        applied: a.applied + r.applied,
        skipped: a.skipped + r.skipped,
        pagesWritten: a.pagesWritten + r.pagesWritten,
        corrupt: [...a.corrupt, ...r.corrupt],
        outOfRange: [...a.outOfRange, ...r.outOfRange],
      }));
  }
}

/**
 * The window: `slots` segment-sized slots of one SharedArrayBuffer. During redo, segment k of
 * the scan goes to slot k mod slots (read ahead by one when its slot is free); afterwards the
 * slots are a cache of segments for undo's reads by LSN.
 */
export class SegmentWindow {
  readonly bytes: Uint8Array<SharedArrayBuffer>;
  /** Per slot: the index (in `segments`) of the segment it holds, its length; -1 when empty. */
  private readonly held: Array<{ index: number; length: number; used: number }>;
  private readonly reads = new Map<number, Promise<WalRegion>>();
  private scratch: Uint8Array<SharedArrayBuffer> | undefined;
  private clock = 0;
  private streaming = true;
  /** The segment file undo reads single records from, and the buffer they land in. */
  private file: { index: number; fd: number } | undefined;
  private recordBuf: Buffer | undefined;

  constructor(
    private readonly walDir: string,
    private readonly storeId: Uint8Array,
    private readonly segmentSize: number,
    readonly slots: number,
    private readonly segments: readonly number[],
  ) {
    this.bytes = new Uint8Array(new SharedArrayBuffer(Math.max(8, slots * segmentSize)));
    // Fresh memory that the segment reads fill: a fault per 2 MiB instead of per 4 KiB.
    adviseHugePages(this.bytes);
    this.held = Array.from({ length: slots }, () => ({ index: -1, length: 0, used: 0 }));
  }

  async fileSize(index: number): Promise<number> {
    return (await stat(this.pathOf(index))).size;
  }

  private pathOf(index: number): string {
    return segmentPath(this.walDir, this.segments[index]!);
  }

  /** The sequence number (index in the scan) of a region this window loaded. */
  seqOf(region: WalRegion): number {
    return this.held[region.at / this.segmentSize]!.index;
  }

  /**
   * Segment `index` of the scan in its slot: waits until the slot's previous segment has been
   * applied and reads it (or takes the read-ahead); meanwhile starts reading the segments after
   * it whose slots are free.
   */
  async load(index: number, sink: RedoSink): Promise<WalRegion> {
    let read = this.reads.get(index);
    if (!read) {
      await sink.waitApplied(index - this.slots);
      read = this.readSlot(index, index % this.slots);
    }
    this.reads.delete(index);
    this.readAhead(index, sink);
    return read;
  }

  /**
   * Starts reading segments index+1 … index+slots-1 into their slots, in order, as long as each
   * slot's previous segment has been applied: reads of several segments run on libuv's threads
   * while this one is scanned (one segment ahead, the reader waited on reads for a third of its
   * time).
   */
  private readAhead(index: number, sink: RedoSink): void {
    const applied = sink.appliedThrough();
    const last = Math.min(this.segments.length, index + this.slots);
    for (let next = index + 1; next < last; next++) {
      if (this.reads.has(next)) continue;
      if (applied < next - this.slots) break;
      const ahead = this.readSlot(next, next % this.slots);
      ahead.catch(() => undefined); // reported when the scan loads it
      this.reads.set(next, ahead);
    }
  }

  private async readSlot(index: number, slot: number): Promise<WalRegion> {
    const at = slot * this.segmentSize;
    const h = this.held[slot]!;
    h.index = -1;
    const length = await this.readFile(index, this.bytes, at);
    Object.assign(h, { index, length, used: ++this.clock });
    return { start: this.segments[index]!, bytes: this.bytes, at, length };
  }

  /**
   * Reads segment `index`. Bytes of the newest segment past the segment size hold no record (the
   * next LSN would be the next segment's) and are not read: they are a torn tail, as the
   * two-pass scan finds, and the writer cuts them off when it reopens the log. Any other
   * segment longer than the segment size is damage.
   */
  private async readFile(index: number, into: Uint8Array, at: number): Promise<number> {
    const size = await this.fileSize(index);
    const newest = index === this.segments.length - 1;
    if (size > this.segmentSize && !newest) {
      throw raError('RA_ERR_WAL_CORRUPT', `WAL segment ${this.pathOf(index)} is ${size} bytes, longer than the store's ${this.segmentSize}-byte segments`, {
        details: { lsn: this.segments[index]! },
      });
    }
    return readSegmentInto(this.walDir, this.segments[index]!, into, at, Math.min(size, this.segmentSize));
  }

  /** Segment `index` in a scratch buffer: for the scan's look past damage. */
  async probe(index: number): Promise<WalRegion> {
    this.scratch ??= new Uint8Array(new SharedArrayBuffer(this.segmentSize));
    const length = await this.readFile(index, this.scratch, 0);
    return { start: this.segments[index]!, bytes: this.scratch, at: 0, length };
  }

  /** Redo is over: once a read-ahead past the end of the log has landed, the slots are an LRU cache for `record`. */
  async redoDone(): Promise<void> {
    await Promise.allSettled(this.reads.values());
    this.reads.clear();
    this.streaming = false;
  }

  /**
   * The record at `lsn` (validated): bytes and its position in them, valid until the next call.
   * From the window when its segment is still there; else only the record is read from its file
   * (undo walks losers' chains backwards through the whole log: reading a 16 MiB segment for the
   * few records it needs there cost most of undo's time).
   */
  async record(lsn: number): Promise<{ bytes: Uint8Array; at: number }> {
    if (this.streaming) throw new Error('internal: the segment window is still feeding redo');
    const start = segmentStartOf(lsn, this.segmentSize);
    const index = this.segments.indexOf(start);
    if (index < 0) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment holding LSN ${lsn} is not in the log being recovered`, { details: { lsn } });
    const slot = this.held.findIndex((h) => h.index === index);
    if (slot < 0) return this.readRecord(index, lsn);
    const h = this.held[slot]!;
    h.used = ++this.clock;
    const at = slot * this.segmentSize + (lsn - start);
    if (lsn - start >= h.length || validRecordAt(this.bytes, at, slot * this.segmentSize + h.length, lsn) === 0) {
      throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${lsn} is damaged`, { details: { lsn } });
    }
    return { bytes: this.bytes, at };
  }

  /** The record at `lsn` of segment `index`, read on its own (one or two preads). */
  private readRecord(index: number, lsn: number): { bytes: Uint8Array; at: number } {
    if (this.file?.index !== index) {
      this.close();
      this.file = { index, fd: openSync(this.pathOf(index), 'r') };
    }
    const offset = lsn - this.segments[index]!;
    const room = this.segmentSize - offset;
    this.recordBuf ??= Buffer.alloc(kRecordReadBytes);
    let n = readSync(this.file.fd, this.recordBuf, 0, Math.min(room, kRecordReadBytes), offset);
    const total = n >= RECORD_MIN_SIZE ? readU32(this.recordBuf, kRecLength) : 0;
    if (total > n && total <= room) {
      if (total > this.recordBuf.length) this.recordBuf = Buffer.alloc(total);
      n = readSync(this.file.fd, this.recordBuf, 0, total, offset);
    }
    if (validRecordAt(this.recordBuf, 0, n, lsn) === 0) throw raError('RA_ERR_WAL_CORRUPT', `WAL record at LSN ${lsn} is damaged`, { details: { lsn } });
    return { bytes: this.recordBuf, at: 0 };
  }

  /**
   * The epoch and rolling checksum R at `endLsn`, the end of the log the scan found (walRolling.ts),
   * from the segment still in its slot: its records there were validated by the scan, so only
   * their checksums are folded. Saves the WAL writer's reopen (WalWriter.open) a read and a
   * validation of the whole last segment. Undefined when the segment is not held, or holds no
   * record below `endLsn` (then R is the previous segment's: left to `rollingAt`).
   */
  positionAt(endLsn: number): SegmentPosition | undefined {
    if (this.streaming) throw new Error('internal: the segment window is still feeding redo');
    const start = segmentStartOf(endLsn, this.segmentSize);
    if (endLsn - start <= SEGMENT_HEADER_SIZE) return undefined;
    const index = this.segments.indexOf(start);
    const slot = index < 0 ? -1 : this.held.findIndex((h) => h.index === index);
    if (slot < 0 || endLsn - start > this.held[slot]!.length) return undefined;
    const at = slot * this.segmentSize;
    const header = segmentPosition(this.bytes.subarray(at, at + SEGMENT_HEADER_SIZE));
    return { epoch: header.epoch, rolling: foldRecords(header.rolling, this.bytes, at + SEGMENT_HEADER_SIZE, at + (endLsn - start)) };
  }

  /**
   * The latest commit time in the log up to `endLsn` (what PageStore.open's clock must not go
   * below), from the segments still in their slots, newest first as the open's own look does:
   * the largest of the newest segment holding a commit. Only records the scan validated are
   * walked (by their lengths). Undefined when that needs a segment no longer held or bytes
   * before the scan's start: the caller then reads the files. Saves the open a read and a
   * validation of the whole last segment after recovery.
   */
  lastCommitTime(fromLsn: number, endLsn: number): number | undefined {
    if (this.streaming) throw new Error('internal: the segment window is still feeding redo');
    for (let index = this.segments.length - 1; index >= 0; index--) {
      const start = this.segments[index]!;
      if (start >= endLsn) continue; // past the log's end: nothing valid there
      const slot = this.held.findIndex((h) => h.index === index);
      if (slot < 0) return undefined;
      const base = slot * this.segmentSize;
      const stop = base + Math.min(this.held[slot]!.length, endLsn - start);
      const first = Math.max(fromLsn - start, SEGMENT_HEADER_SIZE);
      let latest = 0;
      // The scan validated the records below the log's end; a segment made at full size has zeros
      // after its last one (a length of 0 ends the walk there).
      for (let p = base + first, len; p < stop && (len = readU32(this.bytes, p + kRecLength)) >= RECORD_MIN_SIZE; p += len) {
        if (this.bytes[p + kRecType] === RecordType.Commit) latest = Math.max(latest, commitTimeAt(this.bytes, p) ?? 0);
      }
      if (latest > 0) return latest;
      if (first > SEGMENT_HEADER_SIZE) return undefined; // records before the scan's start may hold one
    }
    return undefined; // none since the scan's start: older segments may hold one
  }

  /** Closes the segment file undo's reads keep open. */
  close(): void {
    if (this.file) closeSync(this.file.fd);
    this.file = undefined;
  }
}

/**
 * Redo as a stream, pages held in memory across applies (PageRedo): what each redo thread of the
 * streaming redo (redoStream.ts, redoStreamTask.ts) runs, with the same rules and native kernel
 * as `applyRedo` (redoApply.ts).
 *
 * Synchronous file I/O: it runs in a worker, or in recovery when nothing else runs.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { adviseHugePages, redoApplyHeld } from 'recovery-agent/native';
import { sealPage } from './format.js';
import { faultFires, die } from './faults.js';
import { kCorruptReasons, kStatusChanged, kStatusMalformed, lsnAt, type RedoResult } from './redoApply.js';
import { kFlagFullPage, kRecFlags } from './walRecord.js';
import { writeAllSync } from '../../core/writeAll.js';

/**
 * Bytes per slab of a PageRedo's page cache (one native call applies a slab's pages). Several
 * huge pages, so that most of a slab gets them whatever its alignment (adviseHugePages).
 */
const kCacheChunkBytes = 16 << 20;
/** At most this many chunks per arena of a PageRedo's page cache (16 × 16 MiB: address space, touched only as used). */
const kArenaChunks = 16;
/** Up to this many pages a PageRedo maps page ids to cache slots with a flat table. */
const kFlatSlotPages = 1 << 22;
const kNoSlot = 0xffffffff;
/** In the flat table while `freshPages` lists a page (never a slot: slots stay below the page count). */
const kListed = 0xfffffffe;

/**
 * Redo as a stream (redoStream.ts): records arrive in LSN order a few segments at a time.
 * `add` queues one, `apply` applies the queued ones to pages held in memory (read from the data
 * file on first use, verified and rebuilt by the same native kernel as `applyRedo`), and
 * `finish` writes the changed pages back, each once. `apply` must run before the log bytes of
 * the queued records are reused (the caller's window of segments).
 *
 * Pages reach the data file only in `finish`, after the whole log checked out, so a log found
 * damaged later (or a worker that fails) leaves the data file as it was, as the two-pass redo
 * does. Except: when the pages outgrow `budgetBytes`, `apply` writes the changed ones back and
 * drops them first. That is safe for crash safety (they hold only records of the valid log,
 * which every later recovery repeats anyway), but the "nothing written" promise then holds only
 * for logs whose pages fit the budget.
 *
 * A page is read and verified once, when it is first applied to (neither when its first record
 * carries a full page image: it starts from the image, see loadRun), and sealed once, right
 * before it is written back: between applies it stays in memory unsealed (the kernel's `held` mode,
 * `redoApplyHeld`). Verifying and re-sealing at every `apply` cost two 8 KiB hashes per page
 * per apply, most of a worker's CPU after its page reads.
 */
export class PageRedo {
  readonly result: RedoResult = { applied: 0, skipped: 0, pagesWritten: 0, corrupt: [], outOfRange: [] };
  private queuedPositions = new Uint32Array(1 << 14);
  private queuedPageIds = new Uint32Array(1 << 14);
  private queued = 0;
  /** Page id → cache slot: a flat table for stores up to kFlatSlotPages pages, else a map. */
  private readonly flat: Uint32Array | null;
  private readonly map = new Map<number, number>();
  /** Per slot: its page id, whether it changed, whether it is corrupt (its records are dropped). */
  private slotPage = new Uint32Array(1024);
  private slotState = new Uint8Array(1024);
  /** Per slot: the kernel's `held` byte (verified, unsealed since; see redoApplyHeld). */
  private slotHeld = new Uint8Array(1024);
  private slots = 0;
  private scratchStarts = new Uint32Array(0);
  private scratchFill = new Uint32Array(0);
  private scratchSlotOf = new Uint32Array(0);
  private scratchOrdered = new Uint32Array(0);
  private readonly status: Uint32Array;
  private readonly chunks: Buffer[] = [];
  private arena = Buffer.alloc(0);
  private arenaUsed = 0;
  /** Chunks per arena: enough for the pages this redo may hold (the budget, the store), at most kArenaChunks. */
  private readonly arenaChunks: number;
  private readonly chunkPages: number;
  private readonly budgetPages: number;
  private readonly fd: number;

  constructor(
    private readonly wal: Uint8Array,
    dataFile: string,
    private readonly pageSize: number,
    private readonly pageCount: number,
    budgetBytes: number,
  ) {
    this.chunkPages = Math.max(1, Math.floor(kCacheChunkBytes / pageSize));
    this.budgetPages = Math.max(1, Math.floor(budgetBytes / pageSize));
    this.arenaChunks = Math.max(1, Math.min(kArenaChunks, Math.ceil(Math.min(this.budgetPages, pageCount) / this.chunkPages)));
    this.status = new Uint32Array(this.chunkPages);
    this.flat = pageCount <= kFlatSlotPages ? new Uint32Array(pageCount).fill(kNoSlot) : null;
    this.fd = openSync(dataFile, 'r+');
  }

  /** Queues the record at `position` of the log, which changes page `pageId`. */
  add(position: number, pageId: number): void {
    this.reserveQueue(1);
    this.queuedPositions[this.queued] = position;
    this.queuedPageIds[this.queued++] = pageId;
  }

  /**
   * Queues the (position, page id) pairs of `words` from pair `first` on, at most `count`, up to
   * the first whose page id is `stop` (not queued). Returns how many pairs were queued.
   */
  addUntil(words: Int32Array, first: number, count: number, stop: number): number {
    this.reserveQueue(count);
    const positions = this.queuedPositions;
    const pageIds = this.queuedPageIds;
    const stopWord = stop | 0;
    let q = this.queued;
    let k = 0;
    for (let w = 2 * first; k < count; k++, w += 2) {
      const pageId = words[w + 1]!;
      if (pageId === stopWord) break;
      positions[q] = words[w]!;
      pageIds[q++] = pageId;
    }
    this.queued = q;
    return k;
  }

  /** Room in the queue for `count` more records. */
  private reserveQueue(count: number): void {
    if (this.queued + count <= this.queuedPositions.length) return;
    const size = Math.max(this.queued * 2, this.queued + count);
    this.queuedPositions = grow(this.queuedPositions, size);
    this.queuedPageIds = grow(this.queuedPageIds, size);
  }

  /** Queues `count` records given as (position, page id) pairs of `pairs`, from pair `first` on. */
  addMany(pairs: Uint32Array, first: number, count: number): void {
    this.reserveQueue(count);
    const positions = this.queuedPositions;
    const pageIds = this.queuedPageIds;
    for (let i = 0, q = this.queued, k = 2 * first; i < count; i++, q++, k += 2) {
      positions[q] = pairs[k]!;
      pageIds[q] = pairs[k + 1]!;
    }
    this.queued += count;
  }

  /** Applies every queued record to its cached page; after this the queued log bytes may go. */
  apply(): void {
    const n = this.queued;
    if (n === 0) return;
    const ids = this.queuedPageIds;
    // Slots for pages not cached yet; past the budget, write back and start over first.
    const fresh = this.freshPages(ids, n);
    if (this.slots > 0 && this.slots + fresh.length > this.budgetPages) {
      this.writeBack(false);
      this.clearCache();
      this.loadPages(this.freshPages(ids, n));
    } else {
      this.loadPages(fresh);
    }
    // Group the queued records by slot, LSN order kept; those of corrupt pages are dropped.
    // The tables are kept from apply to apply (an apply per segment: fresh arrays each time
    // were page faults and garbage in every worker). Each loop is a small function of its own:
    // V8 compiles a function with a hot loop again for each of its loops (on-stack replacement),
    // and this one, called per segment, was compiled ten times per worker when it held them all.
    const slots = this.slots;
    const { starts, fill, slotOfRec, ordered } = this.scratchFor(slots, n);
    starts.fill(0, 0, slots + 1);
    if (this.flat) countByFlatSlot(ids, n, this.flat, slotOfRec, starts);
    else countByMappedSlot(ids, n, this.map, slotOfRec, starts);
    startsOfSlots(starts, fill, this.slotState, slots);
    scatterBySlot(slotOfRec, this.queuedPositions, n, this.slotState, fill, ordered);
    for (let c = 0; c * this.chunkPages < slots; c++) {
      const first = c * this.chunkPages;
      const end = Math.min(slots, first + this.chunkPages);
      if (starts[first] === starts[end]) continue;
      const applied = redoApplyHeld(this.wal, ordered, starts, this.slotPage, first, end, this.chunks[c]!, this.pageSize, this.status, this.slotHeld.subarray(first, end));
      const live = this.noteStatus(first, end, starts, ordered);
      this.result.applied += applied;
      this.result.skipped += live - applied;
    }
    this.queued = 0;
  }

  /**
   * Takes the kernel's status of slots [first, end): changed pages become dirty, failing ones
   * corrupt (their records dropped from then on). Returns the records of pages applied or
   * skipped (those of corrupt pages count as neither).
   */
  private noteStatus(first: number, end: number, starts: Uint32Array, ordered: Uint32Array): number {
    const status = this.status;
    const state = this.slotState;
    let live = 0;
    for (let k = 0; k < end - first; k++) {
      const st = status[k]!;
      if (st <= kStatusChanged) {
        live += starts[first + k + 1]! - starts[first + k]!;
        if (st === kStatusChanged) state[first + k]! |= kSlotDirty;
      } else {
        this.noteFailed(first + k, st, starts, ordered);
      }
    }
    return live;
  }

  /** A slot the kernel refused (status 2–6): reported, and its page never written. */
  private noteFailed(s: number, st: number, starts: Uint32Array, ordered: Uint32Array): void {
    if (st === kStatusMalformed) {
      // The reader checked every record (redoCheckRecords), so this cannot happen; report, never write.
      for (let r = starts[s]!; r < starts[s + 1]!; r++) this.result.outOfRange.push({ lsn: lsnAt(this.wal, ordered[r]!), pageId: this.slotPage[s]! });
    } else {
      this.result.corrupt.push({ pageId: this.slotPage[s]!, reason: kCorruptReasons[st] ?? `status ${st}` });
    }
    this.slotState[s] = kSlotCorrupt;
  }

  /**
   * Applies what is queued and, with `commit`, writes every changed page back; then closes the
   * data file. Without `commit` (the log turned out damaged, or a worker failed) nothing more is
   * written.
   */
  finish(commit: boolean): RedoResult {
    try {
      if (commit) {
        this.apply();
        this.writeBack(true);
      }
    } finally {
      closeSync(this.fd);
    }
    return this.result;
  }

  private slotOf(pageId: number): number {
    return this.flat ? this.flat[pageId]! : (this.map.get(pageId) ?? kNoSlot);
  }

  /** `apply`'s tables, grown as needed and reused: starts and fill per slot, slot and order per record. */
  private scratchFor(slots: number, n: number): { starts: Uint32Array; fill: Uint32Array; slotOfRec: Uint32Array; ordered: Uint32Array } {
    if (this.scratchStarts.length < slots + 1) {
      this.scratchStarts = new Uint32Array(Math.max(slots + 1, 2 * this.scratchStarts.length));
      this.scratchFill = new Uint32Array(this.scratchStarts.length);
    }
    if (this.scratchSlotOf.length < n) {
      this.scratchSlotOf = new Uint32Array(Math.max(n, 2 * this.scratchSlotOf.length));
      this.scratchOrdered = new Uint32Array(this.scratchSlotOf.length);
    }
    return { starts: this.scratchStarts, fill: this.scratchFill, slotOfRec: this.scratchSlotOf, ordered: this.scratchOrdered };
  }

  /**
   * The distinct pages of the queued records that have no slot yet, ascending, each as
   * `2 × page id + 1` when its first queued record carries a full page image (then the page need
   * not be read: see loadRun), else `2 × page id`. With the flat table, a page already listed is
   * marked in it (kListed) instead of a Set of every id.
   */
  private freshPages(ids: Uint32Array, n: number): Float64Array {
    if (this.flat) return freshByFlatTable(ids, this.queuedPositions, this.wal, n, this.flat).sort();
    const fresh: number[] = [];
    const seen = new Set<number>();
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      if (!this.map.has(id) && !seen.has(id)) {
        seen.add(id);
        fresh.push(2 * id + imageBit(this.wal, this.queuedPositions[i]!));
      }
    }
    return Float64Array.from(fresh).sort();
  }

  /** Gives each page (freshPages' encoding) a slot, ascending pages consecutive slots, and reads those that need it, one read per run. */
  private loadPages(pages: Float64Array): void {
    for (let k = 0; k < pages.length; ) k = this.loadRun(pages, k);
  }

  /**
   * Slots for the run of `pages` from k — adjacent page ids in adjacent slots of one chunk, all
   * needing a read or none — and one read for it. A page whose first record carries a full page
   * image is not read, as PostgreSQL restores a block from its image without reading it: the
   * image is the page as of that record, and every later record is in the log after it, so the
   * page's bytes on disk (stale, torn or current) change nothing. It is marked for the kernel
   * (REDO_HELD_UNREAD), which then applies the image whatever LSN the slot holds. Returns where
   * the run ends. (Each loop in a function of its own, as in `apply`.)
   */
  private loadRun(pages: Float64Array, k: number): number {
    const size = this.pageSize;
    const first = pages[k]!;
    const slot = this.newSlot(pageOf(first));
    const e = this.slotRun(pages, k, slot);
    if (first % 2 === 1) {
      this.slotHeld.fill(kHeldUnread, slot, slot + (e - k));
      return e;
    }
    const buf = this.chunks[Math.floor(slot / this.chunkPages)]!;
    const off = (slot % this.chunkPages) * size;
    const len = (e - k) * size;
    const done = readFully(this.fd, buf, off, len, pageOf(first) * size);
    // Past the end of the file: no page there, so it fails verification (a zeroed page does).
    if (done < len) buf.fill(0, off + done, off + len);
    return e;
  }

  /** Gives slots to the pages after k that continue its run (`slot` is k's; same read bit); returns the run's end. */
  private slotRun(pages: Float64Array, k: number, slot: number): number {
    const chunk = Math.floor(slot / this.chunkPages);
    let e = k + 1;
    while (e < pages.length && pages[e] === pages[e - 1]! + 2 && Math.floor((slot + e - k) / this.chunkPages) === chunk) this.newSlot(pageOf(pages[e++]!));
    return e;
  }

  private newSlot(pageId: number): number {
    const slot = this.slots++;
    if (slot === this.slotPage.length) {
      this.slotPage = grow(this.slotPage, slot * 2);
      const state = new Uint8Array(slot * 2);
      state.set(this.slotState);
      this.slotState = state;
      const held = new Uint8Array(slot * 2);
      held.set(this.slotHeld);
      this.slotHeld = held;
    }
    if (Math.floor(slot / this.chunkPages) === this.chunks.length) this.chunks.push(this.newChunk());
    this.slotPage[slot] = pageId;
    this.slotState[slot] = 0;
    this.slotHeld[slot] = 0;
    if (this.flat) this.flat[pageId] = slot;
    else this.map.set(pageId, slot);
    return slot;
  }

  /**
   * A chunk of the page cache, carved out of an arena: one large allocation (address space only
   * until touched), advised for huge pages once. Only the arena's ends fall outside whole huge
   * pages; a buffer per chunk had two such ends per chunk, up to 2 MiB of 4 KiB faults each.
   */
  private newChunk(): Buffer {
    const bytes = this.chunkPages * this.pageSize;
    if (this.arenaUsed + bytes > this.arena.length) {
      this.arena = Buffer.allocUnsafe(this.arenaChunks * bytes);
      // Fresh memory, about to be filled by reads: a fault per 2 MiB instead of per 4 KiB.
      adviseHugePages(this.arena);
      this.arenaUsed = 0;
    }
    const chunk = this.arena.subarray(this.arenaUsed, this.arenaUsed + bytes);
    this.arenaUsed += bytes;
    return chunk;
  }

  private clearCache(): void {
    for (let s = 0; s < this.slots; s++) {
      if (this.flat) this.flat[this.slotPage[s]!] = kNoSlot;
    }
    this.map.clear();
    this.slots = 0;
  }

  /**
   * Writes the changed pages back in page order, one write per run of adjacent pages in
   * adjacent slots. The crash harness's fault point (at the last write-back): dies with half of
   * the changed pages written.
   */
  private writeBack(last: boolean): void {
    const dirty = this.dirtySlotsByPage();
    const half = dirty.length >> 1;
    for (let k = 0; k < dirty.length; ) {
      if (last && k >= half && half > 0 && faultFires('recovery-redo')) die();
      const e = this.runEnd(dirty, k, last ? half : -1);
      this.writeRun(dirty, k, e);
      k = e;
    }
  }

  /** The dirty slots in page order: a walk of the flat table (no sort), else sorted by page. */
  private dirtySlotsByPage(): Uint32Array {
    if (this.flat) return dirtyByFlatTable(this.flat, this.slotState, new Uint32Array(this.slots));
    const dirty: number[] = [];
    for (let s = 0; s < this.slots; s++) if (this.slotState[s]! & kSlotDirty) dirty.push(s);
    dirty.sort((a, b) => this.slotPage[a]! - this.slotPage[b]!);
    return Uint32Array.from(dirty);
  }

  /**
   * Where the run of `dirty` from k ends: adjacent pages in adjacent slots of one chunk, and
   * never across `stop` (the crash harness's half-way point; -1 for none).
   */
  private runEnd(dirty: Uint32Array, k: number, stop: number): number {
    const chunk = Math.floor(dirty[k]! / this.chunkPages);
    let e = k + 1;
    while (e < dirty.length && e !== stop && dirty[e] === dirty[e - 1]! + 1 && this.slotPage[dirty[e]!] === this.slotPage[dirty[e - 1]!]! + 1 && Math.floor(dirty[e]! / this.chunkPages) === chunk) e++;
    return e;
  }

  /** Seals and writes the pages of dirty[k..e) (adjacent, one chunk) with one write. */
  private writeRun(dirty: Uint32Array, k: number, e: number): void {
    const size = this.pageSize;
    const slot = dirty[k]!;
    const buf = this.chunks[Math.floor(slot / this.chunkPages)]!;
    const off = (slot % this.chunkPages) * size;
    // Held pages are unsealed (redoApplyHeld): sealed here, once, as they leave memory.
    for (let j = 0; j < e - k; j++) sealPage(buf.subarray(off + j * size, off + (j + 1) * size));
    writeAllSync(this.fd, buf.subarray(off, off + (e - k) * size), this.slotPage[slot]! * size);
    for (let j = k; j < e; j++) this.slotState[dirty[j]!]! &= ~kSlotDirty;
    this.result.pagesWritten += e - k;
  }
}

const kSlotDirty = 1;
const kSlotCorrupt = 2;

/**
 * The distinct ids of `ids[0..n)` that have no slot in the flat table, in first-seen order, in
 * PageRedo.freshPages' encoding (the first-seen record's full-image bit): each is marked in the
 * table (kListed) while listed, instead of a Set of every id.
 */
function freshByFlatTable(ids: Uint32Array, positions: Uint32Array, wal: Uint8Array, n: number, flat: Uint32Array): Float64Array {
  const out = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const id = ids[i]!;
    if (flat[id] === kNoSlot) {
      flat[id] = kListed;
      out[k++] = 2 * id + imageBit(wal, positions[i]!);
    }
  }
  for (let j = 0; j < k; j++) flat[pageOf(out[j]!)] = kNoSlot;
  return out.subarray(0, k);
}

/** 1 when the record at `position` carries a full page image. */
function imageBit(wal: Uint8Array, position: number): number {
  return wal[position + kRecFlags]! & kFlagFullPage;
}

/** The page id of a value in PageRedo.freshPages' encoding (ids may pass 2^31: no `>>>`). */
function pageOf(v: number): number {
  return Math.floor(v / 2);
}

/** The kernel's held bit for a page not read (redoApplyHeld). */
const kHeldUnread = 2;

/** Reads `len` bytes at `pos` into buf[off..], short only at the end of the file; returns the bytes read. */
function readFully(fd: number, buf: Buffer, off: number, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const got = readSync(fd, buf, off + done, len - done, pos + done);
    if (got === 0) break;
    done += got;
  }
  return done;
}

/** The slots of the flat table's dirty pages, in page order, into `out`; returns the filled part. */
function dirtyByFlatTable(flat: Uint32Array, state: Uint8Array, out: Uint32Array): Uint32Array {
  let n = 0;
  for (let p = 0; p < flat.length; p++) {
    const slot = flat[p]!;
    if (slot !== kNoSlot && state[slot]! & kSlotDirty) out[n++] = slot;
  }
  return out.subarray(0, n);
}

/** PageRedo.apply's first pass, flat table: each record's slot, and records per slot in `starts[slot + 1]`. */
function countByFlatSlot(ids: Uint32Array, n: number, flat: Uint32Array, slotOfRec: Uint32Array, starts: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const slot = flat[ids[i]!]!;
    slotOfRec[i] = slot;
    starts[slot + 1]!++;
  }
}

/** The same with the map of a store too large for a flat table. */
function countByMappedSlot(ids: Uint32Array, n: number, map: Map<number, number>, slotOfRec: Uint32Array, starts: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const slot = map.get(ids[i]!)!;
    slotOfRec[i] = slot;
    starts[slot + 1]!++;
  }
}

/** Counts to starts (a corrupt slot's records dropped), and each slot's fill point. */
function startsOfSlots(starts: Uint32Array, fill: Uint32Array, state: Uint8Array, slots: number): void {
  for (let s = 0; s < slots; s++) {
    if (state[s]! & kSlotCorrupt) starts[s + 1] = 0;
    starts[s + 1]! += starts[s]!;
    fill[s] = starts[s]!;
  }
}

/** Each record's position to its slot's run of `ordered`, LSN order kept; corrupt slots' records dropped. */
function scatterBySlot(slotOfRec: Uint32Array, positions: Uint32Array, n: number, state: Uint8Array, fill: Uint32Array, ordered: Uint32Array): void {
  for (let i = 0; i < n; i++) {
    const slot = slotOfRec[i]!;
    if (!(state[slot]! & kSlotCorrupt)) ordered[fill[slot]!++] = positions[i]!;
  }
}

function grow(a: Uint32Array, length: number): Uint32Array<ArrayBuffer> {
  const b = new Uint32Array(length);
  b.set(a);
  return b;
}

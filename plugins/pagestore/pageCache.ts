/**
 * The page cache: pages in memory, loaded on demand and verified on every load.
 *
 * Rules that recovery relies on:
 *   - a dirty page stays in memory until a checkpoint writes it (there is no eviction of dirty
 *     pages, so a page reaches the data file only at a checkpoint, after the WAL is flushed);
 *   - `dirty` is true exactly when the page changed since the current redo point, so a clean
 *     page's next change must log a full page image (torn-page protection);
 *   - a frame in use is pinned and never evicted; clean, unpinned frames are evicted oldest
 *     first once the cache passes its size.
 */
import type { FileHandle } from 'node:fs/promises';
import { raError } from '../../core/errors.js';
import { pageLsn, readPageAt } from './format.js';

export interface Frame {
  readonly pageId: number;
  readonly page: Buffer;
  dirty: boolean;
  /** LSN of the first change since the page was last written. */
  recLsn: number;
  pins: number;
}

export class PageCache {
  private readonly frames = new Map<number, Frame>();
  private readonly loading = new Map<number, Promise<Frame>>();
  /** Pages read from disk, and those that failed verification. */
  readonly stats = { loads: 0, hits: 0, evictions: 0, corrupt: 0 };
  /**
   * The page LSN of every page evicted since the store opened, as it was when it left memory:
   * the newest version the store knows of a page it no longer holds, so an older image offered
   * to repair it is refused. One number per page at most.
   */
  private readonly evictedLsn = new Map<number, number>();

  constructor(
    private readonly data: FileHandle,
    private readonly pageSize: number,
    private readonly maxFrames: number,
    private readonly onCorrupt?: (pageId: number, reason: string) => void,
  ) {}

  /** The frame of `pageId`, pinned: call `unpin` when done with it. */
  async pin(pageId: number): Promise<Frame> {
    for (;;) {
      const hit = this.frames.get(pageId);
      if (hit) {
        // Move to the young end of the LRU order.
        this.frames.delete(pageId);
        this.frames.set(pageId, hit);
        hit.pins++;
        this.stats.hits++;
        return hit;
      }
      let pending = this.loading.get(pageId);
      if (!pending) {
        pending = this.load(pageId).finally(() => this.loading.delete(pageId));
        this.loading.set(pageId, pending);
      }
      const frame = await pending;
      // A frame the cache no longer holds is never handed out: a change made to it would be
      // logged and acknowledged, but no checkpoint would write it (it sees only cached frames).
      // Evicted before this pin could take it (see install): pin the page again.
      if (this.frames.get(pageId) !== frame) continue;
      frame.pins++;
      // Only now: evicting in load() could drop the new frame before it is pinned, and its caller
      // would change a page the cache no longer holds.
      this.trim();
      return frame;
    }
  }

  unpin(frame: Frame): void {
    frame.pins--;
  }

  /** The frame of `pageId` if it is in memory (not pinned, LRU order unchanged). */
  peek(pageId: number): Frame | undefined {
    return this.frames.get(pageId);
  }

  /**
   * Repair of a page not in memory: `write` puts the verified `image` on disk, and the page is
   * then cached from it. Loads of the page wait meanwhile, so no reader sees the old bytes or
   * half-written ones. Returns null, doing nothing, when the page is in memory (the caller
   * writes that copy instead) — after any load in progress has settled.
   *
   * Pins of the page made meanwhile wait on this install and pin the new frame only after this
   * resumes (they awaited it later), so the trim here can evict that frame — clean, unpinned and,
   * with every older frame dirty or pinned, the only one to evict. Such a pin must not take the
   * evicted frame: the transaction's change to it would be logged and acknowledged, then lost, no
   * checkpoint writing it (chaos seed 17 trial 10, page-torn). `pin` therefore takes only a frame
   * the cache holds, and loads the page again otherwise (from disk, where this install wrote it
   * first). The trim stays so that a batch of installs does not grow the cache past its size.
   */
  async install(pageId: number, image: Buffer, write: () => Promise<void>): Promise<Frame | null> {
    for (let pending; (pending = this.loading.get(pageId)); ) await pending.catch(() => undefined);
    if (this.frames.has(pageId)) return null;
    const p = (async () => {
      await write();
      const frame: Frame = { pageId, page: Buffer.from(image), dirty: false, recLsn: 0, pins: 0 };
      this.frames.set(pageId, frame);
      return frame;
    })().finally(() => this.loading.delete(pageId));
    this.loading.set(pageId, p);
    const frame = await p;
    this.trim();
    return frame;
  }

  /**
   * Takes over a page recovery changed and did not write (undo's pages when the open defers the
   * end-of-recovery checkpoint): dirty since `recLsn`, so the next checkpoint writes it, and
   * never read from disk meanwhile (the data file holds the version before undo).
   */
  adoptDirty(pageId: number, image: Buffer, recLsn: number): void {
    if (this.frames.has(pageId) || this.loading.has(pageId)) throw new Error(`internal: page ${pageId} is already cached; recovery's copy cannot be adopted`);
    this.frames.set(pageId, { pageId, page: image, dirty: true, recLsn, pins: 0 });
  }

  /** The newest page LSN this cache has seen for `pageId`: its frame's, or the one it had when evicted (0 when never seen). */
  knownLsn(pageId: number): number {
    const f = this.frames.get(pageId);
    return f ? pageLsn(f.page) : (this.evictedLsn.get(pageId) ?? 0);
  }

  /** Every frame, for checkpoints. */
  all(): IterableIterator<Frame> {
    return this.frames.values();
  }

  get size(): number {
    return this.frames.size;
  }

  private async load(pageId: number): Promise<Frame> {
    const { image: page, fault } = await readPageAt(this.data, pageId, this.pageSize);
    this.stats.loads++;
    if (fault) {
      this.stats.corrupt++;
      this.onCorrupt?.(pageId, fault);
      throw raError('RA_ERR_PAGE_CORRUPT', `page ${pageId} fails its ${fault} check on read`, { details: { pageId, reason: fault } });
    }
    const frame: Frame = { pageId, page, dirty: false, recLsn: 0, pins: 0 };
    this.frames.set(pageId, frame);
    return frame;
  }

  /**
   * Drops every clean, unpinned frame (the control socket's `drop-caches`, asked by the agent
   * under memory pressure): they are copies of the disk, read again on demand. Dirty frames stay
   * (they reach the disk only at a checkpoint), as do pinned ones. Returns what was let go.
   */
  dropClean(): { pages: number; bytes: number } {
    let pages = 0;
    for (const [id, f] of this.frames) {
      if (f.dirty || f.pins > 0) continue;
      this.frames.delete(id);
      this.evictedLsn.set(id, pageLsn(f.page));
      pages++;
    }
    this.stats.evictions += pages;
    return { pages, bytes: pages * this.pageSize };
  }

  /** Frames that are dirty (not droppable until a checkpoint writes them). */
  get dirtyCount(): number {
    let n = 0;
    for (const f of this.frames.values()) if (f.dirty) n++;
    return n;
  }

  /**
   * Evicts clean, unpinned frames, oldest first, down to the cache's size: after a load, and
   * after a checkpoint has cleaned frames that were dirty past that size.
   */
  trim(): void {
    if (this.frames.size <= this.maxFrames) return;
    for (const [id, f] of this.frames) {
      if (this.frames.size <= this.maxFrames) break;
      if (f.dirty || f.pins > 0) continue;
      this.frames.delete(id);
      this.evictedLsn.set(id, pageLsn(f.page));
      this.stats.evictions++;
    }
  }
}

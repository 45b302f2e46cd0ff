/**
 * Writes a snapshot's files from the main thread and makes them durable in the background.
 *
 * Each file is opened and written, and its fdatasync queued at once; at most `maxSyncs` run at a
 * time (libuv runs 4 threads by default: the others stay free for the page reads and the next
 * writes), each file closed after its own. So the disk takes a snapshot's chunks while the
 * workers compress the next ones, and the wait before the manifest is for the last few only.
 * A write waits while `maxQueued` files wait for their sync, which bounds the dirty data and
 * the open files.
 *
 * Main thread only; `write` may be called again before an earlier call settles. A failed sync is
 * kept and thrown by every later `write` and by `drain`; every file is closed by `settle` at the
 * latest.
 */
import type { FileHandle } from 'node:fs/promises';
import { openPrivate } from '../../core/privateFiles.js';
import { writevAll } from '../../core/writeAll.js';

/** Syncs in flight: with libuv's 4 threads, 2 leave 2 for reads and writes. */
const kMaxSyncs = 2;
/**
 * Files written and waiting for their sync, at most: ~50 MB of page chunks (~0.4 MiB each).
 * With 32, two workers outran the syncs now and then and the lanes waited (0.1–0.4 s per GiB,
 * measured); the final wait stays short (the syncs keep up on average).
 */
const kMaxQueued = 128;

export class FrameWriter {
  private readonly queued: FileHandle[] = [];
  private running = 0;
  private readonly waiting = new Set<() => void>();
  private failure: unknown = null;

  constructor(
    private readonly maxSyncs = kMaxSyncs,
    private readonly maxQueued = kMaxQueued,
  ) {}

  /**
   * Writes `data` (bytes, or pieces to join) as the new file `file`; resolves once written (the
   * caller may then reuse the buffers) and the file's fdatasync is queued.
   */
  async write(file: string, data: Uint8Array | readonly Uint8Array[]): Promise<void> {
    while (this.queued.length >= this.maxQueued) await this.progress();
    if (this.failure) throw this.failure;
    const h = await openPrivate(file, 'w');
    try {
      await writevAll(h, data instanceof Uint8Array ? [data] : data, 0);
    } catch (err) {
      await h.close().catch(() => undefined);
      throw err;
    }
    this.queued.push(h);
    this.pump();
  }

  /** Resolves once every file written is durable and closed; rejects with the first failure. */
  async drain(): Promise<void> {
    await this.settle();
    if (this.failure) throw this.failure;
  }

  /** Waits until every file written is closed, ignoring failures (before removing a failed snapshot). */
  async settle(): Promise<void> {
    while (this.running > 0 || this.queued.length > 0) await this.progress();
  }

  private pump(): void {
    while (this.running < this.maxSyncs && this.queued.length > 0) {
      const h = this.queued.shift()!;
      this.running++;
      void this.syncAndClose(h).then(() => {
        this.running--;
        this.pump();
        for (const wake of this.waiting) wake();
        this.waiting.clear();
      });
    }
  }

  /** Never rejects: a failure is kept (no unhandled rejection meanwhile); after one, files are only closed. */
  private async syncAndClose(h: FileHandle): Promise<void> {
    if (this.failure === null) await h.datasync().catch((err: unknown) => void (this.failure ??= err));
    await h.close().catch((err: unknown) => void (this.failure ??= err));
  }

  /** Resolves when the next sync ends. */
  private progress(): Promise<void> {
    return new Promise((resolve) => this.waiting.add(resolve));
  }
}

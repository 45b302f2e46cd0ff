/**
 * Writes a snapshot's files from the main thread and makes them durable in the background.
 *
 * Each file is opened, written and closed behind an fdatasync started as soon as it is written,
 * with at most `maxSyncs` in flight: libuv runs 4 threads by default, and the others stay free
 * for the page reads and the next writes. A write waits while that many syncs are in flight,
 * which also bounds the dirty data. So the disk takes a snapshot's chunks while the workers
 * compress the next ones, and the wait before the manifest is for the last few only.
 *
 * Main thread only; `write` may be called again before an earlier call settles. A failed sync is
 * kept and thrown by every later `write` and by `drain`.
 */
import { open } from 'node:fs/promises';

/** Syncs in flight by default: with libuv's 4 threads, 2 leaves 2 for reads and writes. */
const kDefaultMaxSyncs = 2;

export class FrameWriter {
  private readonly syncing = new Set<Promise<void>>();
  private failure: unknown = null;
  /** Milliseconds spent waiting for a sync slot (for benchmarks). */
  waitedMs = 0;

  constructor(private readonly maxSyncs = kDefaultMaxSyncs) {}

  /**
   * Writes `bytes` as the new file `file`; resolves once they are written (the caller may then
   * reuse the buffer) and the file's fdatasync has started.
   */
  async write(file: string, bytes: Uint8Array): Promise<void> {
    if (this.failure) throw this.failure;
    const h = await open(file, 'w');
    try {
      for (let done = 0; done < bytes.byteLength; ) {
        const { bytesWritten } = await h.write(bytes, done, bytes.byteLength - done, done);
        done += bytesWritten;
      }
    } catch (err) {
      await h.close().catch(() => undefined);
      throw err;
    }
    if (this.syncing.size >= this.maxSyncs) {
      const t0 = performance.now();
      while (this.syncing.size >= this.maxSyncs) await Promise.race(this.syncing);
      this.waitedMs += performance.now() - t0;
    }
    // Never rejects: a failure is kept for drain() (no unhandled rejection meanwhile).
    const p: Promise<void> = (async () => {
      try {
        await h.datasync();
      } catch (err) {
        this.failure ??= err;
      }
      await h.close().catch((err: unknown) => void (this.failure ??= err));
    })().finally(() => this.syncing.delete(p));
    this.syncing.add(p);
  }

  /** Resolves once every file written is durable and closed; rejects with the first failure. */
  async drain(): Promise<void> {
    while (this.syncing.size > 0) await Promise.all(this.syncing);
    if (this.failure) throw this.failure;
  }

  /** Waits for the syncs in flight, ignoring failures (before removing a failed snapshot). */
  async settle(): Promise<void> {
    while (this.syncing.size > 0) await Promise.all(this.syncing);
  }
}

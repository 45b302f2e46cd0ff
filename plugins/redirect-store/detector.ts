/**
 * Detecting a failed disk under a store: the store's owner is asked for its status through the
 * engine's channel to it (the page store's control socket) every `intervalMs`; an owner whose log
 * broke on `EIO` (a failed WAL write, fdatasync or checkpoint) is a `disk-failure`. A log broken
 * by anything else (`ENOSPC`: the disk is full) is logged once and left to the health monitor's
 * space probes — moving a store because its disk filled up would only move the problem.
 *
 * An owner that exits on the error instead of staying up leaves nobody to ask: for a store that
 * exists, is written by a configured process, is not replicated and whose owner does not answer,
 * the agent probes the disk itself, at most every
 * `probeEveryMs`: it writes a page to `<store>/.ra-disk-probe`, fdatasyncs it and removes it.
 * EIO there is a `disk-failure` too (`seenBy: probe`); any other error is not.
 */
import { open, unlink } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { DISK_ERRNOS, DISK_FAILURE, type DiskFailureEvidence } from '../../core/contracts/DiskFailure.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import { withOwner, type OwnerStatus, type PageEngine } from '../../core/contracts/PageEngine.js';
import type { StorePaths } from '../../core/contracts/StorePaths.js';

export interface WatchedStore {
  readonly id: string;
  readonly engine: PageEngine;
  /**
   * Probe its disk when no owner answers: a store an application of `processes:` writes (it may
   * have exited on the error). Not a replicated store, which the agent's replication works on.
   */
  readonly probe: boolean;
}

export class DiskFailureWatch {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  /** `<store>|<path>|<pid>` already reported: one report per broken owner. */
  private readonly seen = new Set<string>();
  /** When each store path was last probed (performance.now()). */
  private readonly probedAt = new Map<string, number>();

  constructor(
    private readonly stores: readonly WatchedStore[],
    private readonly paths: StorePaths,
    private readonly log: Logger,
    private readonly intervalMs: number,
    private readonly probeEveryMs: number = 1000,
  ) {}

  start(sink: FailureSink): void {
    if (this.stores.length === 0) return;
    const tick = () => {
      this.polling = this.poll(sink).finally(() => {
        this.polling = null;
        if (this.timer !== null) this.timer = setTimeout(tick, this.intervalMs);
      });
    };
    this.timer = setTimeout(tick, this.intervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    await this.polling;
  }

  private async poll(sink: FailureSink): Promise<void> {
    for (const s of this.stores) {
      const dir = this.paths.pathOf(s.id);
      if (dir === undefined) continue;
      let status: OwnerStatus;
      try {
        status = await withOwner(s.engine, dir, (o) => o.status(), { timeoutMs: 1000 });
      } catch {
        await this.probe(s, dir, sink); // nobody has it open (or the owner does not answer)
        continue;
      }
      const b = status.broken;
      if (!b) continue;
      const key = `${s.id}|${dir}|${status.pid}`;
      if (this.seen.has(key)) continue;
      this.seen.add(key);
      if (b.errno === null || !DISK_ERRNOS.includes(b.errno)) {
        this.log.warn({ store: s.id, path: dir, ownerPid: status.pid, errno: b.errno, code: b.code }, `store "${s.id}"'s log is broken by ${b.errno ?? b.code}, which is not a disk failure: not redirected (a full disk is the health monitor's)`);
        continue;
      }
      const evidence: DiskFailureEvidence = { store: s.id, path: dir, seenBy: 'owner', pid: status.pid, errno: b.errno, code: b.code, message: b.message, flushedLsn: status.flushedLsn };
      this.log.error({ ...evidence, ownerPid: status.pid }, `store "${s.id}": its disk fails (${b.errno})`);
      sink.publish({ kind: DISK_FAILURE, priority: 'P1', subject: `store:${s.id}`, evidence: { ...evidence } });
    }
  }

  /** The agent's own write under a store nobody serves; a disk-failure on EIO, once per path. */
  private async probe(s: WatchedStore, dir: string, sink: FailureSink): Promise<void> {
    const id = s.id;
    const now = performance.now();
    // Only under a store (not a directory a store is still being made in, which must stay empty).
    if (!s.probe || now - (this.probedAt.get(dir) ?? -Infinity) < this.probeEveryMs || !s.engine.files.exists(dir)) return;
    this.probedAt.set(dir, now);
    const file = path.join(dir, PROBE_FILE);
    try {
      const h = await open(file, 'w', 0o600);
      try {
        await h.write(Buffer.alloc(4096, 0x5a), 0, 4096, 0);
        await h.datasync();
      } finally {
        await h.close();
        await unlink(file).catch(() => undefined);
      }
    } catch (err) {
      const errno = (err as NodeJS.ErrnoException).code ?? null;
      if (errno === null || !DISK_ERRNOS.includes(errno)) return; // EACCES, ENOSPC…: not a failed disk
      const key = `${id}|${dir}|probe`;
      if (this.seen.has(key)) return;
      this.seen.add(key);
      const evidence: DiskFailureEvidence = { store: id, path: dir, seenBy: 'probe', pid: null, errno, code: 'probe', message: (err as Error).message, flushedLsn: null };
      this.log.error({ ...evidence }, `store "${id}": its disk fails (${errno}) under the agent's probe write; no owner serves it`);
      sink.publish({ kind: DISK_FAILURE, priority: 'P1', subject: `store:${id}`, evidence: { ...evidence } });
    }
  }
}

/** The probe's file, in the store's directory (on the store's disk), removed after each probe. */
export const PROBE_FILE = '.ra-disk-probe';

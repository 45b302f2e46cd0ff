/**
 * Detecting a failed disk under a store: the store's owner is asked for its status through the
 * engine's channel to it (the page store's control socket) every `intervalMs`; an owner whose log
 * broke on `EIO` (a failed WAL write, fdatasync or checkpoint) is a `disk-failure`. A log broken
 * by anything else (`ENOSPC`: the disk is full) is logged once and left to the health monitor's
 * space probes — moving a store because its disk filled up would only move the problem.
 *
 * An owner that exits on the error instead of staying up is a `process-crash` the crash detector
 * reports; the disk failure is seen once a restarted owner's log breaks again.
 */
import type { Logger } from 'pino';
import { DISK_ERRNOS, DISK_FAILURE, type DiskFailureEvidence } from '../../core/contracts/DiskFailure.js';
import type { FailureSink } from '../../core/contracts/Failure.js';
import { withOwner, type OwnerStatus, type PageEngine } from '../../core/contracts/PageEngine.js';
import type { StorePaths } from '../../core/contracts/StorePaths.js';

export interface WatchedStore {
  readonly id: string;
  readonly engine: PageEngine;
}

export class DiskFailureWatch {
  private timer: NodeJS.Timeout | null = null;
  private polling: Promise<void> | null = null;
  /** `<store>|<path>|<pid>` already reported: one report per broken owner. */
  private readonly seen = new Set<string>();

  constructor(
    private readonly stores: readonly WatchedStore[],
    private readonly paths: StorePaths,
    private readonly log: Logger,
    private readonly intervalMs: number,
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
        continue; // nobody has it open (or the owner does not answer): nothing to ask
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
      const evidence: DiskFailureEvidence = { store: s.id, path: dir, pid: status.pid, errno: b.errno, code: b.code, message: b.message, flushedLsn: status.flushedLsn };
      this.log.error({ ...evidence, ownerPid: status.pid }, `store "${s.id}": its disk fails (${b.errno})`);
      sink.publish({ kind: DISK_FAILURE, priority: 'P1', subject: `store:${s.id}`, evidence: { ...evidence } });
    }
  }
}

/**
 * Fault points for the crash harness: `RA_FAULT=<point>:<n>` makes the process SIGKILL itself
 * at the n-th time it reaches `<point>` (n defaults to 1). A real kill, not a simulation: the
 * code under test gets no chance to cooperate. Costs one comparison when unset.
 *
 * Points: wal-before-sync (WAL written, not yet fdatasync'd), page-write-torn (half a page
 * written during a checkpoint), checkpoint-before-control (pages flushed, control file not yet
 * updated), recovery-redo (halfway through redo), recovery-undo (after the first CLR of undo),
 * swap-between-renames (a restore's old store renamed aside, the new one not yet in place),
 * replica-append (half of a replica's run of records written, nothing synced), replica-apply
 * (a replica's apply after its first segment's pages were written), replica-restartpoint (a
 * replica's applied pages synced, its control file not yet switched to the checkpoint),
 * base-copy (a base copy's chunk of pages written to the replica's `<dir>.init`, baseCopy.ts),
 * base-copy-before-rename (a base copy complete and synced, not yet renamed into place),
 * open-before-checkpoint (PageStore.open: recovery's redo and undo done, the store ready, its
 * end-of-recovery checkpoint not yet started).
 */
const spec = /^([a-z-]+)(?::(\d+))?$/.exec(process.env.RA_FAULT ?? '');
const target = spec?.[1];
const at = spec?.[2] ? Number(spec[2]) : 1;
let hits = 0;

/** True when the fault at `point` fires now; the caller does its partial work, then `die()`s. */
export function faultFires(point: string): boolean {
  return target === point && ++hits === at;
}

/** Kills this process at once, as a power cut or `kill -9` would. */
export function die(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable: SIGKILL did not end the process');
}

/** Dies here if `point` fires. */
export function faultPoint(point: string): void {
  if (target === point && faultFires(point)) die();
}

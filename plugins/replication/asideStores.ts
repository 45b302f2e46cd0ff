/**
 * Stores a replica session moved aside when it made them again from a base copy
 * (`<store>.<why>-<time>`, beside the store; ReplicaSession.rebuild). The diverged ones (an old
 * primary's suffix past the fork, kept for audit) are pruned to the newest few once a rebuild
 * worked: every rebuild leaves a whole copy of the store, and a member that diverges again and
 * again would fill its disk with them. The `replaced` ones (autoReinit) are never removed (README).
 */
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { describeError } from '../../core/errors.js';

export type AsideReason = 'diverged' | 'replaced';

/** The time in an aside store's name: an ISO time with `:` and `.` as `-`, so names sort by time. */
const kAsideTime = /^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/** Where store `dir` is moved aside for `why` at `now`. */
export function asidePath(dir: string, why: AsideReason, now = new Date()): string {
  return `${dir}.${why}-${now.toISOString().replace(/[:.]/g, '-')}`;
}

/**
 * Removes all but the newest `keep` of store `dir`'s aside stores for `why` (names as `asidePath`
 * makes them; other names beside it are left alone), logging each removed one. Returns the paths
 * removed. Never throws: a listing or removal that fails is logged and left for the next time.
 */
export async function pruneAside(dir: string, why: AsideReason, keep: number, log: Logger, storeId: string): Promise<string[]> {
  const parent = path.dirname(path.resolve(dir));
  const prefix = `${path.basename(path.resolve(dir))}.${why}-`;
  let names: string[];
  try {
    names = (await readdir(parent)).filter((n) => n.startsWith(prefix) && kAsideTime.test(n.slice(prefix.length))).sort();
  } catch (err) {
    // The rebuild worked: pruning is housekeeping and never fails it.
    log.warn({ store: storeId, dir: parent, err: describeError(err) }, `cannot list the ${why} stores set aside; none removed`);
    return [];
  }
  const removed: string[] = [];
  for (const name of names.slice(0, Math.max(0, names.length - keep))) {
    const p = path.join(parent, name);
    try {
      await rm(p, { recursive: true, force: true });
      removed.push(p);
      log.info({ store: storeId, removed: p, kept: keep }, `an older ${why} store set aside is removed (only the newest ${keep} are kept)`);
    } catch (err) {
      log.warn({ store: storeId, path: p, err: describeError(err) }, `cannot remove an older ${why} store set aside; trying again after the next rebuild`);
    }
  }
  return removed;
}

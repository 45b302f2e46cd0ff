/**
 * Repairing one page of a store, online or offline:
 *
 *   - nobody has the store open (its lock is free): the lock is taken, the page rebuilt from the
 *     snapshots and WAL (rebuild.ts), verified, written to pages.db and synced, the lock released;
 *   - an application has it open: through its control socket. If the owner has the page in
 *     memory, that copy is the truth and the owner writes it; otherwise the page is rebuilt here
 *     and the owner verifies and writes it, and caches it before any transaction may read it.
 *
 * Nothing is written that does not verify, here and again on the owner's side.
 */
import { open } from 'node:fs/promises';
import { isRaError, raError } from '../../core/errors.js';
import { writePages } from '../pagestore/checkpoint.js';
import { ControlClient } from '../pagestore/controlClient.js';
import { pageLsn, readPageAt } from '../pagestore/format.js';
import { readControl } from '../pagestore/control.js';
import { acquireStoreLock } from '../pagestore/storeLock.js';
import { dataFileOf } from '../pagestore/storeFiles.js';
import { rebuildPage, type RebuiltPage } from './rebuild.js';

export interface RepairTarget {
  /** The store directory. */
  store: string;
  /** The store's snapshot directory (snapshots + WAL archive), if it has one. */
  snapshotDir?: string;
}

export interface PageRepairOutcome {
  pageId: number;
  /** `already-valid`: the page on disk verifies now (repaired meanwhile, or rewritten by its owner). */
  result: 'repaired' | 'already-valid';
  /** Where the good copy came from. */
  source: 'owner-cache' | 'snapshot' | null;
  /** `offline`: under the store lock; `online`: through the owner's control socket. */
  mode: 'offline' | 'online';
  lsn: number | null;
  rebuilt?: Omit<RebuiltPage, 'image'>;
  durationMs: number;
}

/** The page as it is in pages.db now, and what is wrong with it (null: it verifies). */
export async function pageOnDisk(store: string, pageId: number, pageSize: number): Promise<{ image: Buffer; fault: string | null }> {
  const h = await open(dataFileOf(store), 'r');
  try {
    return await readPageAt(h, pageId, pageSize);
  } finally {
    await h.close();
  }
}

export async function repairPage(t: RepairTarget, pageId: number): Promise<PageRepairOutcome> {
  const t0 = performance.now();
  const done = (o: Omit<PageRepairOutcome, 'durationMs' | 'pageId'>): PageRepairOutcome => ({ pageId, ...o, durationMs: Math.round((performance.now() - t0) * 10) / 10 });
  const control = await readControl(t.store);
  if (!Number.isInteger(pageId) || pageId < 0 || pageId >= control.pageCount) {
    throw raError('RA_ERR_PAGE_RANGE', `page ${pageId} is outside store ${t.store} (pages 0..${control.pageCount - 1})`, { details: { pageId } });
  }
  let lock;
  try {
    lock = await acquireStoreLock(t.store);
  } catch (err) {
    if (!isRaError(err, 'RA_ERR_STORE_LOCKED')) throw err;
    return done(await online(t, pageId));
  }
  try {
    const now = await pageOnDisk(t.store, pageId, control.pageSize);
    if (!now.fault) return done({ result: 'already-valid', source: null, mode: 'offline', lsn: pageLsn(now.image) });
    const rebuilt = await rebuild(t, pageId);
    const h = await open(dataFileOf(t.store), 'r+');
    try {
      await writePages(h, control.pageSize, [{ pageId, image: rebuilt.image }]);
    } finally {
      await h.close();
    }
    const { image: _image, ...account } = rebuilt;
    return done({ result: 'repaired', source: 'snapshot', mode: 'offline', lsn: pageLsn(rebuilt.image), rebuilt: account });
  } finally {
    await lock.release();
  }
}

function online(t: RepairTarget, pageId: number): Promise<Omit<PageRepairOutcome, 'durationMs' | 'pageId'>> {
  return ControlClient.with(t.store, async (c) => {
    const seen = await c.readPage(pageId);
    if (seen.cached) {
      const r = await c.writePage(pageId);
      return { result: 'repaired', source: 'owner-cache', mode: 'online', lsn: r.lsn };
    }
    if (!seen.fault) return { result: 'already-valid', source: null, mode: 'online', lsn: pageLsn(seen.image) };
    const rebuilt = await rebuild(t, pageId);
    const r = await c.writePage(pageId, rebuilt.image);
    const { image: _image, ...account } = rebuilt;
    return { result: 'repaired', source: r.source === 'cache' ? 'owner-cache' : 'snapshot', mode: 'online', lsn: r.lsn, rebuilt: account };
  });
}

function rebuild(t: RepairTarget, pageId: number): Promise<RebuiltPage> {
  if (!t.snapshotDir) {
    return Promise.reject(raError('RA_ERR_REPAIR_NO_SOURCE', `page ${pageId} of ${t.store} is bad on disk and not in its owner's memory, and the store has no snapshots.dir to rebuild it from`, { details: { pageId } }));
  }
  return rebuildPage(t.store, t.snapshotDir, pageId);
}

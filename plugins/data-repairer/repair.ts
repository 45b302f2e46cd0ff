/**
 * Repairing one page of a store, online or offline, through its engine's page face:
 *
 *   - nobody has the store open (its lock is free): the lock is taken, a verified copy of the
 *     page asked of the page sources (a snapshot + the WAL, later a replica), written to the data
 *     file and synced, the lock released;
 *   - an application has it open: through the engine's channel to that live owner. If the owner
 *     has the page in memory, that copy is the truth and the owner writes it; otherwise a copy is
 *     had from the page sources and the owner verifies and writes it, and caches it before any
 *     transaction may read it.
 *
 * The owner is tried first (a kept connection, `owners`): when it answers, the store is open
 * and neither its lock nor its state file need be looked at (the owner checks the page id).
 * Only when nobody serves the store is it taken offline.
 *
 * Nothing is written that does not verify, at the source and again on the owner's side.
 */
import { open } from 'node:fs/promises';
import type { LiveOwner, PageEngine } from '../../core/contracts/PageEngine.js';
import type { PageSource, PageSourceAccount, SourcedPage } from '../../core/contracts/PageSource.js';
import { describeError, isRaError, raError } from '../../core/errors.js';
import { OwnerConnections } from './owners.js';

export interface RepairTarget {
  /** The store's id in the config; the store directory when there is none (the CLI). */
  id?: string;
  /** The store directory. */
  store: string;
  /** Where verified copies come from when the owner holds none, asked in turn. */
  sources: readonly PageSource[];
  /** Connections to live owners kept between repairs (the plugin's); none: one per repair. */
  owners?: OwnerConnections;
}

export interface PageRepairOutcome {
  pageId: number;
  /** `already-valid`: the page on disk verifies now (repaired meanwhile, or rewritten by its owner). */
  result: 'repaired' | 'already-valid';
  /** Where the good copy came from: `owner-cache`, or the id of the page source (`snapshot`). */
  source: string | null;
  /** `offline`: under the store lock; `online`: through the live owner. */
  mode: 'offline' | 'online';
  lsn: number | null;
  /** How the page source made its copy (what it started from, log records applied, …). */
  rebuilt?: PageSourceAccount;
  durationMs: number;
}

/** The page as it is in the data file now, and what is wrong with it (null: it verifies). */
export async function pageOnDisk(engine: PageEngine, store: string, pageId: number, pageSize: number): Promise<{ image: Buffer; fault: string | null }> {
  const h = await open(engine.files.dataFile(store), 'r');
  try {
    return await engine.pages.readPage(h, pageId, pageSize);
  } finally {
    await h.close();
  }
}

/** Repairs page `pageId` of the store `t` of `engine`. */
export async function repairPage(engine: PageEngine, t: RepairTarget, pageId: number, signal?: AbortSignal): Promise<PageRepairOutcome> {
  const t0 = performance.now();
  const done = (o: Omit<PageRepairOutcome, 'durationMs' | 'pageId'>): PageRepairOutcome => ({ pageId, ...o, durationMs: Math.round((performance.now() - t0) * 10) / 10 });
  const owners = t.owners ?? new OwnerConnections(0);
  const lease = await owners.lease(engine, t.store);
  if (lease) {
    try {
      const o = await online(engine, t, lease.owner, pageId, signal);
      lease.release();
      return done(o);
    } catch (err) {
      lease.release(err);
      throw err;
    }
  }
  const state = await engine.files.readState(t.store);
  if (!Number.isInteger(pageId) || pageId < 0 || pageId >= state.pageCount) {
    throw raError('RA_ERR_PAGE_RANGE', `page ${pageId} is outside store ${t.store} (pages 0..${state.pageCount - 1})`, { details: { pageId } });
  }
  let lock;
  try {
    lock = await engine.files.lock(t.store);
  } catch (err) {
    if (!isRaError(err, 'RA_ERR_STORE_LOCKED')) throw err;
    // Open by a process that serves no channel (or one that came up meanwhile: connect again).
    const late = await owners.lease(engine, t.store);
    if (!late) throw raError('RA_ERR_CONTROL_UNAVAILABLE', `store ${t.store} is open by a process (its lock is held) that serves no control channel: its pages cannot be repaired while it runs`, { cause: err, details: { pageId } });
    try {
      const o = await online(engine, t, late.owner, pageId, signal);
      late.release();
      return done(o);
    } catch (e) {
      late.release(e);
      throw e;
    }
  }
  try {
    const now = await pageOnDisk(engine, t.store, pageId, state.pageSize);
    if (!now.fault) return done({ result: 'already-valid', source: null, mode: 'offline', lsn: engine.pages.lsn(now.image) });
    const got = await fromSources(engine, t, pageId, signal);
    const h = await open(engine.files.dataFile(t.store), 'r+');
    try {
      await engine.pages.writePages(h, state.pageSize, [{ pageId, image: got.page.image }]);
    } finally {
      await h.close();
    }
    return done({ result: 'repaired', source: got.source, mode: 'offline', lsn: engine.pages.lsn(got.page.image), rebuilt: got.page.account });
  } finally {
    await lock.release();
  }
}

async function online(engine: PageEngine, t: RepairTarget, owner: LiveOwner, pageId: number, signal?: AbortSignal): Promise<Omit<PageRepairOutcome, 'durationMs' | 'pageId'>> {
  const seen = await owner.readPage(pageId);
  if (seen.cached) {
    const r = await owner.installPage(pageId);
    return { result: 'repaired', source: 'owner-cache', mode: 'online', lsn: r.lsn };
  }
  if (!seen.fault) return { result: 'already-valid', source: null, mode: 'online', lsn: engine.pages.lsn(seen.image) };
  const got = await fromSources(engine, t, pageId, signal, owner);
  const r = await owner.installPage(pageId, got.page.image, got.page.asOfLsn);
  return { result: 'repaired', source: r.source === 'cache' ? 'owner-cache' : got.source, mode: 'online', lsn: r.lsn, rebuilt: got.page.account };
}

/**
 * The order in which sources are asked (after the owner's cache, asked first by repairPage): a
 * replica's copy — the page as the primary last wrote it, read off a live copy — before a
 * rebuild from a snapshot and the WAL (issue #14: cache, lowest-lag replica, snapshot + WAL).
 * Stable otherwise.
 */
export function orderSources(sources: readonly PageSource[]): PageSource[] {
  const rank = (s: PageSource) => (s.id === 'replica' ? 0 : 1);
  return [...sources].sort((a, b) => rank(a) - rank(b));
}

/**
 * A verified copy of the page from the first source that has one. When none has, one error
 * (RA_ERR_REPAIR_NO_SOURCE) says what each source answered.
 */
async function fromSources(engine: PageEngine, t: RepairTarget, pageId: number, signal?: AbortSignal, owner?: LiveOwner): Promise<{ source: string; page: SourcedPage }> {
  const store = { id: t.id ?? t.store, path: t.store, engine, ...(owner ? { owner } : {}) };
  const answers: string[] = [];
  const problems: Array<{ source: string; error: string }> = [];
  for (const s of t.sources) {
    signal?.throwIfAborted();
    try {
      const page = await s.pageFor(store, pageId, signal);
      if (page) return { source: page.source ?? s.id, page };
      answers.push(`${s.id}: keeps no copy of this store`);
    } catch (err) {
      if (signal?.aborted) throw err;
      answers.push(`${s.id}: ${describeError(err)}`);
      problems.push({ source: s.id, error: describeError(err) });
    }
  }
  throw noSourceError(t, pageId, answers, problems);
}

/** RA_ERR_REPAIR_NO_SOURCE: what each source answered for the page. */
export function noSourceError(t: RepairTarget, pageId: number, answers: readonly string[], problems: ReadonlyArray<{ source: string; error: string }>): Error {
  const why = t.sources.length === 0 ? 'no page source (snapshots, replicas) is loaded' : `no page source can give a verified copy (${answers.join('; ')})`;
  return raError('RA_ERR_REPAIR_NO_SOURCE', `page ${pageId} of ${t.store} is bad on disk and not in its owner's memory, and ${why}`, { details: { pageId, problems } });
}

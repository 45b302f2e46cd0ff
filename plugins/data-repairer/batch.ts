/**
 * Repairing many corrupt pages of one store at once (a scan that finds a burst of them): through
 * its live owner, in a few requests on one connection instead of three per page — the pages'
 * states (`pageStates`), copies of the bad ones from each source in turn, asked for all of them
 * at once where the source can (`PageSource.pagesFor`: the replicas, in one request to the owner),
 * and one install of them all (`installPages`, one data-file sync per request). Each page is
 * checked as alone — by its source, and by the owner before it writes (not stale, verifies) —
 * and a page refused fails alone: the others are installed.
 *
 * A store nobody has open, or an owner without the batch requests, is repaired page by page
 * (`repairPage`).
 */
import type { LiveOwner, PageEngine } from '../../core/contracts/PageEngine.js';
import type { SourcedPage } from '../../core/contracts/PageSource.js';
import { describeError } from '../../core/errors.js';
import { OwnerConnections } from './owners.js';
import { noSourceError, repairPage, type PageRepairOutcome, type RepairTarget } from './repair.js';

/** Pages fetched, then installed, at a time: the owner fetches the next chunk while it writes one. */
const kChunkPages = 256;

/** One page's end in a batch: repaired (or found valid), or why not. */
export type PageBatchOutcome = { pageId: number; outcome: PageRepairOutcome; error?: undefined } | { pageId: number; outcome?: undefined; error: Error };

/** Repairs the pages `pageIds` (duplicates once) of the store `t`; one answer per page, in order. */
export async function repairPages(engine: PageEngine, t: RepairTarget, pageIds: readonly number[], signal?: AbortSignal): Promise<PageBatchOutcome[]> {
  const ids = [...new Set(pageIds)];
  const owners = t.owners ?? new OwnerConnections(0);
  const lease = await owners.lease(engine, t.store);
  const o = lease?.owner;
  if (!lease || !o?.pageStates || !o.installPages) {
    lease?.release();
    const out: PageBatchOutcome[] = [];
    for (const pageId of ids) {
      signal?.throwIfAborted();
      out.push(await repairPage(engine, { ...t, owners }, pageId, signal).then((outcome) => ({ pageId, outcome }), (error: Error) => ({ pageId, error })));
    }
    return out;
  }
  try {
    const out = await online(engine, t, o as Required<Pick<LiveOwner, 'pageStates' | 'installPages'>> & LiveOwner, ids, signal);
    lease.release();
    return out;
  } catch (err) {
    lease.release(err);
    throw err;
  }
}

async function online(engine: PageEngine, t: RepairTarget, owner: Required<Pick<LiveOwner, 'pageStates' | 'installPages'>> & LiveOwner, ids: number[], signal?: AbortSignal): Promise<PageBatchOutcome[]> {
  const t0 = performance.now();
  const ms = () => Math.round((performance.now() - t0) * 10) / 10;
  const ended = new Map<number, PageBatchOutcome>();
  const install: Array<{ pageId: number; image?: Buffer; asOfLsn?: number }> = [];
  const bad: number[] = [];
  for (const s of await owner.pageStates(ids)) {
    if (s.error) ended.set(s.pageId, s);
    else if (s.value.cached) install.push({ pageId: s.pageId });
    else if (s.value.fault) bad.push(s.pageId);
    else ended.set(s.pageId, { pageId: s.pageId, outcome: { pageId: s.pageId, result: 'already-valid', source: null, mode: 'online', lsn: s.value.lsn, durationMs: ms() } });
  }
  const got = new Map<number, { source: string; page: SourcedPage } | Error>();
  const end = (rs: Awaited<ReturnType<typeof owner.installPages>>) => {
    for (const r of rs) {
      if (r.error) {
        ended.set(r.pageId, r);
        continue;
      }
      const g = got.get(r.pageId);
      const from = g && !(g instanceof Error) ? g : null;
      const source = r.value.source === 'cache' ? 'owner-cache' : (from?.source ?? 'unknown');
      ended.set(r.pageId, { pageId: r.pageId, outcome: { pageId: r.pageId, result: 'repaired', source, mode: 'online', lsn: r.value.lsn, ...(from && r.value.source === 'image' ? { rebuilt: from.page.account } : {}), durationMs: ms() } });
    }
  };
  const installs: Array<Promise<void>> = [];
  try {
    // Chunk by chunk: a chunk's install is asked before the next chunk's copies, and the owner
    // fetches those while it writes (replica-pages runs beside the request before it).
    for (let i = 0; i < bad.length || i === 0; i += kChunkPages) {
      const chunk = bad.slice(i, i + kChunkPages);
      const g = chunk.length > 0 ? await fromSources(engine, t, owner, chunk, signal) : new Map<number, { source: string; page: SourcedPage } | Error>();
      for (const pageId of chunk) {
        const x = g.get(pageId)!;
        got.set(pageId, x);
        if (x instanceof Error) ended.set(pageId, { pageId, error: x });
        else install.push({ pageId, image: x.page.image, ...(x.page.asOfLsn !== undefined ? { asOfLsn: x.page.asOfLsn } : {}) });
      }
      signal?.throwIfAborted();
      if (install.length > 0) installs.push(owner.installPages(install.splice(0)).then(end));
    }
  } finally {
    await Promise.allSettled(installs);
  }
  await Promise.all(installs);
  return ids.map((pageId) => ended.get(pageId) ?? { pageId, error: new Error(`page ${pageId}: the owner did not answer for it`) });
}

/** A verified copy of each page from the first source that has one, or the error saying what each answered. */
async function fromSources(engine: PageEngine, t: RepairTarget, owner: LiveOwner, pageIds: readonly number[], signal?: AbortSignal): Promise<Map<number, { source: string; page: SourcedPage } | Error>> {
  const store = { id: t.id ?? t.store, path: t.store, engine, owner };
  const answers = new Map(pageIds.map((p) => [p, [] as string[]]));
  const problems = new Map(pageIds.map((p) => [p, [] as Array<{ source: string; error: string }>]));
  const out = new Map<number, { source: string; page: SourcedPage } | Error>();
  let pending = [...pageIds];
  const failed = (s: string, pageId: number, err: unknown) => {
    answers.get(pageId)!.push(`${s}: ${describeError(err)}`);
    problems.get(pageId)!.push({ source: s, error: describeError(err) });
  };
  for (const s of t.sources) {
    if (pending.length === 0) break;
    signal?.throwIfAborted();
    const answered = new Map<number, SourcedPage | null | Error>();
    try {
      if (s.pagesFor) {
        const rs = await s.pagesFor(store, pending, signal);
        for (const p of pending) answered.set(p, null);
        for (const r of rs ?? []) answered.set(r.pageId, r.error ?? r.page);
      } else {
        for (const p of pending) {
          signal?.throwIfAborted();
          answered.set(p, await s.pageFor(store, p, signal).catch((err: Error) => (signal?.aborted ? Promise.reject(err) : err)));
        }
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      for (const p of pending) answered.set(p, err as Error);
    }
    const next: number[] = [];
    for (const p of pending) {
      const a = answered.get(p);
      if (a instanceof Error) failed(s.id, p, a);
      else if (a) out.set(p, { source: a.source ?? s.id, page: a });
      else answers.get(p)!.push(`${s.id}: keeps no copy of this store`);
      if (!a || a instanceof Error) next.push(p);
    }
    pending = next;
  }
  for (const p of pending) out.set(p, noSourceError(t, p, answers.get(p)!, problems.get(p)!));
  return out;
}

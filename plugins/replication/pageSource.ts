/**
 * The replicas as a page source (core/contracts/PageSource.ts; DESIGN.md "Page repair from a
 * replica"): a corrupt page of a primary comes back from its replica with the lowest lag. The
 * replicas' connections are held by the store's owner (its sender), not by this agent, so the
 * source asks the owner (`LiveOwner.replicaPage`): the owner asks the streaming replicas in order
 * of lag for the page with its log applied up to the owner's flushed LSN, and returns the first
 * copy that verifies and is not older than the newest change it logged or held for the page — a
 * stale copy is a lost write, not a repair, and the next replica (then the next source) is asked.
 * A burst is asked in one go (`pagesFor`, the owner's `replicaPages`: the requests in flight to
 * the replica together), each page checked and answered apart.
 *
 * The owner is asked on the repairer's connection when it passes one (`store.owner`), else on a
 * connection of the source's own. The repair names the source `replica:<id>`. With no live owner
 * there is nobody to reach the replicas through: a known primary says so (the repairer goes on
 * to the next source).
 */
import type { LiveOwner } from '../../core/contracts/PageEngine.js';
import type { PageSource, PageSourceStore, SourcedPage } from '../../core/contracts/PageSource.js';
import { isRaError, raError } from '../../core/errors.js';
import './errors.js';

export const REPLICA_SOURCE_ID = 'replica';

const sourced = (got: { image: Buffer; lsn: number; replica: string }): SourcedPage => ({
  image: got.image,
  lsn: got.lsn,
  source: `${REPLICA_SOURCE_ID}:${got.replica}`,
  account: { from: `replica ${got.replica}`, recordsApplied: 0, replica: got.replica },
});

/**
 * `isPrimary(store)`: true for a store known to be a replication primary, false for one known not
 * to be (the source keeps nothing of it: null), undefined when unknown (the CLI, without a config):
 * then a store whose owner is not running, or not a primary, gets null too.
 */
export function replicaPageSource(isPrimary: (store: PageSourceStore) => boolean | undefined): PageSource {
  /** Runs `fn` with the owner (null: this source keeps nothing of the store). */
  const withOwner = async <T>(store: PageSourceStore, pageIds: readonly number[], fn: (owner: LiveOwner) => Promise<T>, signal?: AbortSignal): Promise<T | null> => {
    const known = isPrimary(store);
    if (known === false) return null;
    signal?.throwIfAborted();
    let owner = store.owner;
    const own = !owner;
    if (!owner) {
      try {
        owner = await store.engine.connectOwner(store.path, { timeoutMs: 10_000 });
      } catch (err) {
        if (known === undefined && isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) return null;
        throw raError('RA_ERR_REPL_NO_OWNER', `the store's owner cannot be reached, and its replicas are reached only through it: ${(err as Error).message}`, { cause: err, details: { pageIds } });
      }
    }
    try {
      if (known === undefined && (await owner.status()).replication === undefined) return null;
      return await fn(owner);
    } finally {
      if (own) owner.close();
    }
  };
  return {
    id: REPLICA_SOURCE_ID,
    pageFor: (store, pageId, signal) => withOwner(store, [pageId], async (owner) => sourced(await owner.replicaPage(pageId)), signal),
    pagesFor: (store, pageIds, signal) =>
      withOwner(store, pageIds, async (owner) => {
        if (!owner.replicaPages) {
          const out = [];
          for (const pageId of pageIds) out.push(await owner.replicaPage(pageId).then((got) => ({ pageId, page: sourced(got) }), (error: Error) => ({ pageId, error })));
          return out;
        }
        return (await owner.replicaPages(pageIds)).map((r) => (r.error ? { pageId: r.pageId, error: r.error } : { pageId: r.pageId, page: sourced(r.value) }));
      }, signal),
  };
}

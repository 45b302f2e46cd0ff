/**
 * Batches of page repairs on the owner's side (the control socket's `page-states`,
 * `replica-pages`, `write-pages`): a burst of corrupt pages (a scan that finds many) is repaired
 * with a few requests and one data-file sync per batch, not three requests and a sync per page
 * (plugins/replication/DESIGN.md, "Page repair from a replica"). Every page goes through the same
 * checks as alone (`PageStore.repairPage`, `replicaPage`); one refused is answered as such and
 * the others go on.
 */
import { describeError, isRaError } from '../../core/errors.js';
import type { PageImage } from './checkpoint.js';
import type { PageBatchAnswer } from './storeTypes.js';

/** Most pages one batch request may name (the request line's limit bounds `write-pages` first). */
export const MAX_BATCH_PAGES = 4096;

/** A page's failure, as a batch answers it. */
export function batchError(pageId: number, err: unknown): PageBatchAnswer<never> {
  const reason = isRaError(err) && typeof err.details.reason === 'string' ? err.details.reason : undefined;
  return { pageId, error: { code: isRaError(err) ? err.code : 'RA_ERR_CONTROL', message: describeError(err), ...(reason ? { reason } : {}) } };
}

/** `fn` for each page, concurrently; a page that fails is answered with its error. */
export function eachPage<T extends object>(pageIds: readonly number[], fn: (pageId: number) => Promise<T>): Promise<Array<PageBatchAnswer<T>>> {
  return Promise.all(pageIds.map((pageId) => fn(pageId).then((v) => ({ ...v, pageId }), (err: unknown) => batchError(pageId, err))));
}

/** How one page of a batch is installed: `write` puts its checked image on disk (the group's write). */
export type InstallOne<R> = (pageId: number, image: Uint8Array | undefined, write: (pageId: number, image: Buffer) => Promise<void>, asOfLsn?: number) => Promise<R>;

/**
 * Installs `pages` (each checked by `install`, as alone) and writes every image that passed its
 * checks with one call of `flush` (one data-file sync), once each page has passed or failed its
 * checks. A page named twice is refused (its second install would wait for the first, which
 * waits for the group).
 */
export async function installBatch<R extends object>(pages: ReadonlyArray<{ pageId: number; image?: Uint8Array; asOfLsn?: number }>, install: InstallOne<R>, flush: (images: PageImage[]) => Promise<void>): Promise<Array<PageBatchAnswer<R>>> {
  const seen = new Set<number>();
  const unique = pages.map((p) => {
    const dup = seen.has(p.pageId);
    seen.add(p.pageId);
    return dup;
  });
  const group = groupWrite(pages.length, flush);
  return Promise.all(pages.map(async ({ pageId, image, asOfLsn }, i) => {
    let joined = false;
    try {
      if (unique[i]) throw new Error(`page ${pageId} is named more than once in the batch`);
      const r = await install(pageId, image, (id, img) => {
        joined = true;
        return group.join({ pageId: id, image: img });
      }, asOfLsn);
      return { ...r, pageId };
    } catch (err) {
      return batchError(pageId, err);
    } finally {
      if (!joined) group.leave();
    }
  }));
}

/**
 * Waits for `expected` participants, each of which joins with a page (answered once the group's
 * one write is done) or leaves (its checks failed, or it needed no image written); then writes.
 */
function groupWrite(expected: number, flush: (images: PageImage[]) => Promise<void>): { join(p: PageImage): Promise<void>; leave(): void } {
  const images: PageImage[] = [];
  let left = expected;
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const written = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  written.catch(() => undefined);
  const arrive = () => {
    if (--left > 0) return;
    if (images.length === 0) resolve();
    else flush(images).then(resolve, reject);
  };
  return {
    join(p) {
      images.push(p);
      arrive();
      return written;
    },
    leave: arrive,
  };
}

/**
 * The `clear-caches` healing action: asks the live owner of each store a failure names to let go
 * of the memory it can do without (its clean cached pages: copies of the disk, read again on
 * demand), through the store's control socket (`drop-caches`). The default answer to
 * `memory-pressure`, which names the stores of the supervised processes, biggest RSS first.
 *
 * Verified independently of the op's answer: the owner's status, read again afterwards, shows
 * at most half the clean cached pages it had before (none, if it had none); the owner's RSS
 * before and after, read from /proc, goes in the journal (V8 returns freed buffers to the system
 * at its next collection, so RSS alone is no proof either way).
 */
import { readFile } from 'node:fs/promises';
import { definePlugin, many } from '../../core/plugin.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { type Failure, storesOf } from '../../core/contracts/Failure.js';
import { withOwner, type OwnerStatus } from '../../core/contracts/PageEngine.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { describeError, raError } from '../../core/errors.js';

/** Clean (droppable) pages an owner's status shows. */
const cleanPages = (s: OwnerStatus) => Math.max(0, (s.cache?.pages ?? 0) - (s.cache?.dirty ?? 0));

/** A process's resident set, bytes, from /proc (null when it cannot be read). */
export async function rssOf(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const m = text ? /^VmRSS:\s+(\d+)\s+kB/m.exec(text) : null;
  return m ? Number(m[1]) * 1024 : null;
}

interface Cleared {
  store: string;
  pid: number;
  cleanBefore: number;
  pagesDropped: number;
  bytesReleased: number;
  rssBefore: number | null;
  rssAfter: number | null;
}

export default definePlugin({
  id: 'clear-caches',
  contractVersion: '^1.0.0',
  deps: { engines: many(StorageEngine) },
  provides: [HealingAction],
  register(ctx, { engines }) {
    const stores = new Map(storesWithPageEngines(engines, ctx.config.stores).usable.map((s) => [s.id, { dir: s.path, engine: s.pageEngine }]));
    const named = (f: Failure) => storesOf(f).filter((id) => stores.has(id));
    /** What apply saw before it asked, per failure: verify compares with it. */
    const seen = new Map<string, Cleared[]>();

    const clear = (id: string): Promise<Cleared> => {
      const { dir, engine } = stores.get(id)!;
      return withOwner(engine, dir, async (owner) => {
        if (!owner.dropCaches) throw raError('RA_ERR_CONTROL', `the owner of store "${id}" cannot drop its caches (an older engine)`);
        const before = await owner.status();
        const rssBefore = await rssOf(before.pid);
        const d = await owner.dropCaches();
        return { store: id, pid: before.pid, cleanBefore: cleanPages(before), pagesDropped: d.pagesDropped, bytesReleased: d.bytesReleased, rssBefore, rssAfter: await rssOf(before.pid) };
      });
    };

    const action: HealingAction = {
      id: 'clear-caches',
      canHandle: (f) => named(f).length > 0,
      async apply(f, hctx) {
        const done: Cleared[] = [];
        const failed: string[] = [];
        for (const id of named(f)) {
          if (hctx.signal.aborted) break;
          try {
            done.push(await clear(id));
          } catch (err) {
            failed.push(`${id}: ${describeError(err)}`);
            hctx.log.warn({ store: id, err: describeError(err) }, 'cannot clear the caches of store');
          }
        }
        if (done.length === 0) throw raError('RA_ERR_CONTROL', `no store's caches could be cleared: ${failed.join('; ') || 'none named'}`);
        seen.set(f.id, done);
        const released = done.reduce((a, d) => a + d.bytesReleased, 0);
        return {
          summary: `cleared the caches of ${done.map((d) => `"${d.store}" (pid ${d.pid}, ${d.pagesDropped} pages)`).join(', ')}: ${released} bytes released` + (failed.length ? `; not cleared: ${failed.join('; ')}` : ''),
          details: { stores: done, failed, bytesReleased: released },
        };
      },
      async verify(f, hctx) {
        const done = seen.get(f.id);
        seen.delete(f.id);
        if (!done) return false;
        for (const d of done) {
          const { dir, engine } = stores.get(d.store)!;
          const now = await withOwner(engine, dir, (o) => o.status());
          const clean = cleanPages(now);
          const rss = await rssOf(now.pid);
          hctx.log.info({ store: d.store, cleanBefore: d.cleanBefore, cleanNow: clean, rssBefore: d.rssBefore, rssNow: rss }, 'caches after clearing');
          if (now.pid !== d.pid || clean > Math.floor(d.cleanBefore / 2)) return false;
        }
        return true;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

/**
 * Finding a store's engine by contract: among the `StorageEngine`s the plugin got as a typed
 * dependency (`deps: { engines: many(StorageEngine) }`), the one named by the store's config
 * (`stores[].engine`), and its page face when the consumer needs one. No consumer names an
 * engine or imports one.
 */
import { isPageEngine, type PageEngine } from './contracts/PageEngine.js';
import type { StorageEngine } from './contracts/StorageEngine.js';

/** The engine called `name`, or undefined. */
export function engineNamed(engines: readonly StorageEngine[], name: string): StorageEngine | undefined {
  return engines.find((e) => e.name === name);
}

/** The configured stores whose engine has a page face, each with it; and those skipped, with why. */
export function storesWithPageEngines<S extends { id: string; engine: string }>(engines: readonly StorageEngine[], stores: readonly S[]): { usable: Array<S & { pageEngine: PageEngine }>; skipped: Array<{ store: S; reason: string }> } {
  const usable: Array<S & { pageEngine: PageEngine }> = [];
  const skipped: Array<{ store: S; reason: string }> = [];
  for (const s of stores) {
    const e = engineNamed(engines, s.engine);
    if (!e) skipped.push({ store: s, reason: `no loaded plugin provides the storage engine "${s.engine}"` });
    else if (!isPageEngine(e)) skipped.push({ store: s, reason: `the storage engine "${s.engine}" has no page face` });
    else usable.push({ ...s, pageEngine: e });
  }
  return { usable, skipped };
}

/**
 * The pid of the live process that has the store open (holds its lock), or null: none, or the
 * store's engine has no page face to ask. A store with a live owner was recovered by that owner
 * when it opened it, and only the owner may write it: asking for its crash recovery is moot.
 */
export async function liveOwnerOf(engines: readonly StorageEngine[], store: { id: string; engine: string; path: string }): Promise<number | null> {
  const [usable] = storesWithPageEngines(engines, [store]).usable;
  return usable ? usable.pageEngine.files.lockHolder(store.path) : null;
}

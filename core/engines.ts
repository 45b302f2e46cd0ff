/**
 * Finding a store's engine by contract: the `StorageEngine` provided under the name its config
 * gives (`stores[].engine`), and its page face when the consumer needs one. No consumer names an
 * engine or imports one.
 */
import type { DependencyContainer } from 'tsyringe';
import { isPageEngine, type PageEngine } from './contracts/PageEngine.js';
import { StorageEngine } from './contracts/StorageEngine.js';
import { raError } from './errors.js';

/** Every engine provided so far. */
export function engines(container: DependencyContainer): StorageEngine[] {
  return container.isRegistered(StorageEngine, true) ? container.resolveAll<StorageEngine>(StorageEngine) : [];
}

/** The engine called `name`, or undefined. */
export function engineNamed(container: DependencyContainer, name: string): StorageEngine | undefined {
  return engines(container).find((e) => e.name === name);
}

/**
 * The page face of the engine called `name`, or null when that engine is not loaded or has no
 * page face (a store such a consumer cannot protect; it says so in its log).
 */
export function pageEngineNamed(container: DependencyContainer, name: string): PageEngine | null {
  const e = engineNamed(container, name);
  return e && isPageEngine(e) ? e : null;
}

/** Like `pageEngineNamed`, but a clear error instead of null. */
export function requirePageEngine(container: DependencyContainer, name: string, what: string): PageEngine {
  const e = engineNamed(container, name);
  if (!e) throw raError('RA_ERR_CONFIG', `${what}: no loaded plugin provides the storage engine "${name}"`, { details: { engine: name } });
  if (!isPageEngine(e)) throw raError('RA_ERR_CONFIG', `${what}: the storage engine "${name}" has no page face (core/contracts/PageEngine.ts), which this needs`, { details: { engine: name } });
  return e;
}

/** The configured stores whose engine has a page face, each with it; and those skipped, with why. */
export function storesWithPageEngines<S extends { id: string; engine: string }>(container: DependencyContainer, stores: readonly S[]): { usable: Array<S & { pageEngine: PageEngine }>; skipped: Array<{ store: S; reason: string }> } {
  const usable: Array<S & { pageEngine: PageEngine }> = [];
  const skipped: Array<{ store: S; reason: string }> = [];
  for (const s of stores) {
    const e = engineNamed(container, s.engine);
    if (!e) skipped.push({ store: s, reason: `no loaded plugin provides the storage engine "${s.engine}"` });
    else if (!isPageEngine(e)) skipped.push({ store: s, reason: `the storage engine "${s.engine}" has no page face` });
    else usable.push({ ...s, pageEngine: e });
  }
  return { usable, skipped };
}

/**
 * The engines the CLI knows without an agent: the built-in ones, each loaded through its
 * plugin's entry point only when a command needs a store. A command finds a store's engine by
 * asking each one whether the directory holds one of its stores, or by the name its config
 * gives; it then works through the engine's page face (core/contracts/PageEngine.ts).
 */
import { isPageEngine, type PageEngine } from '../core/contracts/PageEngine.js';
import { raError } from '../core/errors.js';

/** The name `stores[].engine` defaults to, and the engine tried for a directory no engine recognises. */
export const DEFAULT_ENGINE = 'pagestore';

type EngineLoader = () => Promise<PageEngine>;

/** Built-in engines by name; loaded on first use. */
const builtin: ReadonlyMap<string, EngineLoader> = new Map([
  ['pagestore', async () => (await import('../plugins/pagestore/face.js')).makePageStoreEngine()],
]);

/** The names of the built-in engines. */
export function builtinEngineNames(): string[] {
  return [...builtin.keys()];
}

/** The page engine called `name`. */
export async function pageEngineNamed(name: string): Promise<PageEngine> {
  const load = builtin.get(name);
  if (!load) throw raError('RA_ERR_USAGE', `unknown storage engine "${name}" (built in: ${[...builtin.keys()].join(', ')})`, { details: { engine: name } });
  const e = await load();
  if (!isPageEngine(e)) throw raError('RA_ERR_USAGE', `the storage engine "${name}" has no page face`);
  return e;
}

/**
 * The page engine of the store in `dir`: the one named, else the first built-in engine that
 * recognises the directory, else the default (whose own checks then say what is wrong).
 */
export async function pageEngineFor(dir: string, name?: string): Promise<PageEngine> {
  if (name) return pageEngineNamed(name);
  for (const n of builtin.keys()) {
    const e = await pageEngineNamed(n);
    if (e.files.exists(dir)) return e;
  }
  return pageEngineNamed(DEFAULT_ENGINE);
}

/**
 * The extension point for config: a plugin contributes the section it reads (`health:`, or
 * `snapshots:` inside each store) as a piece of schema, and the core composes the pieces of the
 * plugins the app layer loads with its own sections into one schema (configLoader.ts). The core
 * names no plugin section; a section whose plugin is not loaded is an unknown key.
 *
 * A section lives in its plugin's `configSection.ts`, a small module that imports zod and
 * core/config/valueTypes.ts and nothing heavy, so validating a config never loads a plugin's
 * runtime. The same module adds the section's type to PluginConfigSections or
 * StoreConfigSections by declaration merging, so `config.health` is typed for its plugin
 * (Fastify's `declare module 'fastify'` decorators work the same way).
 */
import type { z } from 'zod';
import { raError } from '../errors.js';

/** Where a section sits: a top-level key of the config, or a key of every `stores[]` entry. */
export type SectionScope = 'root' | 'store';

/**
 * The plugin sections at the top level of the validated config, by key. Empty here; each
 * plugin's configSection.ts adds its own:
 * `declare module '…/core/config/section.js' { interface PluginConfigSections { health: HealthConfig } }`.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface PluginConfigSections {}

/** The plugin sections of each validated `stores[]` entry, by key (filled like PluginConfigSections). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- filled by declaration merging
export interface StoreConfigSections {}

/** A piece of the config schema, contributed by a plugin. */
export interface ConfigSection<S extends z.ZodType = z.ZodType> {
  /** The id of the plugin that reads this section (named in errors about it). */
  readonly plugin: string;
  /** The section's key: `health` at the top level, `snapshots` inside a store. */
  readonly key: string;
  readonly scope: SectionScope;
  /**
   * The section's schema as it applies to its key: end it with `.optional()` when the section
   * may be left out, or `.prefault({})` when its defaults apply then. Unknown keys inside it
   * should be errors (`z.strictObject`), as everywhere else in the config.
   */
  readonly schema: S;
  /** Resolves the section's relative paths against the config file's directory (`resolve`). */
  resolvePaths?(value: z.output<S>, resolve: (p: string) => string): z.output<S>;
  /**
   * A rule across the whole config that the section alone cannot state (a store section allowed
   * in one store only…): called with the parsed config, reports each problem by `issue(path,
   * message)`, so the config is refused at validation like any schema error.
   */
  checkConfig?(config: Readonly<Record<string, unknown>>, issue: (path: ReadonlyArray<string | number>, message: string) => void): void;
}

const KEY = /^[a-z][A-Za-z0-9]{0,62}$/;
const PLUGIN_ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Declares a config section. Validates it where it enters, naming the plugin and the field. */
export function defineConfigSection<S extends z.ZodType>(def: ConfigSection<S>): ConfigSection<S> {
  const where = `config section ${JSON.stringify(def?.key)} of plugin ${JSON.stringify(def?.plugin)}`;
  if (typeof def?.plugin !== 'string' || !PLUGIN_ID.test(def.plugin)) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: plugin must be a plugin id (got ${JSON.stringify(def?.plugin)})`);
  }
  if (typeof def.key !== 'string' || !KEY.test(def.key)) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: key must be a camelCase name such as "snapshots" (got ${JSON.stringify(def.key)})`);
  }
  if (def.scope !== 'root' && def.scope !== 'store') {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: scope must be "root" or "store" (got ${JSON.stringify(def.scope)})`);
  }
  if (typeof (def.schema as { safeParse?: unknown } | undefined)?.safeParse !== 'function') {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: schema must be a zod schema`);
  }
  if (def.resolvePaths !== undefined && typeof def.resolvePaths !== 'function') {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: resolvePaths must be a function`);
  }
  if (def.checkConfig !== undefined && typeof def.checkConfig !== 'function') {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: checkConfig must be a function`);
  }
  return Object.freeze({ ...def });
}

/** Where a section sits, as errors and the JSON Schema name it: `health`, `stores[].snapshots`. */
export function sectionPath(s: Pick<ConfigSection, 'key' | 'scope'>): string {
  return s.scope === 'root' ? s.key : `stores[].${s.key}`;
}

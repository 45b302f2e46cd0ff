/**
 * The one factory for plugins, built-in and third-party (Backstage's `registerInit({ deps })`):
 *
 *   definePlugin({
 *     id: 'recover-store',
 *     contractVersion: '^1.0.0',
 *     deps: { manager: TransactionRollbackManager, metrics: optional(Metrics) },
 *     provides: [HealingAction],
 *     register(ctx, { manager, metrics }) { ctx.provide(HealingAction, …); },
 *   });
 *
 * A plugin says which tokens it needs (`deps`: required, `optional(token)`, or `many(token)` for
 * every provider's value) and which it provides (`provides`); the host derives the start order
 * from that — every provider of a token starts before its consumers — and hands `register` the
 * values resolved. `dependsOn` (plugin ids) still orders too, for plugins that name each other.
 *
 * `register` runs once, in that order, and may `provide` the tokens it declared and return
 * lifecycle hooks. What a plugin provides reaches the shared container only once it has
 * started, so a plugin that fails leaves nothing half-wired.
 */
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import type { ConfigSection } from './config/section.js';
import { raError, type ErrorCatalogue } from './errors.js';
import { tokenId } from './token.js';

/** A dependency that may be absent: resolved to `undefined` when no running plugin provides it. */
export interface OptionalDep<T> {
  readonly token: InjectionToken<T>;
  readonly optional: true;
}

/** Every running provider's value of a token (an extension point), possibly none. */
export interface ManyDep<T> {
  readonly token: InjectionToken<T>;
  readonly many: true;
}

/** One entry of `deps`: a token (required), `optional(token)` or `many(token)`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Dep<T = any> = InjectionToken<T> | OptionalDep<T> | ManyDep<T>;

export type DepsSpec = Readonly<Record<string, Dep>>;

/** What `register` receives for `deps`: each token resolved (`T`, `T | undefined`, `T[]`). */
export type ResolvedDeps<D extends DepsSpec> = {
  readonly [K in keyof D]: D[K] extends ManyDep<infer T> ? T[] : D[K] extends OptionalDep<infer T> ? T | undefined : D[K] extends InjectionToken<infer T> ? T : never;
};

/** Marks a dependency the plugin can work without. */
export function optional<T>(token: InjectionToken<T>): OptionalDep<T> {
  return Object.freeze({ token, optional: true as const });
}

/** Asks for the values of every plugin that provides `token` (started first); `[]` when none does. */
export function many<T>(token: InjectionToken<T>): ManyDep<T> {
  return Object.freeze({ token, many: true as const });
}

/** A dependency as the host sees it. */
export interface DepRequest {
  readonly name: string;
  readonly token: InjectionToken<unknown>;
  readonly kind: 'required' | 'optional' | 'many';
}

/** What `register` receives. */
export interface PluginContext {
  /** The plugin's id. */
  readonly id: string;
  /** The agent's container: resolve core tokens (Config, FailureBus, WorkerPool…) from it. */
  readonly container: DependencyContainer;
  /** A pino child logger bound to `{ plugin: id }`. */
  readonly log: Logger;
  /** `plugins[].options` from the config (empty for built-ins). */
  readonly options: Readonly<Record<string, unknown>>;
  /** The validated agent config. */
  readonly config: AgentConfig;
  /** Aborted when start times out or the agent stops. */
  readonly signal: AbortSignal;
  /**
   * Offers a value under one of the tokens the plugin declared in `provides`. `guard` is the
   * contract's runtime check (e.g. `isHealingAction`); a value that fails it, or a token not
   * declared, is a registration error for this plugin.
   */
  provide<T>(token: InjectionToken<T>, value: T, guard?: (v: unknown) => v is T): void;
}

/** Lifecycle hooks a plugin may return from `register`. */
export interface PluginHooks {
  /** Called after every dependency has started. */
  start?(): void | Promise<void>;
  /** Called in reverse dependency order on shutdown. */
  stop?(): void | Promise<void>;
}

/** What a plugin module exports (its default export, or a named `plugin`). */
export interface PluginDefinition<D extends DepsSpec = DepsSpec> {
  /** Unique, lowercase: `crash-detector`, `acme-pager`. */
  readonly id: string;
  /** Ids of plugins that must start before this one (beside those `deps` implies). */
  readonly dependsOn: readonly string[];
  /** The tokens the plugin needs, by the name `register` gets them under. */
  readonly deps: D;
  /**
   * The tokens the plugin provides. `undefined` only for a third-party plugin written before
   * `provides` existed: it runs isolated, where what it can provide is fixed anyway.
   */
  readonly provides: readonly InjectionToken<unknown>[] | undefined;
  /** The semver range of `CONTRACT_VERSION` this plugin was written against, e.g. `^1.0.0`. */
  readonly contractVersion: string;
  register(ctx: PluginContext, deps: ResolvedDeps<D>): void | PluginHooks | Promise<void | PluginHooks>;
  /** The config sections this plugin reads (its configSection.ts); the app layer composes them into the schema. */
  readonly config?: readonly ConfigSection[];
  /** The error codes this plugin raises (its errors.ts), registered when that module loads. */
  readonly errorCodes?: ErrorCatalogue;
}

/** Brand on every definition made by `definePlugin`; `Symbol.for` so copies of this package agree. */
const kPlugin = Symbol.for('recovery-agent.plugin');

const ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Declares a plugin. Validates the definition where it enters, naming the field at fault. */
export function definePlugin<D extends DepsSpec = Record<never, never>>(def: {
  id: string;
  dependsOn?: readonly string[];
  deps?: D;
  provides?: readonly InjectionToken<unknown>[];
  contractVersion: string;
  register: (ctx: PluginContext, deps: ResolvedDeps<D>) => void | PluginHooks | Promise<void | PluginHooks>;
  config?: readonly ConfigSection[];
  errorCodes?: ErrorCatalogue;
}): PluginDefinition<D> {
  const where = `plugin ${JSON.stringify(def?.id)}`;
  if (typeof def?.id !== 'string' || !ID.test(def.id)) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: id must be lowercase letters, digits, ".", "_" or "-" (got ${JSON.stringify(def?.id)})`);
  }
  if (typeof def.contractVersion !== 'string' || def.contractVersion.length === 0) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: contractVersion must be a semver range such as "^1.0.0" (got ${JSON.stringify(def.contractVersion)})`);
  }
  const dependsOn = def.dependsOn ?? [];
  if (!Array.isArray(dependsOn) || !dependsOn.every((d) => typeof d === 'string')) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: dependsOn must be an array of plugin ids (got ${JSON.stringify(def.dependsOn)})`);
  }
  const deps = (def.deps ?? {}) as D;
  if (typeof deps !== 'object' || deps === null || Array.isArray(deps)) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: deps must be an object of tokens, e.g. { pool: WorkerPool, metrics: optional(Metrics) }`);
  }
  for (const [name, dep] of Object.entries(deps)) {
    if (!isToken(dep) && !(isMarked(dep) && isToken(dep.token))) {
      throw raError('RA_ERR_PLUGIN_LOAD', `${where}: deps.${name} must be a token, optional(token) or many(token) (got ${describe(dep)})`);
    }
  }
  if (def.provides !== undefined && !(Array.isArray(def.provides) && def.provides.every(isToken))) {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: provides must be an array of tokens (got ${describe(def.provides)})`);
  }
  if (typeof def.register !== 'function') {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: register must be a function`);
  }
  const contributions = pluginContributions(where, def);
  return Object.freeze({
    id: def.id,
    dependsOn: Object.freeze([...dependsOn]),
    deps: Object.freeze({ ...deps }),
    provides: def.provides === undefined ? undefined : Object.freeze([...def.provides]),
    contractVersion: def.contractVersion,
    register: def.register,
    ...contributions,
    [kPlugin]: true,
  });
}

/** The `deps` of a definition, as the host resolves them. */
export function depRequests(def: PluginDefinition): DepRequest[] {
  return Object.entries(def.deps).map(([name, dep]) =>
    isMarked(dep) ? { name, token: dep.token, kind: 'many' in dep ? 'many' : 'optional' } : { name, token: dep as InjectionToken<unknown>, kind: 'required' },
  );
}

function isToken(v: unknown): v is InjectionToken<unknown> {
  return typeof v === 'symbol' || typeof v === 'function' || (typeof v === 'string' && v.length > 0);
}

function isMarked(v: unknown): v is OptionalDep<unknown> | ManyDep<unknown> {
  const d = v as { optional?: unknown; many?: unknown } | null;
  return typeof d === 'object' && d !== null && (d.optional === true || d.many === true);
}

function describe(v: unknown): string {
  if (isToken(v)) return tokenId(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Checks a plugin's config sections and error codes: each must name this plugin as its owner. */
function pluginContributions(where: string, def: { id: string; config?: readonly ConfigSection[]; errorCodes?: ErrorCatalogue }): Pick<PluginDefinition, 'config' | 'errorCodes'> {
  const out: { config?: readonly ConfigSection[]; errorCodes?: ErrorCatalogue } = {};
  if (def.config !== undefined) {
    if (!Array.isArray(def.config)) throw raError('RA_ERR_PLUGIN_LOAD', `${where}: config must be an array of config sections (defineConfigSection)`);
    const foreign = def.config.find((s: ConfigSection) => s?.plugin !== def.id);
    if (foreign) throw raError('RA_ERR_PLUGIN_LOAD', `${where}: config section ${JSON.stringify(foreign?.key)} belongs to plugin ${JSON.stringify(foreign?.plugin)}`);
    out.config = Object.freeze([...def.config]);
  }
  if (def.errorCodes !== undefined) {
    if (def.errorCodes?.owner !== def.id) throw raError('RA_ERR_PLUGIN_LOAD', `${where}: errorCodes are defined by ${JSON.stringify(def.errorCodes?.owner)}, not by this plugin (defineErrorCodes(${JSON.stringify(def.id)}, …))`);
    out.errorCodes = def.errorCodes;
  }
  return out;
}

/** Runtime guard for a plugin definition (from `definePlugin`, in this or another copy of the package). */
export function isPluginDefinition(v: unknown): v is PluginDefinition {
  const d = v as (PluginDefinition & { [kPlugin]?: boolean }) | null;
  return typeof d === 'object' && d !== null && d[kPlugin] === true && typeof d.id === 'string' && typeof d.register === 'function';
}

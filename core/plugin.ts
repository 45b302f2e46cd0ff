/**
 * The one factory for plugins, built-in and third-party: `definePlugin({ id, dependsOn,
 * contractVersion, register })`.
 *
 * `register` runs once, in dependency order, and may `provide` extension points (a
 * HealingAction, a Detector, …) and return lifecycle hooks. What a plugin provides reaches the
 * shared container only once it has started, so a plugin that fails leaves nothing half-wired.
 */
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import type { ConfigSection } from './config/section.js';
import { raError, type ErrorCatalogue } from './errors.js';

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
   * Offers an implementation of an extension point. `guard` is the contract's runtime check
   * (e.g. `isHealingAction`); a value that fails it is a registration error for this plugin.
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
export interface PluginDefinition {
  /** Unique, lowercase: `crash-detector`, `acme-pager`. */
  readonly id: string;
  /** Ids of plugins that must start before this one. */
  readonly dependsOn: readonly string[];
  /** The semver range of `CONTRACT_VERSION` this plugin was written against, e.g. `^1.0.0`. */
  readonly contractVersion: string;
  readonly register: (ctx: PluginContext) => void | PluginHooks | Promise<void | PluginHooks>;
  /** The config sections this plugin reads (its configSection.ts); the app layer composes them into the schema. */
  readonly config?: readonly ConfigSection[];
  /** The error codes this plugin raises (its errors.ts), registered when that module loads. */
  readonly errorCodes?: ErrorCatalogue;
}

/** Brand on every definition made by `definePlugin`; `Symbol.for` so copies of this package agree. */
const kPlugin = Symbol.for('recovery-agent.plugin');

const ID = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Declares a plugin. Validates the definition where it enters, naming the field at fault. */
export function definePlugin(def: {
  id: string;
  dependsOn?: readonly string[];
  contractVersion: string;
  register: PluginDefinition['register'];
  config?: readonly ConfigSection[];
  errorCodes?: ErrorCatalogue;
}): PluginDefinition {
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
  if (typeof def.register !== 'function') {
    throw raError('RA_ERR_PLUGIN_LOAD', `${where}: register must be a function`);
  }
  const contributions = pluginContributions(where, def);
  return Object.freeze({ id: def.id, dependsOn: Object.freeze([...dependsOn]), contractVersion: def.contractVersion, register: def.register, ...contributions, [kPlugin]: true });
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

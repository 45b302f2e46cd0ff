/**
 * The plugin host: registers built-in and third-party plugins, starts them in dependency order,
 * stops them in reverse, and isolates them from each other.
 *
 * Isolation: a plugin that throws, or does not finish registering and starting within the
 * start timeout, is marked `failed` and reported by id; plugins that depend on it are marked
 * failed too (they cannot work without it); every other plugin starts as usual.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import semver from 'semver';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import { CONTRACT_VERSION } from './contracts/version.js';
import { describeError, isRaError, raError, type RecoveryAgentError } from './errors.js';
import { isPluginDefinition, type PluginContext, type PluginDefinition, type PluginHooks } from './plugin.js';

export type PluginState = 'registered' | 'starting' | 'running' | 'failed' | 'stopping' | 'stopped';

/** A plugin as `/status` reports it. */
export interface PluginStatus {
  readonly id: string;
  readonly state: PluginState;
  /** `builtin`, or the module a third-party plugin came from. */
  readonly origin: string;
  readonly dependsOn: readonly string[];
  readonly error?: { code: string; message: string };
  readonly startMs?: number;
}

interface Entry {
  def: PluginDefinition;
  origin: string;
  options: Readonly<Record<string, unknown>>;
  state: PluginState;
  error?: RecoveryAgentError;
  startMs?: number;
  hooks?: PluginHooks;
  abort: AbortController;
}

export interface PluginHostOptions {
  container: DependencyContainer;
  log: Logger;
  config: AgentConfig;
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
}

export class PluginHost {
  private readonly entries = new Map<string, Entry>();
  private started: Entry[] = [];

  constructor(private readonly opts: PluginHostOptions) {}

  /** Adds a plugin definition. Rejects duplicates and incompatible contract versions. */
  add(def: PluginDefinition, origin = 'builtin', options: Readonly<Record<string, unknown>> = {}): void {
    if (!isPluginDefinition(def)) {
      throw raError('RA_ERR_PLUGIN_LOAD', `${origin} does not export a plugin made with definePlugin()`);
    }
    const existing = this.entries.get(def.id);
    if (existing) {
      throw raError('RA_ERR_PLUGIN_DUPLICATE', `plugin id "${def.id}" from ${origin} is already registered by ${existing.origin}`);
    }
    if (!semver.validRange(def.contractVersion) || !semver.satisfies(CONTRACT_VERSION, def.contractVersion)) {
      throw raError(
        'RA_ERR_PLUGIN_CONTRACT',
        `plugin "${def.id}" (${origin}) targets contract version ${JSON.stringify(def.contractVersion)}, but this agent provides ${CONTRACT_VERSION}`,
        { details: { plugin: def.id, wanted: def.contractVersion, provided: CONTRACT_VERSION } },
      );
    }
    this.entries.set(def.id, { def, origin, options, state: 'registered', abort: new AbortController() });
  }

  /**
   * Loads a third-party plugin from a path or an npm package name and adds it. The module's
   * default export (or its export named `plugin`) must come from `definePlugin`.
   */
  async load(specifier: string, options: Readonly<Record<string, unknown>> = {}): Promise<PluginDefinition> {
    let mod: Record<string, unknown>;
    try {
      mod = (await import(resolveModule(specifier, this.opts.config.source))) as Record<string, unknown>;
    } catch (err) {
      throw raError('RA_ERR_PLUGIN_LOAD', `cannot load plugin module ${specifier}: ${(err as Error).message}`, { cause: err });
    }
    const def = [mod.default, mod.plugin, (mod.default as Record<string, unknown> | undefined)?.default].find(isPluginDefinition);
    if (!def) throw raError('RA_ERR_PLUGIN_LOAD', `plugin module ${specifier} has no default export made with definePlugin()`);
    this.add(def, specifier, options);
    return def;
  }

  /** Plugins in start order. Throws naming the plugins when a dependency is missing or circular. */
  order(): PluginDefinition[] {
    const out: PluginDefinition[] = [];
    const mark = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string, chain: string[]): void => {
      const state = mark.get(id);
      if (state === 'done') return;
      if (state === 'visiting') {
        const cycle = [...chain.slice(chain.indexOf(id)), id];
        throw raError('RA_ERR_PLUGIN_CYCLE', `plugins depend on each other in a cycle: ${cycle.join(' -> ')}`, { details: { cycle } });
      }
      const entry = this.entries.get(id)!;
      mark.set(id, 'visiting');
      for (const dep of entry.def.dependsOn) {
        if (!this.entries.has(dep)) {
          throw raError('RA_ERR_PLUGIN_MISSING_DEPENDENCY', `plugin "${id}" depends on "${dep}", which is not registered`, { details: { plugin: id, missing: dep } });
        }
        visit(dep, [...chain, id]);
      }
      mark.set(id, 'done');
      out.push(entry.def);
    };
    for (const id of this.entries.keys()) visit(id, []);
    return out;
  }

  /** Registers and starts every plugin in dependency order. Failed plugins are isolated. */
  async startAll(): Promise<PluginStatus[]> {
    const order = this.order();
    for (const def of order) {
      const entry = this.entries.get(def.id)!;
      const failedDep = def.dependsOn.find((d) => this.entries.get(d)!.state !== 'running');
      if (failedDep) {
        this.fail(entry, raError('RA_ERR_PLUGIN_START', `plugin "${def.id}" not started: its dependency "${failedDep}" is not running`));
        continue;
      }
      await this.startOne(entry);
    }
    return this.status();
  }

  /** Stops running plugins in reverse start order; errors and timeouts are logged, not thrown. */
  async stopAll(): Promise<void> {
    const timeout = this.opts.stopTimeoutMs ?? 10_000;
    for (const entry of [...this.started].reverse()) {
      if (entry.state !== 'running') continue;
      entry.state = 'stopping';
      entry.abort.abort();
      const log = this.childLog(entry.def.id);
      try {
        await withTimeout(Promise.resolve().then(() => entry.hooks?.stop?.()), timeout, () =>
          raError('RA_ERR_PLUGIN_TIMEOUT', `plugin "${entry.def.id}" did not stop within ${timeout} ms`),
        );
        log.info('plugin stopped');
      } catch (err) {
        log.error({ err: describeError(err) }, 'plugin failed to stop cleanly');
      }
      entry.state = 'stopped';
    }
    this.started = [];
  }

  status(): PluginStatus[] {
    return [...this.entries.values()].map((e) => ({
      id: e.def.id,
      state: e.state,
      origin: e.origin,
      dependsOn: e.def.dependsOn,
      ...(e.error ? { error: { code: e.error.code, message: e.error.message } } : {}),
      ...(e.startMs !== undefined ? { startMs: e.startMs } : {}),
    }));
  }

  private async startOne(entry: Entry): Promise<void> {
    const { def } = entry;
    const log = this.childLog(def.id);
    const provided: Array<{ token: InjectionToken<unknown>; value: unknown }> = [];
    const ctx: PluginContext = {
      id: def.id,
      container: this.opts.container,
      log,
      options: entry.options,
      config: this.opts.config,
      signal: entry.abort.signal,
      provide: (token, value, guard) => {
        if (guard && !guard(value)) {
          throw raError('RA_ERR_CONTRACT', `plugin "${def.id}" provides a value for ${String(token)} that does not implement the contract`);
        }
        provided.push({ token: token as InjectionToken<unknown>, value });
      },
    };
    const timeout = this.opts.startTimeoutMs ?? 10_000;
    const t0 = performance.now();
    entry.state = 'starting';
    const work = (async () => {
      const hooks = (await def.register(ctx)) ?? {};
      entry.hooks = hooks;
      await hooks.start?.();
      return hooks;
    })();
    try {
      await withTimeout(work, timeout, () => raError('RA_ERR_PLUGIN_TIMEOUT', `plugin "${def.id}" did not start within ${timeout} ms`));
    } catch (err) {
      entry.abort.abort();
      // A plugin that finishes starting after it was given up on is stopped, so that it does not
      // run unseen with timers or sockets open.
      work.then((hooks) => hooks.stop?.()).catch(() => undefined);
      const error = isRaError(err) ? err : raError('RA_ERR_PLUGIN_START', `plugin "${def.id}" failed to start: ${describeError(err)}`, { cause: err });
      this.fail(entry, error);
      return;
    }
    for (const { token, value } of provided) this.opts.container.register(token, { useValue: value });
    entry.state = 'running';
    entry.startMs = Math.round((performance.now() - t0) * 10) / 10;
    this.started.push(entry);
    log.info({ startMs: entry.startMs }, 'plugin started');
  }

  private fail(entry: Entry, error: RecoveryAgentError): void {
    entry.state = 'failed';
    entry.error = error;
    this.childLog(entry.def.id).error({ code: error.code, err: describeError(error) }, 'plugin failed; the agent goes on without it');
  }

  private childLog(id: string): Logger {
    return this.opts.log.child({ plugin: id });
  }
}

/** A path (absolute, or relative to the config) becomes a file URL; a package name is resolved from the config's directory. */
function resolveModule(specifier: string, configFile: string | undefined): string {
  if (path.isAbsolute(specifier)) return pathToFileURL(specifier).href;
  const base = configFile ?? path.join(process.cwd(), 'config.yaml');
  if (/^\.{1,2}[\\/]/.test(specifier)) return pathToFileURL(path.resolve(path.dirname(base), specifier)).href;
  try {
    return pathToFileURL(createRequire(base).resolve(specifier)).href;
  } catch {
    return specifier; // let import() resolve it from recovery-agent's own node_modules, or fail
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

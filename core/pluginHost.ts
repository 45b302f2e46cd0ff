/**
 * The plugin host: registers built-in and third-party plugins, starts them in dependency order,
 * stops them in reverse, and isolates them from each other.
 *
 * Order: derived from what plugins declare (`definePlugin({ deps, provides, dependsOn })`):
 * every plugin that provides a token a plugin needs starts before it, as does every plugin it
 * names in `dependsOn`; otherwise plugins start in the order they were added. A cycle, or a
 * required token that no plugin provides and the agent does not register, is an error naming
 * the plugins and the token. `register` gets its `deps` resolved from the container.
 *
 * Detectors: every `Detector` a plugin provides is started by the host, once the plugin's own
 * start hook has run, with a sink on the failure bus that publishes under the plugin's id; they
 * are stopped, last started first, before the plugin's stop hook.
 *
 * Isolation: a plugin that throws, or does not finish registering and starting within the
 * start timeout, is marked `failed` and reported by id; plugins that depend on it are marked
 * failed too (they cannot work without it); every other plugin starts as usual.
 *
 * Third-party plugins (`load`) run in a child process each (core/isolation/): one that cannot
 * be loaded is listed as failed under its module name, and one whose process crashes, exits, is
 * killed or goes over its memory limits while running is marked failed then; the agent goes on.
 * Built-in plugins (`add`) run in the agent's own thread.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import semver from 'semver';
import type { DependencyContainer, InjectionToken } from 'tsyringe';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import { Detector } from './contracts/Detector.js';
import type { FailureSink } from './contracts/Failure.js';
import { CONTRACT_VERSION } from './contracts/version.js';
import { describeError, isRaError, raError, type RecoveryAgentError } from './errors.js';
import { IsolatedPlugin } from './isolation/isolatedPlugin.js';
import { depRequests, isPluginDefinition, type DepRequest, type PluginContext, type PluginDefinition, type PluginHooks } from './plugin.js';
import { tokenId } from './token.js';
import { FailureBus } from './tokens.js';

export type PluginState = 'registered' | 'starting' | 'running' | 'failed' | 'stopping' | 'stopped';

/** A plugin as `/status` reports it. */
export interface PluginStatus {
  readonly id: string;
  readonly state: PluginState;
  /** `builtin`, or the module a third-party plugin came from. */
  readonly origin: string;
  /** The plugins it starts after: those it names in `dependsOn` and those that provide its `deps`. */
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
  /** Set for a third-party plugin: its child process. */
  isolated?: IsolatedPlugin;
  /** What it provided, once running (in the order provided). */
  provided: Array<{ token: InjectionToken<unknown>; value: unknown }>;
  /** Its Detectors the host started, in start order. */
  detectors: Detector[];
  /** Set by `order()`: the plugins it starts after, each with why. */
  after?: Map<string, string>;
}

/** A value a running plugin provided, with the plugin's id. */
export interface Contribution<T> {
  readonly plugin: string;
  readonly value: T;
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
    this.entries.set(def.id, newEntry(def, origin, options));
  }

  /**
   * Loads a third-party plugin from a path or an npm package name, in a child process of its
   * own, and adds it. The module's default export (or its export named `plugin`) must come from
   * `definePlugin`. Throws RA_ERR_PLUGIN_LOAD (and the errors of `add`) naming the module.
   */
  async load(specifier: string, options: Readonly<Record<string, unknown>> = {}): Promise<PluginDefinition> {
    const { config } = this.opts;
    const isolated = await IsolatedPlugin.load({
      url: resolveModule(specifier, config.source),
      specifier,
      options,
      config,
      log: this.opts.log,
      resourceLimits: config.agent.pluginResourceLimits,
      maxExternalMemoryMb: config.agent.pluginResourceLimits.maxExternalMemoryMb,
      ...(this.opts.container.isRegistered(FailureBus, true) ? { bus: this.opts.container.resolve(FailureBus) } : {}),
      loadTimeoutMs: this.opts.startTimeoutMs ?? 10_000,
      callTimeoutMs: config.agent.pluginCallTimeout,
      stopTimeoutMs: this.opts.stopTimeoutMs ?? 10_000,
    });
    const def = isolated.definition;
    try {
      this.add(def, specifier, options);
    } catch (err) {
      await isolated.terminate();
      throw err;
    }
    const entry = this.entries.get(def.id)!;
    entry.isolated = isolated;
    isolated.onFailure((err) => {
      if (entry.state === 'running') this.fail(entry, err);
    });
    return def;
  }

  /**
   * Loads the config's third-party plugins. One that cannot be loaded (missing module, a throw
   * at import, not a plugin, a contract version or id this agent refuses) is listed as failed
   * under its module name, and the others load as usual.
   */
  async loadAll(plugins: ReadonlyArray<{ module: string; options?: Readonly<Record<string, unknown>> }>): Promise<void> {
    for (const p of plugins) {
      try {
        await this.load(p.module, p.options ?? {});
      } catch (err) {
        let id = p.module;
        for (let n = 2; this.entries.has(id); n++) id = `${p.module}#${n}`;
        const def: PluginDefinition = { id, dependsOn: [], deps: {}, provides: [], contractVersion: '*', register: () => undefined };
        const entry = newEntry(def, p.module, p.options ?? {});
        this.entries.set(id, entry);
        this.fail(entry, isRaError(err) ? err : raError('RA_ERR_PLUGIN_LOAD', `cannot load plugin module ${p.module}: ${describeError(err)}`, { cause: err }));
      }
    }
  }

  /**
   * Plugins in start order: each after the plugins it names in `dependsOn` and after every
   * plugin that provides a token of its `deps`. Throws naming the plugins (and tokens) when a
   * dependency is missing or circular.
   */
  order(): PluginDefinition[] {
    const providers = new Map<InjectionToken<unknown>, Entry[]>();
    for (const e of this.entries.values()) for (const t of e.def.provides ?? []) providers.set(t, [...(providers.get(t) ?? []), e]);
    for (const entry of this.entries.values()) {
      entry.after = new Map();
      // A failed plugin will not start: it orders nothing (and a cycle through it is broken).
      if (entry.state === 'failed') continue;
      const missing = this.missingDependency(entry);
      if (missing) throw missing;
      const usable = (id: string) => this.entries.get(id)?.state !== 'failed';
      for (const dep of entry.def.dependsOn) if (this.entries.has(dep) && usable(dep)) entry.after.set(dep, `"${entry.def.id}" depends on "${dep}"`);
      for (const req of depRequests(entry.def)) {
        for (const p of providers.get(req.token) ?? []) {
          if (p !== entry && p.state !== 'failed' && !entry.after.has(p.def.id)) entry.after.set(p.def.id, `"${entry.def.id}" needs ${tokenId(req.token)}, which "${p.def.id}" provides`);
        }
      }
    }
    const out: PluginDefinition[] = [];
    const mark = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string, chain: string[]): void => {
      const state = mark.get(id);
      if (state === 'done') return;
      if (state === 'visiting') {
        const cycle = [...chain.slice(chain.indexOf(id)), id];
        const why = cycle.slice(0, -1).map((from, i) => this.entries.get(from)!.after!.get(cycle[i + 1]!)!);
        throw raError('RA_ERR_PLUGIN_CYCLE', `plugins depend on each other in a cycle: ${cycle.join(' -> ')} (${why.join('; ')})`, { details: { cycle } });
      }
      const entry = this.entries.get(id)!;
      mark.set(id, 'visiting');
      for (const dep of entry.after!.keys()) visit(dep, [...chain, id]);
      mark.set(id, 'done');
      out.push(entry.def);
    };
    for (const id of this.entries.keys()) visit(id, []);
    return out;
  }

  /** Registers and starts every plugin in dependency order. Failed plugins are isolated. */
  async startAll(): Promise<PluginStatus[]> {
    let order: PluginDefinition[];
    // A third-party plugin that needs a plugin or token nobody registered (perhaps one that
    // failed to load) fails alone; for built-ins it is a broken setup, and order() says so.
    for (const entry of this.entries.values()) {
      const missing = entry.origin !== 'builtin' && entry.state !== 'failed' && this.missingDependency(entry);
      if (missing) this.fail(entry, missing);
    }
    for (;;) {
      try {
        order = this.order();
        break;
      } catch (err) {
        // Third-party plugins in a cycle fail, the agent goes on without them (and without what
        // needs them); a cycle of built-ins alone is a broken build.
        if (!isRaError(err, 'RA_ERR_PLUGIN_CYCLE')) throw err;
        const cycle = (err.details as { cycle?: string[] } | undefined)?.cycle ?? [];
        const thirdParty = [...new Set(cycle)].map((id) => this.entries.get(id)!).filter((e) => e.origin !== 'builtin' && e.state !== 'failed');
        if (thirdParty.length === 0) throw err;
        for (const e of thirdParty) this.fail(e, err);
      }
    }
    for (const def of order) {
      const entry = this.entries.get(def.id)!;
      if (entry.state === 'failed') continue;
      const unmet = this.unmetDependency(entry);
      if (unmet) {
        this.fail(entry, raError('RA_ERR_PLUGIN_START', `plugin "${def.id}" not started: ${unmet}`));
        continue;
      }
      await this.startOne(entry);
    }
    return this.status();
  }

  /**
   * The values running plugins provided under `token`, each with the plugin's id, in start
   * order: how the core finds every contribution to an extension point and says whose it is.
   */
  contributions<T>(token: InjectionToken<T>): Array<Contribution<T>> {
    const out: Array<Contribution<T>> = [];
    for (const e of this.started) {
      if (e.state !== 'running') continue;
      for (const p of e.provided) if (p.token === token) out.push({ plugin: e.def.id, value: p.value as T });
    }
    return out;
  }

  /** True while the plugin `id` runs. */
  isRunning(id: string): boolean {
    return this.entries.get(id)?.state === 'running';
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
        await withTimeout(this.teardown(entry), timeout, () =>
          raError('RA_ERR_PLUGIN_TIMEOUT', `plugin "${entry.def.id}" did not stop within ${timeout} ms`),
        );
        log.info('plugin stopped');
      } catch (err) {
        log.error({ err: describeError(err) }, 'plugin failed to stop cleanly');
      }
      entry.state = 'stopped';
    }
    this.started = [];
    // Processes of third-party plugins that never ran (failed, or never started) are killed too.
    await Promise.all([...this.entries.values()].map((e) => e.isolated?.terminate()));
  }

  status(): PluginStatus[] {
    return [...this.entries.values()].map((e) => ({
      id: e.def.id,
      state: e.state,
      origin: e.origin,
      dependsOn: e.after ? [...e.after.keys()] : e.def.dependsOn,
      ...(e.error ? { error: { code: e.error.code, message: e.error.message } } : {}),
      ...(e.startMs !== undefined ? { startMs: e.startMs } : {}),
    }));
  }

  /** Why `entry` cannot be ordered: a plugin it names that is not registered, or a required token nobody provides. */
  private missingDependency(entry: Entry): RecoveryAgentError | undefined {
    const id = entry.def.id;
    const ghost = entry.def.dependsOn.find((d) => !this.entries.has(d));
    if (ghost) return raError('RA_ERR_PLUGIN_MISSING_DEPENDENCY', `plugin "${id}" depends on "${ghost}", which is not registered`, { details: { plugin: id, missing: ghost } });
    for (const req of depRequests(entry.def)) {
      if (req.kind !== 'required' || this.providersOf(req.token, entry).length > 0 || this.opts.container.isRegistered(req.token, true)) continue;
      const token = tokenId(req.token);
      return raError(
        'RA_ERR_PLUGIN_MISSING_DEPENDENCY',
        `plugin "${id}" needs ${token} (deps.${req.name}), which no registered plugin provides and the agent does not register`,
        { details: { plugin: id, missing: token } },
      );
    }
    return undefined;
  }

  /** Why `entry` cannot start now: a dependency named in `dependsOn` that is not running, or a required token none of whose providers runs. */
  private unmetDependency(entry: Entry): string | undefined {
    const failedDep = entry.def.dependsOn.find((d) => this.entries.get(d)!.state !== 'running');
    if (failedDep) return `its dependency "${failedDep}" is not running`;
    for (const req of depRequests(entry.def)) {
      const providers = this.providersOf(req.token, entry);
      if (req.kind !== 'required' || providers.length === 0 || providers.some((p) => p.state === 'running')) continue;
      return `it needs ${tokenId(req.token)} (deps.${req.name}), and no plugin that provides it is running (${providers.map((p) => `"${p.def.id}" ${p.state}`).join(', ')})`;
    }
    return undefined;
  }

  /** The other plugins that declare they provide `token`. */
  private providersOf(token: InjectionToken<unknown>, except: Entry): Entry[] {
    return [...this.entries.values()].filter((e) => e !== except && (e.def.provides ?? []).includes(token));
  }

  /** `register`'s deps, resolved from the container. Throws naming the plugin and the token for a required one nobody provided. */
  private resolveDeps(def: PluginDefinition): Record<string, unknown> {
    const { container } = this.opts;
    const deps: Record<string, unknown> = {};
    for (const req of depRequests(def)) deps[req.name] = this.resolveDep(def.id, req, container);
    return deps;
  }

  private resolveDep(id: string, req: DepRequest, container: DependencyContainer): unknown {
    const has = container.isRegistered(req.token, true);
    if (req.kind === 'many') return has ? container.resolveAll(req.token) : [];
    if (has) return container.resolve(req.token);
    if (req.kind === 'optional') return undefined;
    throw raError('RA_ERR_PLUGIN_START', `plugin "${id}" needs ${tokenId(req.token)} (deps.${req.name}), but no running plugin provided it`, { details: { plugin: id, missing: tokenId(req.token) } });
  }

  /** The sink a plugin's detectors publish to: the failure bus, under the plugin's id. */
  private sinkFor(id: string): FailureSink {
    const { container } = this.opts;
    if (!container.isRegistered(FailureBus, true)) throw raError('RA_ERR_PLUGIN_START', `plugin "${id}" provides a Detector, but the agent registers no FailureBus for it to publish to`);
    return container.resolve(FailureBus).sinkFor(id);
  }

  /** Stops the plugin's detectors (last started first), then calls its stop hook. */
  private async teardown(entry: Entry): Promise<void> {
    for (const d of entry.detectors.splice(0).reverse()) {
      try {
        await d.stop();
      } catch (err) {
        this.childLog(entry.def.id).error({ detector: d.id, err: describeError(err) }, 'detector failed to stop cleanly');
      }
    }
    await entry.hooks?.stop?.();
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
        if (!(def.provides ?? []).includes(token)) {
          throw raError('RA_ERR_CONTRACT', `plugin "${def.id}" provides ${tokenId(token)}, which it does not declare: add it to definePlugin({ provides: [...] })`);
        }
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
      const hooks = (await def.register(ctx, this.resolveDeps(def) as never)) ?? {};
      entry.hooks = hooks;
      await hooks.start?.();
      const detectors = provided.filter((p) => p.token === Detector).map((p) => p.value as Detector);
      try {
        const sink = detectors.length > 0 ? this.sinkFor(def.id) : undefined;
        for (const d of detectors) {
          await d.start(sink!);
          entry.detectors.push(d);
        }
      } catch (err) {
        await this.teardown(entry).catch(() => undefined); // the plugin started: leave nothing of it running
        throw err;
      }
    })();
    try {
      await withTimeout(work, timeout, () => raError('RA_ERR_PLUGIN_TIMEOUT', `plugin "${def.id}" did not start within ${timeout} ms`));
    } catch (err) {
      entry.abort.abort();
      // A plugin that finishes starting after it was given up on is stopped, so that it does not
      // run unseen with timers or sockets open.
      work.then(() => this.teardown(entry)).catch(() => undefined);
      const error = isRaError(err) ? err : raError('RA_ERR_PLUGIN_START', `plugin "${def.id}" failed to start: ${describeError(err)}`, { cause: err });
      this.fail(entry, error);
      await entry.isolated?.terminate(); // a spinning process is gone before the next plugin starts
      return;
    }
    for (const { token, value } of provided) this.opts.container.register(token, { useValue: value });
    entry.provided = provided;
    entry.state = 'running';
    entry.startMs = Math.round((performance.now() - t0) * 10) / 10;
    this.started.push(entry);
    log.info({ startMs: entry.startMs }, 'plugin started');
  }

  private fail(entry: Entry, error: RecoveryAgentError): void {
    entry.state = 'failed';
    entry.error = error;
    // What the plugin provided stays in the container as proxies; with the process gone, their
    // calls reject at once (RA_ERR_PLUGIN_UNAVAILABLE), so the healer moves on to other actions.
    void entry.isolated?.terminate();
    this.childLog(entry.def.id).error({ code: error.code, err: describeError(error) }, 'plugin failed; the agent goes on without it');
  }

  private childLog(id: string): Logger {
    return this.opts.log.child({ plugin: id });
  }
}

function newEntry(def: PluginDefinition, origin: string, options: Readonly<Record<string, unknown>>): Entry {
  return { def, origin, options, state: 'registered', abort: new AbortController(), provided: [], detectors: [] };
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

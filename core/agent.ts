/**
 * The agent: one DI container holding the core services, and the plugin host that starts the
 * built-in and configured plugins on top of it. `recovery-agent run` is a thin shell around it.
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { container as rootContainer, type DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import { raError } from './errors.js';
import { ensurePrivateDirSync } from './privateFiles.js';
import { FailureBus as FailureBusImpl } from './failureBus.js';
import { Healer } from './contracts/Healer.js';
import { exposureProblem, isLoopbackHost, listenHost } from './http/exposure.js';
import { assertCanListen, listenError } from './http/portProbe.js';
import { buildServer, listen } from './http/server.js';
import { createLogger } from './logger.js';
import { createMetricsRegistry, instrumentOrchestrator } from './metrics.js';
import { Orchestrator } from './orchestrator/orchestrator.js';
import type { PluginDefinition } from './plugin.js';
import { PluginHost as PluginHostImpl, type PluginStatus } from './pluginHost.js';
import * as tokens from './tokens.js';
import { StorePaths } from './contracts/StorePaths.js';
import { STORE_PATHS_FILE, StorePathsFile } from './storePaths.js';
import { WorkerPool as WorkerPoolImpl } from './workerPool.js';

export interface AgentOptions {
  config: AgentConfig;
  /** Built-in plugins, registered before the config's third-party plugins. */
  builtins?: readonly PluginDefinition[];
  log?: Logger;
  /** Parent container; default tsyringe's root. The agent works in a child it disposes on stop. */
  parentContainer?: DependencyContainer;
}

type AgentState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export class Agent {
  readonly container: DependencyContainer;
  readonly log: Logger;
  readonly host: PluginHostImpl;
  readonly bus: FailureBusImpl;
  readonly pool: WorkerPoolImpl;
  readonly metrics: Registry;
  readonly orchestrator: Orchestrator;
  private http: FastifyInstance | null = null;
  /** Where the HTTP API listens, once started (host:port). */
  httpAddress: string | null = null;
  private state: AgentState = 'created';

  constructor(private readonly options: AgentOptions) {
    // Stores moved off a failed disk (redirect-store) live where the dataDir says, not where the
    // config says: every plugin is given the config with their new paths.
    const storePaths = new StorePathsFile(options.config.agent.dataDir, new Map(options.config.stores.map((s) => [s.id, s.path])));
    this.options = { ...options, config: storePaths.applyTo(options.config) };
    const { config } = this.options;
    this.log = options.log ?? createLogger({ level: config.agent.logLevel, format: config.agent.logFormat });
    for (const [id, r] of Object.entries(storePaths.redirects())) {
      this.log.warn({ store: id, path: r.path, configured: r.from, at: new Date(r.at).toISOString(), reason: r.reason }, `store "${id}" was moved to ${r.path} after a disk failure; set its path in the config (and delete ${STORE_PATHS_FILE} in agent.dataDir) to make that the configured one`);
    }
    this.container = (options.parentContainer ?? rootContainer).createChildContainer();
    this.bus = new FailureBusImpl(this.log.child({ component: 'failure-bus' }));
    this.pool = new WorkerPoolImpl({ threads: config.agent.workers });
    this.host = new PluginHostImpl({
      container: this.container,
      log: this.log,
      config,
      startTimeoutMs: config.agent.pluginStartTimeout,
      stopTimeoutMs: config.agent.pluginStopTimeout,
    });
    this.metrics = createMetricsRegistry();
    this.orchestrator = new Orchestrator({
      bus: this.bus,
      log: this.log.child({ component: 'orchestrator' }),
      journalFile: path.join(config.agent.dataDir, 'journal.jsonl'),
      maxConcurrent: config.agent.maxConcurrentRecoveries,
      rtoTargets: config.agent.rto,
      // The healer of the running plugin that provides one (the last, as the container would resolve).
      healer: () => this.host.contributions(Healer).at(-1)?.value,
    });
    instrumentOrchestrator(this.metrics, this.orchestrator);
    this.container.register(tokens.Config, { useValue: config });
    this.container.register(tokens.RootLogger, { useValue: this.log });
    this.container.register(tokens.FailureBus, { useValue: this.bus });
    this.container.register(tokens.WorkerPool, { useValue: this.pool });
    this.container.register(tokens.PluginHost, { useValue: this.host });
    this.container.register(tokens.DataDir, { useValue: config.agent.dataDir });
    this.container.register(tokens.Metrics, { useValue: this.metrics });
    this.container.register(tokens.Orchestrator, { useValue: this.orchestrator });
    this.container.register(StorePaths, { useValue: storePaths });
  }

  get config(): AgentConfig {
    return this.options.config;
  }

  /**
   * Registers every plugin and starts them. Throws only for problems of the whole setup (a
   * built-in's missing dependency, a cycle); a third-party plugin that cannot be loaded, and any
   * plugin that fails to start, is reported in the returned status and the agent runs without it.
   */
  async start(): Promise<PluginStatus[]> {
    if (this.state !== 'created') throw raError('RA_ERR_AGENT_STATE', `agent cannot start from state "${this.state}"`);
    this.state = 'starting';
    try {
      const http = this.config.agent.http;
      // validateConfig refuses this already; a config built in code gets the same answer.
      const problem = exposureProblem(http);
      if (problem) throw raError('RA_ERR_CONFIG', `agent.http.listen: ${http.listen} is ${problem}`);
      // The journal and scrub and learning state describe the stores: for the agent's user only.
      const tightened = ensurePrivateDirSync(this.config.agent.dataDir);
      if (tightened.length > 0) this.log.warn({ tightened }, 'agent.dataDir was open to other users; removed group and other permission bits');
      // A port in use is found now, before any plugin starts a supervised process (and the
      // agent, failing, would stop it again).
      if (http.enabled) await assertCanListen(http.listen);
      for (const def of this.options.builtins ?? []) this.host.add(def, 'builtin');
      await this.host.loadAll(this.config.plugins);
      const status = await this.host.startAll();
      // Plugins are up (the healer among them): take failures, including any published while
      // plugins started, then open the API.
      this.orchestrator.start();
      if (this.config.agent.http.enabled) {
        this.http = buildServer({
          config: this.config,
          log: this.log.child({ component: 'http' }),
          host: this.host,
          orchestrator: this.orchestrator,
          bus: this.bus,
          metrics: this.metrics,
          version: packageVersion(),
        });
        // Free when probed at start, but another process may have taken it since.
        this.httpAddress = await listen(this.http, http.listen).catch((err: unknown) => {
          throw listenError(http.listen, err);
        });
        // A host name may resolve to more than loopback: judge the address actually bound.
        const bound = exposureProblem(http, this.httpAddress);
        if (bound) throw raError('RA_ERR_CONFIG', `agent.http.listen: ${http.listen} was bound to ${this.httpAddress}, which is ${bound}`);
        if (!http.token && http.allowUnauthenticatedRemote && !isLoopbackHost(listenHost(this.httpAddress))) {
          this.log.warn({ http: this.httpAddress }, 'HTTP API on a non-loopback address without a token (agent.http.allowUnauthenticatedRemote): anyone who can reach it reads status, failures and snapshots');
        }
      }
      this.state = 'running';
      return status;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops plugins in reverse order, then the worker pool. Idempotent. */
  async stop(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') return;
    this.state = 'stopping';
    await this.http?.close();
    await this.orchestrator.stop();
    await this.host.stopAll();
    await this.pool.close();
    await this.container.dispose();
    this.state = 'stopped';
  }

  status(): { state: AgentState; plugins: PluginStatus[] } {
    return { state: this.state, plugins: this.host.status() };
  }
}

/** This package's version, from package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Every core token, once: the services the agent registers before any plugin starts. A plugin
 * names the ones it needs in `definePlugin({ deps })`. Extension points (StorageEngine, Detector,
 * HealingAction, HealthProbe, HttpRoute, StatusSection) have their tokens beside their contracts
 * in `core/contracts/`; a plugin's own services have theirs in its `index.ts`. All come from
 * `createToken` (token.ts), which refuses an id made twice.
 */
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import type { FailureBus as FailureBusClass } from './failureBus.js';
import type { WorkerPool as WorkerPoolClass } from './workerPool.js';
import type { PluginHost as PluginHostClass } from './pluginHost.js';
import type { Orchestrator as OrchestratorClass } from './orchestrator/orchestrator.js';
import { createToken } from './token.js';

/** The validated agent configuration, with defaults applied and paths resolved. */
export const Config = createToken<AgentConfig>('recovery-agent.Config');
/** The root pino logger; plugins receive a child bound to their id instead. */
export const RootLogger = createToken<Logger>('recovery-agent.RootLogger');
/** The failure bus detectors publish to and the orchestrator consumes. */
export const FailureBus = createToken<FailureBusClass>('recovery-agent.FailureBus');
/** The one piscina worker pool for hot work (scans, compression, redo). */
export const WorkerPool = createToken<WorkerPoolClass>('recovery-agent.WorkerPool');
/** The plugin host, for status (which plugins run, which failed). */
export const PluginHost = createToken<PluginHostClass>('recovery-agent.PluginHost');
/** Directory for the agent's own state (journal, scrub progress, learning), created at start. */
export const DataDir = createToken<string>('recovery-agent.DataDir');
/** The Prometheus registry served at `/metrics`; plugins register their metrics on it. */
export const Metrics = createToken<Registry>('recovery-agent.Metrics');
/** The orchestrator (failures, recoveries, RTO statistics). */
export const Orchestrator = createToken<OrchestratorClass>('recovery-agent.Orchestrator');

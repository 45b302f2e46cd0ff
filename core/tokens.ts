/**
 * Every core token, once. Plugins resolve these from the container they are given; extension
 * points (StorageEngine, Detector, HealingAction, HealthProbe) have their tokens beside their
 * contracts in `core/contracts/`.
 */
import type { InjectionToken } from 'tsyringe';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { AgentConfig } from './config/schema.js';
import type { FailureBus as FailureBusClass } from './failureBus.js';
import type { WorkerPool as WorkerPoolClass } from './workerPool.js';
import type { PluginHost as PluginHostClass } from './pluginHost.js';
import type { Orchestrator as OrchestratorClass } from './orchestrator/orchestrator.js';

/** The validated agent configuration, with defaults applied and paths resolved. */
export const Config: InjectionToken<AgentConfig> = Symbol.for('recovery-agent.Config');
/** The root pino logger; plugins receive a child bound to their id instead. */
export const RootLogger: InjectionToken<Logger> = Symbol.for('recovery-agent.RootLogger');
/** The failure bus detectors publish to and the orchestrator consumes. */
export const FailureBus: InjectionToken<FailureBusClass> = Symbol.for('recovery-agent.FailureBus');
/** The one piscina worker pool for hot work (scans, compression, redo). */
export const WorkerPool: InjectionToken<WorkerPoolClass> = Symbol.for('recovery-agent.WorkerPool');
/** The plugin host, for status (which plugins run, which failed). */
export const PluginHost: InjectionToken<PluginHostClass> = Symbol.for('recovery-agent.PluginHost');
/** Directory for the agent's own state (journal, scrub progress, learning), created at start. */
export const DataDir: InjectionToken<string> = Symbol.for('recovery-agent.DataDir');
/** The Prometheus registry served at `/metrics`; plugins register their metrics on it. */
export const Metrics: InjectionToken<Registry> = Symbol.for('recovery-agent.Metrics');
/** The orchestrator (failures, recoveries, RTO statistics). */
export const Orchestrator: InjectionToken<OrchestratorClass> = Symbol.for('recovery-agent.Orchestrator');

/** A section of `GET /status` that a plugin contributes (processes, scrub progress…). */
export interface StatusSection {
  /** The key under which it appears in the status document. */
  readonly name: string;
  snapshot(): unknown;
}
/** Plugins provide any number of status sections under this token. */
export const StatusSection: InjectionToken<StatusSection> = Symbol.for('recovery-agent.StatusSection');

/** Starts a full-speed scan of a configured store (the corruption detector provides it; `POST /scans`). */
export interface ScanTrigger {
  scan(storeId: string): Promise<{ pagesScanned: number; corrupt: ReadonlyArray<{ pageId: number; reason: string }> }>;
}
export const ScanTrigger: InjectionToken<ScanTrigger> = Symbol.for('recovery-agent.ScanTrigger');

/** Snapshots of configured stores, on demand (the snapshot manager provides it; `GET`/`POST /snapshots`). */
export interface SnapshotTrigger {
  /** The store's snapshots (manifest summaries), oldest first. Throws RA_ERR_USAGE for a store without snapshots. */
  list(storeId: string): Promise<unknown[]>;
  /** Takes one now; resolves with its summary once it is durable. */
  take(storeId: string, options: { incremental?: boolean }): Promise<unknown>;
}
export const SnapshotTrigger: InjectionToken<SnapshotTrigger> = Symbol.for('recovery-agent.SnapshotTrigger');

/** The health monitor's history of samples, served at `GET /health/history` when a plugin provides it. */
export interface HealthHistory {
  /**
   * Answers the query string of `GET /health/history` (`metrics`, `since`, `limit`) with a
   * JSON-serialisable document. Throws RA_ERR_USAGE for a bad parameter (the API answers 400).
   */
  query(params: Readonly<Record<string, unknown>>): unknown;
}
/** The health monitor provides its history under this token. */
export const HealthHistory: InjectionToken<HealthHistory> = Symbol.for('recovery-agent.HealthHistory');

/**
 * The public API of recovery-agent: `import { definePlugin, … } from 'recovery-agent'`.
 */
import 'reflect-metadata';

export * from './contracts/index.js';
export * from './errors.js';
export * from './plugin.js';
export * as tokens from './tokens.js';
export { FailureBus, type FailureListener } from './failureBus.js';
export { WorkerPool, defineTask, sharedBytes, type TaskRef, type TaskPayload, type SharedBytes } from './workerPool.js';
export { PluginHost, type PluginStatus, type PluginState } from './pluginHost.js';
export { Agent, type AgentOptions } from './agent.js';
export { createLogger } from './logger.js';
export { loadConfigFile, parseConfigText, validateConfig, configJsonSchema, type AgentConfig, type AgentConfigInput } from './config/index.js';
export * from './ring/index.js';

// The reference engine is part of the package's public API, so applications can
// `import { PageStore } from 'recovery-agent'`.
export { PageStore, Transaction, recover, pageStoreEngine, type PageStoreOptions, type CheckpointStats, type RecoverOptions, type RecoveryStats } from '../plugins/pagestore/index.js';

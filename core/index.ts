/**
 * The public API of recovery-agent: `import { definePlugin, … } from 'recovery-agent'`.
 */
import 'reflect-metadata';

export * from './contracts/index.js';
export * from './errors.js';
export * from './plugin.js';
export * as tokens from './tokens.js';
export { createToken, tokenId } from './token.js';
export { FailureBus, type FailureListener } from './failureBus.js';
export { WorkerPool, defineTask, sharedBytes, type TaskRef, type TaskPayload, type SharedBytes } from './workerPool.js';
export { PluginHost, type PluginStatus, type PluginState } from './pluginHost.js';
export { Agent, type AgentOptions } from './agent.js';
export { createLogger } from './logger.js';
// The core validates a config against its own sections and those of the plugins it is given.
export { createConfigLoader, composeConfigSchema, configJsonSchema, defineConfigSection, duration, size, rate, type ConfigLoader, type ConfigSection, type AgentConfig, type AgentConfigInput, type StoreConfig } from './config/index.js';
export * from './ring/index.js';

// The core knows no plugin: the reference engine (PageStore, Transaction, recover,
// pageStoreEngine) is the package's `recovery-agent/pagestore` export.

/**
 * The built-in plugins, registered by `recovery-agent run` before the config's own plugins.
 * Each component lands here as a plugin of its own as it is built.
 */
import type { PluginDefinition } from '../core/plugin.js';
import pagestore from './pagestore/index.js';
import transactionRollback from './transaction-rollback/index.js';

export const builtinPlugins: readonly PluginDefinition[] = [pagestore, transactionRollback];

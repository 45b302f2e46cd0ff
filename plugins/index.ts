/**
 * The built-in plugins, registered by `recovery-agent run` before the config's own plugins.
 * Each component lands here as a plugin of its own as it is built.
 */
import type { PluginDefinition } from '../core/plugin.js';
import pagestore from './pagestore/index.js';
import transactionRollback from './transaction-rollback/index.js';
import crashDetector from './crash-detector/index.js';
import restartProcess from './restart-process/index.js';
import corruptionDetector from './corruption-detector/index.js';
import selfHealer from './self-healer/index.js';
import recoverStore from './recover-store/index.js';
import execAction from './exec-action/index.js';
import webhookAction from './webhook-action/index.js';
import snapshotManager from './snapshot-manager/index.js';
import healthMonitor from './health-monitor/index.js';
import checkpointStore from './checkpoint-store/index.js';
import dataRepairer from './data-repairer/index.js';

export const builtinPlugins: readonly PluginDefinition[] = [pagestore, transactionRollback, crashDetector, restartProcess, corruptionDetector, selfHealer, recoverStore, execAction, webhookAction, healthMonitor, checkpointStore, snapshotManager, dataRepairer];

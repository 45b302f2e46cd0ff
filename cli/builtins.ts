/**
 * The built-in plugins, registered by `recovery-agent run` before the config's own plugins.
 * Each component lands here as a plugin of its own as it is built.
 */
import type { PluginDefinition } from '../core/plugin.js';
import pagestore from '../plugins/pagestore/index.js';
import transactionRollback from '../plugins/transaction-rollback/index.js';
import crashDetector from '../plugins/crash-detector/index.js';
import restartProcess from '../plugins/restart-process/index.js';
import corruptionDetector from '../plugins/corruption-detector/index.js';
import selfHealer from '../plugins/self-healer/index.js';
import recoverStore from '../plugins/recover-store/index.js';
import execAction from '../plugins/exec-action/index.js';
import webhookAction from '../plugins/webhook-action/index.js';
import snapshotManager from '../plugins/snapshot-manager/index.js';
import healthMonitor from '../plugins/health-monitor/index.js';
import checkpointStore from '../plugins/checkpoint-store/index.js';
import clearCaches from '../plugins/clear-caches/index.js';
import gracefulRestart from '../plugins/graceful-restart/index.js';
import appAction from '../plugins/app-action/index.js';
import dataRepairer from '../plugins/data-repairer/index.js';
import replication from '../plugins/replication/index.js';
import cluster from '../plugins/cluster/index.js';

// replication before crash-detector: it writes a primary's replication.json before the owner starts.
export const builtinPlugins: readonly PluginDefinition[] = [pagestore, replication, transactionRollback, crashDetector, restartProcess, corruptionDetector, selfHealer, recoverStore, execAction, webhookAction, healthMonitor, checkpointStore, clearCaches, gracefulRestart, appAction, snapshotManager, dataRepairer, cluster];

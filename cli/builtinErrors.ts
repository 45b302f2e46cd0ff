/**
 * The error catalogues of the built-in plugins (builtins.ts): importing this module registers
 * their codes, so each maps to its exit code. Each comes from its plugin's errors.ts, which
 * imports nothing else; a test checks that this list and the built-in plugins' own
 * `errorCodes` agree.
 */
import type { ErrorCatalogue } from '../core/errors.js';
import { processErrors } from '../plugins/crash-detector/errors.js';
import { repairErrors } from '../plugins/data-repairer/errors.js';
import { pagestoreErrors } from '../plugins/pagestore/errors.js';
import { replicationPluginErrors } from '../plugins/replication/errors.js';
import { clusterPluginErrors } from '../plugins/cluster/errors.js';
import { snapshotErrors } from '../plugins/snapshot-manager/errors.js';
import { redirectErrors } from '../plugins/redirect-store/errors.js';

export const builtinErrorCatalogues: readonly ErrorCatalogue[] = [pagestoreErrors, processErrors, snapshotErrors, repairErrors, replicationPluginErrors, clusterPluginErrors, redirectErrors];

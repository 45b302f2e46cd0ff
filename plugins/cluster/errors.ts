/**
 * Error codes of the cluster plugin. Registered when this module loads.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const clusterPluginErrors = defineErrorCodes('cluster', {
  RA_ERR_CLUSTER_ETCD: { exit: 3, description: 'An etcd request of the cluster layer failed or got no answer within its time limit.' },
});

type ClusterPluginErrorCodes = typeof clusterPluginErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends ClusterPluginErrorCodes {}
}

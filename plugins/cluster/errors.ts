/**
 * Error codes of the cluster plugin. Registered when this module loads.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const clusterPluginErrors = defineErrorCodes('cluster', {
  RA_ERR_CLUSTER_ETCD: { exit: 3, description: 'An etcd request of the cluster layer failed or got no answer within its time limit.' },
  RA_ERR_CLUSTER_NO_LEADER: { exit: 1, description: '`cluster status`: the cluster has no leader now (each member\'s reason is in the table).' },
  RA_ERR_CLUSTER_FAILOVER: { exit: 1, description: 'The `cluster-failover` healing action saw no new primary (a leader key naming a member whose /primary answers 200) within its time limit.' },
  RA_ERR_CLUSTER_NOT_LEADER: { exit: 1, description: '`cluster switchover` asked a member that is not the leader (the answer names the leader; the CLI forwards to it once).' },
  RA_ERR_CLUSTER_SWITCHOVER: { exit: 1, description: 'A switchover was refused or did not complete: unknown or non-streaming target, target not caught up within the timeout (the leader resumed), or no takeover.' },
  RA_ERR_CLUSTER_NOT_MEMBER: { exit: 2, description: '`cluster status` asked an agent that is in no cluster (no `cluster:` section).' },
});

type ClusterPluginErrorCodes = typeof clusterPluginErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends ClusterPluginErrorCodes {}
}

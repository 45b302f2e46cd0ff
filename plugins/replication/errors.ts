/**
 * Error codes of the replication plugin (the agent's side; the stream's own codes are the
 * core's, core/replication/errors.ts). Registered when this module loads.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const replicationPluginErrors = defineErrorCodes('replication', {
  RA_ERR_REPL_SECRET: { exit: 2, description: 'A store\'s replication secret cannot be used: its secretFile is unreadable, or it is shorter than 16 bytes.' },
  RA_ERR_REPL_SETTINGS: { exit: 1, description: 'The agent could not write a primary store\'s replication settings (<store>/replication.json) before starting its owner.' },
  RA_ERR_REPL_PROMOTE: { exit: 1, description: 'A cluster member store could not change role in time: its owner did not come up at the new epoch, the old owner did not release the store, or it is not the primary it was asked to act as.' },
  RA_ERR_REPL_NO_OWNER: { exit: 3, description: 'A primary store\'s replicas were to be asked for a page, but its owner (which holds their connections) cannot be reached.' },
});

type ReplicationPluginErrorCodes = typeof replicationPluginErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends ReplicationPluginErrorCodes {}
}

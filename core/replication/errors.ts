/**
 * Error codes of the replication stream (core/replication/): its handshake, its frames and the
 * positions the two ends compare. They are the core's, not a plugin's, because both ends use
 * them: the owner's sender (pagestore) and the replica agent (plugin `replication`) raise and
 * test for the same codes, and neither may import the other.
 *
 * Registered when this module loads (every module of core/replication imports it).
 */
import { defineErrorCodes } from '../errors.js';

export const replicationErrors = defineErrorCodes('core', {
  RA_ERR_REPL_AUTH: { exit: 3, description: 'A replication peer failed the shared-secret handshake or refused ours (a connection that breaks or stalls mid-handshake is RA_ERR_REPL_PROTOCOL).' },
  RA_ERR_REPL_FRAME: { exit: 4, description: 'A replication frame is malformed: wrong magic, unknown type, bad checksum, or a payload longer than the bound.' },
  RA_ERR_REPL_PROTOCOL: { exit: 1, description: 'A replication peer broke the protocol (an unexpected frame or payload), closed the connection, or reported an error.' },
  RA_ERR_REPL_EPOCH: { exit: 4, description: 'A replication peer is at an older epoch than this end: its stream is not the current primary\'s.' },
  RA_ERR_REPL_DIVERGED: { exit: 4, description: 'A replica\'s position (epoch, LSN, rolling checksum) does not match its primary\'s log: it diverged and is refused.' },
});

type ReplicationErrorCodes = typeof replicationErrors.codes;

declare module '../errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds the replication stream's codes to the known ones
  interface PluginErrorCodes extends ReplicationErrorCodes {}
}

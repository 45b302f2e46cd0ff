/**
 * Error codes of the snapshot manager: snapshots, the WAL archive chain, restore targets.
 *
 * They join the core's catalogue when this module loads, which the plugin's index.ts
 * (definePlugin's `errorCodes`) and the CLI (before it maps an error to an exit code) see to.
 * It imports nothing but core/errors.ts, so loading it costs nothing.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const snapshotErrors = defineErrorCodes('snapshot-manager', {
  RA_ERR_SNAPSHOT_CORRUPT: { exit: 4, description: 'A snapshot\'s manifest, chunk or archived WAL segment fails its checksum or cannot be read.' },
  RA_ERR_SNAPSHOT_INVALID: { exit: 2, description: 'A snapshot directory or a snapshot request cannot be used (no snapshot, wrong store, bad target LSN).' },
  RA_ERR_WAL_GAP: { exit: 4, description: 'The WAL chain from a snapshot to the restore target has a hole; the message names the missing LSN range.' },
  RA_ERR_RESTORE_TARGET: { exit: 2, description: 'A restore target already holds a store (and --force was not given).' },
});

type SnapshotErrorCodes = typeof snapshotErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends SnapshotErrorCodes {}
}

/**
 * Error codes of the page store: its options, transactions, WAL and control socket, and a
 * page image its owner refuses.
 *
 * They join the core's catalogue when this module loads, which the plugin's index.ts
 * (definePlugin's `errorCodes`) and the CLI (before it maps an error to an exit code) see to.
 * It imports nothing but core/errors.ts, so loading it costs nothing.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const pagestoreErrors = defineErrorCodes('pagestore', {
  RA_ERR_STORE_OPTIONS: { exit: 2, description: 'A store option (page size, page count, segment size) is out of range.' },
  RA_ERR_DEADLOCK: { exit: 1, description: 'The transaction was chosen as a deadlock victim and has been rolled back.' },
  RA_ERR_TX_STATE: { exit: 1, description: 'The transaction has already committed or aborted.' },
  RA_ERR_WAL_RECORD_TOO_LARGE: { exit: 1, description: 'A WAL record does not fit in a segment.' },
  RA_ERR_WAL_WRITE: { exit: 1, description: 'Writing or syncing the WAL failed; the store must be reopened.' },
  RA_ERR_WAL_CORRUPT: { exit: 4, description: 'A damaged WAL record is followed by valid ones, or a segment is missing: corruption, not a crash.' },
  RA_ERR_WAL_NOT_ARCHIVED: { exit: 1, description: 'A store that archives its WAL was checkpointed without an archiver: the segments it would have recycled are kept.' },
  RA_ERR_CONTROL_UNAVAILABLE: { exit: 3, description: 'A store\'s control socket is absent or refuses connections (no owner, or an owner without one).' },
  RA_ERR_CONTROL: { exit: 1, description: 'A control-socket request failed: bad request, no answer in time, or a malformed reply.' },
  RA_ERR_REPLICA_REFUSED: { exit: 4, description: 'A replica refused log records: a gap or an overlap with its log, a damaged record, or an epoch older than its own; nothing was written.' },
  RA_ERR_REPLICA_BEHIND: { exit: 1, description: 'A replica was asked for a page as of an LSN its log does not reach yet.' },
  RA_ERR_REPL_CONFIG: { exit: 2, description: 'A store\'s replication.json does not parse or holds a wrong value, or its listen address cannot be bound.' },
  RA_ERR_REPLICA_PAGE: { exit: 4, description: 'No replica of a primary could give a verified, current copy of a page (none streaming, behind, its copy bad or older than the primary\'s log).' },
  RA_ERR_FENCED: { exit: 1, description: 'A clustered primary\'s leadership lease lapsed: a commit durable here was not acknowledged (its outcome is unknown), or a lease grant for another epoch was refused.' },
  RA_ERR_APP_ACTION: { exit: 1, description: 'An application-defined action registered on a store\'s control socket is unknown there, or threw.' },
  RA_ERR_APP_ACTION_TIMEOUT: { exit: 1, description: 'An application-defined action did not finish within its time limit (it is left running in the application).' },
  RA_ERR_REPAIR_REFUSED: { exit: 4, description: 'A store\'s owner refused an image offered to repair a page: the page is not bad, the image is older than what the owner knows, or it is not this store\'s.' },
});

type PagestoreErrorCodes = typeof pagestoreErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends PagestoreErrorCodes {}
}

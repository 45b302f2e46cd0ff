/**
 * Error codes of the data repairer.
 *
 * They join the core's catalogue when this module loads, which the plugin's index.ts
 * (definePlugin's `errorCodes`) and the CLI (before it maps an error to an exit code) see to.
 * It imports nothing but core/errors.ts, so loading it costs nothing.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const repairErrors = defineErrorCodes('data-repairer', {
  RA_ERR_REPAIR_NO_SOURCE: { exit: 4, description: 'No source (store cache, snapshot + WAL) could rebuild a page to a verified image.' },
});

type RepairErrorCodes = typeof repairErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends RepairErrorCodes {}
}

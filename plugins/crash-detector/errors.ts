/**
 * Error codes of the process supervisor: starting, restarting and giving up on processes.
 *
 * They join the core's catalogue when this module loads, which the plugin's index.ts
 * (definePlugin's `errorCodes`) and the CLI (before it maps an error to an exit code) see to.
 * It imports nothing but core/errors.ts, so loading it costs nothing.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const processErrors = defineErrorCodes('crash-detector', {
  RA_ERR_PROCESS_SPAWN: { exit: 1, description: 'A supervised process could not be started (command not found, cwd missing, spawn refused).' },
  RA_ERR_PROCESS_STATE: { exit: 1, description: 'A process cannot do what was asked in its state (restart an attached process, restart while the agent stops).' },
  RA_ERR_PROCESS_GIVEN_UP: { exit: 1, description: 'A process started more than `restart.limit.burst` times within `restart.limit.within`: the agent gave up on it.' },
});

type ProcessErrorCodes = typeof processErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends ProcessErrorCodes {}
}

/**
 * Error codes of the redirect-store action. Imports nothing but core/errors.ts.
 */
import { defineErrorCodes } from '../../core/errors.js';

export const redirectErrors = defineErrorCodes('redirect-store', {
  RA_ERR_REDIRECT: { exit: 1, description: 'A store could not be moved off its failed disk to its spare path (a live process not supervised by the agent holds it, or the restore failed).' },
});

type RedirectErrorCodes = typeof redirectErrors.codes;

declare module '../../core/errors.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type -- adds this plugin's codes to the known ones
  interface PluginErrorCodes extends RedirectErrorCodes {}
}

/**
 * The exit code for an error that ends a command. A plugin's code maps to its exit code once
 * its catalogue is registered; a command may have raised one from a plugin module that does not
 * load the catalogue (a command imports a plugin's modules, not its index.ts), so an unknown
 * code loads the built-in catalogues first. A core code needs nothing more: `--help` and usage
 * errors keep loading the command line only.
 */
import { isErrorCode, isRaError } from '../core/errors.js';

export async function exitCodeFor(err: unknown): Promise<number> {
  if (!isRaError(err)) return 1;
  if (!isErrorCode(err.code)) await import('./builtinErrors.js');
  return err.exitCode;
}

/**
 * The shared secret of a store's `replication:` section, inline or from `secretFile`. Read once
 * at start; never logged (errors name the file, never its content).
 */
import { readFileSync } from 'node:fs';
import { MIN_SECRET_BYTES } from '../../core/replication/protocol.js';
import { raError } from '../../core/errors.js';
import './errors.js';

export function readSecret(storeId: string, r: { secret?: string | undefined; secretFile?: string | undefined }): string {
  let secret: string;
  if (r.secret !== undefined) secret = r.secret;
  else if (r.secretFile !== undefined) {
    try {
      // A trailing newline is an editor's, not the secret's.
      secret = readFileSync(r.secretFile, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw raError('RA_ERR_REPL_SECRET', `store ${storeId}: cannot read replication.secretFile ${r.secretFile}: ${(err as Error).message}`, { cause: err });
    }
  } else throw raError('RA_ERR_REPL_SECRET', `store ${storeId}: replication needs "secret" or "secretFile"`);
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES) {
    throw raError('RA_ERR_REPL_SECRET', `store ${storeId}: the replication secret${r.secretFile ? ` in ${r.secretFile}` : ''} is shorter than ${MIN_SECRET_BYTES} bytes`);
  }
  // A secret of only spaces is an editor's or a template's mistake, and as guessable as none.
  if (!/\S/.test(secret)) throw raError('RA_ERR_REPL_SECRET', `store ${storeId}: the replication secret${r.secretFile ? ` in ${r.secretFile}` : ''} is only whitespace`);
  return secret;
}

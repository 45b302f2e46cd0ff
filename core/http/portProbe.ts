/**
 * Whether the HTTP API's address can be bound, asked before any plugin starts. The server itself
 * cannot listen that early (plugins add their routes while they start, and fastify takes no
 * route once listening), yet a port in use found only then would come after the supervised
 * processes were started — and the agent, failing, would stop them again. So the address is
 * bound once and released at once; a port taken in the instant between the two still fails the
 * real listen, later, with the same error.
 */
import net from 'node:net';
import { raError, type RecoveryAgentError } from '../errors.js';
import { listenHost } from './exposure.js';

/** What a bind error means to an operator, by errno code. */
const WHY: Record<string, string> = {
  EADDRINUSE: 'is in use by another process: stop it, or set agent.http.listen to a free port',
  EACCES: 'may not be bound by this user (a port below 1024 needs privileges): choose a port of 1024 or more',
  EADDRNOTAVAIL: 'names an address this host does not have: use one of its addresses, or 127.0.0.1',
  ENOTFOUND: 'names a host that does not resolve: use an address, or 127.0.0.1',
};

/** The RA_ERR_HTTP_LISTEN error for `listenOn` failing to bind with `err`. */
export function listenError(listenOn: string, err: unknown): RecoveryAgentError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
  const why = WHY[code] ?? `cannot be bound (${err instanceof Error ? err.message : String(err)})`;
  return raError('RA_ERR_HTTP_LISTEN', `agent.http.listen: ${listenOn} ${why}`, { cause: err });
}

/** Resolves when `listenOn` (`host:port`, `[v6]:port`) can be bound now; throws RA_ERR_HTTP_LISTEN otherwise. Port 0 is always free. */
export async function assertCanListen(listenOn: string): Promise<void> {
  const port = Number(listenOn.slice(listenOn.lastIndexOf(':') + 1));
  if (port === 0) return;
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: listenHost(listenOn), port, exclusive: true }, resolve);
    });
  } catch (err) {
    throw listenError(listenOn, err);
  }
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

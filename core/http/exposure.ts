/**
 * Who can reach the HTTP API. Without a token, only a loopback address is accepted: listening
 * anywhere else would hand the status, failures, recoveries and snapshots of every store to
 * whoever can reach the port. `agent.http.allowUnauthenticatedRemote: true` is the operator's
 * explicit "yes, I know" (behind a firewall or an authenticating proxy, say).
 *
 * Checked twice: when the config is validated (the configured host), and once the server is
 * bound (the address actually bound, as a host name may resolve to anything).
 */
import net from 'node:net';

const loopback = new net.BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6'); // also matches ::ffff:127.x.y.z

/** The host part of `host:port` or `[v6]:port`, without brackets. */
export function listenHost(listen: string): string {
  return listen.slice(0, listen.lastIndexOf(':')).replace(/^\[|\]$/g, '');
}

/** True for 127.0.0.0/8, ::1 (and IPv4-mapped loopback) and `localhost`; false for any other name or address. */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = net.isIP(host);
  return family !== 0 && loopback.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

export interface HttpExposure {
  enabled: boolean;
  listen: string;
  token?: string | undefined;
  allowUnauthenticatedRemote: boolean;
}

/**
 * Why serving on `address` (default: the configured `listen`) is refused, or null when it is
 * fine: a token is set, the address is loopback, or the operator allowed it explicitly. The
 * message does not repeat the address (the caller says it).
 */
export function exposureProblem(http: HttpExposure, address = http.listen): string | null {
  if (!http.enabled || http.token || http.allowUnauthenticatedRemote) return null;
  const host = listenHost(address);
  if (isLoopbackHost(host)) return null;
  return (
    'not a loopback address, and agent.http.token is not set: anyone who can reach the port would read the status, failures, ' +
    'recoveries and snapshots of every store. Set agent.http.token (16+ characters; ${RECOVERY_AGENT_TOKEN} keeps it out of the file), ' +
    'listen on 127.0.0.1, or set agent.http.allowUnauthenticatedRemote: true to accept that'
  );
}

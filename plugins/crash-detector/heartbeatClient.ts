/**
 * For applications the agent supervises: send the heartbeats it asks for in
 * `RECOVERY_AGENT_HEARTBEAT=udp://host:port/token` — the token as one UDP datagram every
 * `intervalMs`. The timer is unref'd and runs on the application's event loop, so a blocked or
 * stopped application stops heartbeating, which is the point.
 */
import dgram from 'node:dgram';
import { raError } from '../../core/errors.js';
import { HEARTBEAT_ENV } from './types.js';

export interface HeartbeatSender {
  /** `host:port` the datagrams go to. */
  readonly target: string;
  stop(): void;
}

/** Parses `udp://host:port/token`. Throws RA_ERR_USAGE naming the variable when it is malformed. */
export function parseHeartbeatUrl(spec: string): { host: string; port: number; token: string } {
  let url: URL;
  try {
    url = new URL(spec);
  } catch {
    url = new URL('invalid:');
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = Number(url.port);
  const token = decodeURIComponent(url.pathname.slice(1));
  if (url.protocol !== 'udp:' || host === '' || !(port > 0 && port < 65536) || token === '') {
    throw raError('RA_ERR_USAGE', `${HEARTBEAT_ENV} must look like udp://host:port/token (got ${JSON.stringify(spec)})`);
  }
  return { host, port, token };
}

/** Starts sending heartbeats when `RECOVERY_AGENT_HEARTBEAT` is set; null when it is not. */
export function startHeartbeat(options: { env?: NodeJS.ProcessEnv; intervalMs?: number } = {}): HeartbeatSender | null {
  const spec = (options.env ?? process.env)[HEARTBEAT_ENV];
  if (spec === undefined || spec === '') return null;
  const { host, port, token } = parseHeartbeatUrl(spec);
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  socket.on('error', () => undefined); // the agent may be restarting; the next datagram will do
  socket.unref();
  const payload = Buffer.from(token, 'latin1');
  const send = () => socket.send(payload, port, host, () => undefined);
  send();
  const timer = setInterval(send, options.intervalMs ?? 500);
  timer.unref();
  return {
    target: host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`,
    stop() {
      clearInterval(timer);
      socket.close();
    },
  };
}

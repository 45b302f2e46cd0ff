/**
 * Heartbeats: UDP sockets that turn a datagram carrying a process's token into a heartbeat,
 * and the per-process watch that calls silence longer than the timeout a hang.
 *
 * Datagrams are handled on the main thread as they arrive. Feeding them through a worker and
 * an SPSC ring (core/ring) was measured and is slower end to end and no cheaper for the main
 * thread at heartbeat rates (see README.md, "Why no ring buffer"), so there is none.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { raError } from '../../core/errors.js';

/** `host:port` (host may be `[v6]`) split; the host without brackets. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(i + 1)) };
}

function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

interface Listener {
  readonly socket: dgram.Socket;
  /** The bound address, with the real port when the config asked for port 0. */
  readonly bound: string;
  readonly beats: Map<string, () => void>;
}

/** One UDP socket per configured address, shared by every process that names it; tokens tell them apart. */
export class UdpHeartbeats {
  private readonly listeners = new Map<string, Listener>();
  /** Datagrams whose token belongs to no running process. */
  unknownDatagrams = 0;

  constructor(private readonly log: Logger) {}

  /** Binds `address` (config form, `host:port`) once. Throws RA_ERR_CONFIG naming the address when it cannot. */
  async bind(address: string, forProcess: string): Promise<void> {
    if (this.listeners.has(address)) return;
    const { host, port } = splitHostPort(address);
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const beats = new Map<string, () => void>();
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind(port, host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      socket.close();
      throw raError('RA_ERR_CONFIG', `cannot listen for the heartbeats of process "${forProcess}" on udp ${address}: ${(err as Error).message}`, { cause: err, details: { address } });
    }
    const a = socket.address();
    const listener: Listener = { socket, bound: formatHostPort(a.address, a.port), beats };
    socket.on('message', (msg) => this.onDatagram(listener, msg));
    socket.on('error', (err) => this.log.error({ address, err: err.message }, 'heartbeat socket error'));
    socket.unref();
    this.listeners.set(address, listener);
  }

  /** The URL a process is given: `udp://host:port/token`. */
  url(address: string, token: string): string {
    return `udp://${this.require(address).bound}/${encodeURIComponent(token)}`;
  }

  /** The address actually bound for a configured one (port 0 becomes the real port). */
  boundAddress(address: string): string {
    return this.require(address).bound;
  }

  /** Calls `onBeat` for every datagram that carries `token` on `address`, until `unregister`. */
  register(address: string, token: string, onBeat: () => void): void {
    this.require(address).beats.set(token, onBeat);
  }

  unregister(address: string, token: string): void {
    this.listeners.get(address)?.beats.delete(token);
  }

  async close(): Promise<void> {
    const all = [...this.listeners.values()];
    this.listeners.clear();
    await Promise.all(all.map((l) => new Promise<void>((resolve) => l.socket.close(() => resolve()))));
  }

  private onDatagram(listener: Listener, msg: Buffer): void {
    // The token, optionally followed by a newline (so `echo TOKEN | nc -u` works).
    let end = msg.length;
    while (end > 0 && (msg[end - 1] === 0x0a || msg[end - 1] === 0x0d)) end--;
    const beat = listener.beats.get(msg.toString('latin1', 0, end));
    if (beat) beat();
    else if (this.unknownDatagrams++ % 1000 === 0) this.log.debug({ address: listener.bound, unknown: this.unknownDatagrams }, 'heartbeat datagram with an unknown token');
  }

  private require(address: string): Listener {
    const l = this.listeners.get(address);
    if (!l) throw raError('RA_ERR_PROCESS_STATE', `no heartbeat socket is bound for udp ${address}`);
    return l;
  }
}

/**
 * Calls silence longer than `timeoutMs` a hang, once per hang. A heartbeat costs one store (no
 * timer work); one timer per watch re-arms itself for the time left, so a hang is seen within
 * timer lateness of the deadline.
 */
export class HangWatch {
  private last = 0;
  private timer: NodeJS.Timeout | undefined;
  private pending: NodeJS.Immediate | undefined;
  private hung = false;
  private active = false;

  constructor(
    readonly timeoutMs: number,
    private readonly onHang: (silentMs: number) => void,
  ) {}

  /** Starts watching; the process has `timeoutMs` from now for its first heartbeat. */
  start(now = performance.now()): void {
    this.active = true;
    this.hung = false;
    this.last = now;
    this.arm(this.timeoutMs);
  }

  /** True while the process is silent past the timeout (until its next heartbeat). */
  get silent(): boolean {
    return this.hung;
  }

  /** Records a heartbeat; true when it ends a hang. */
  beat(now = performance.now()): boolean {
    if (!this.active) return false;
    this.last = now;
    if (!this.hung) return false;
    this.hung = false;
    this.arm(this.timeoutMs);
    return true;
  }

  stop(): void {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending) clearImmediate(this.pending);
    this.pending = undefined;
  }

  private arm(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.check, Math.max(1, Math.ceil(ms)));
    this.timer.unref();
  }

  private readonly check = (): void => {
    this.timer = undefined;
    if (!this.active || this.hung) return;
    const silent = performance.now() - this.last;
    if (silent < this.timeoutMs) return this.arm(this.timeoutMs - silent);
    // Silent too long — or this process was late (its loop stalled, the agent was stopped), and
    // the heartbeats that came meanwhile wait unread in the socket: timers run before the poll
    // phase that reads them. Judge after that phase (setImmediate runs right after it).
    this.pending = setImmediate(this.judge);
  };

  private readonly judge = (): void => {
    this.pending = undefined;
    if (!this.active || this.hung) return;
    const silent = performance.now() - this.last;
    if (silent >= this.timeoutMs) {
      this.hung = true;
      this.onHang(silent);
    } else {
      this.arm(this.timeoutMs - silent);
    }
  };
}

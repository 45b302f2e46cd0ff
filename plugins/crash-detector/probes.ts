/**
 * Heartbeat probes the agent makes itself: HTTP GET (a 2xx answer is alive) and TCP connect
 * (an accepted connection is alive), every `interval`. A TCP probe only proves that the port
 * accepts connections — the kernel completes the handshake even for a stopped process — so use
 * HTTP (or UDP datagrams) to see a process that hangs with its socket open.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { splitHostPort } from './heartbeat.js';

/** A probe in flight: its verdict, and a way to end it early (verdict false). */
export interface Probe {
  readonly alive: Promise<boolean>;
  cancel(): void;
}

/** Settles a probe once: clears its deadline and releases its socket. */
function settleOnce(release: () => void, timeoutMs: number): { probe: (run: (finish: (ok: boolean) => void) => void) => Probe } {
  return {
    probe(run) {
      let finish!: (ok: boolean) => void;
      const alive = new Promise<boolean>((resolve) => {
        let done = false;
        finish = (ok) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          release();
          resolve(ok);
        };
      });
      // A hard deadline for the whole exchange (a socket timeout alone restarts on every byte).
      const timer = setTimeout(() => finish(false), timeoutMs);
      timer.unref();
      run(finish);
      return { alive, cancel: () => finish(false) };
    },
  };
}

/** GETs `url` on a fresh connection; alive for a 2xx answer within `timeoutMs`. */
export function probeHttp(url: string, timeoutMs: number): Probe {
  const get = url.startsWith('https:') ? https.get : http.get;
  let req: http.ClientRequest | undefined;
  return settleOnce(() => req?.destroy(), timeoutMs).probe((finish) => {
    req = get(url, { agent: false, headers: { 'user-agent': 'recovery-agent-probe' } }, (res) => {
      res.resume();
      const code = res.statusCode ?? 0;
      finish(code >= 200 && code < 300);
    });
    req.on('error', () => finish(false));
  });
}

/** Connects to `host:port`; alive when the connection is accepted within `timeoutMs`. */
export function probeTcp(address: string, timeoutMs: number): Probe {
  const { host, port } = splitHostPort(address);
  let socket: net.Socket | undefined;
  return settleOnce(() => socket?.destroy(), timeoutMs).probe((finish) => {
    socket = net.connect({ host, port });
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** Runs a process's probes every `intervalMs` and reports each success. One probe of a kind in flight at a time. */
export class ProbeLoop {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly inFlight: { http?: Probe | undefined; tcp?: Probe | undefined } = {};

  constructor(
    private readonly spec: { http?: string | undefined; tcp?: string | undefined; intervalMs: number; timeoutMs: number },
    private readonly onAlive: () => void,
  ) {}

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), this.spec.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.inFlight.http?.cancel();
    this.inFlight.tcp?.cancel();
  }

  private tick(): void {
    // A probe may take up to one interval; a slower answer is no sign of life anyway.
    const budget = Math.min(this.spec.intervalMs, this.spec.timeoutMs);
    const { http: url, tcp: address } = this.spec;
    if (url !== undefined) this.run('http', () => probeHttp(url, budget));
    if (address !== undefined) this.run('tcp', () => probeTcp(address, budget));
  }

  private run(kind: 'http' | 'tcp', start: () => Probe): void {
    if (this.inFlight[kind] !== undefined || this.stopped) return;
    const probe = start();
    this.inFlight[kind] = probe;
    void probe.alive.then((ok) => {
      this.inFlight[kind] = undefined;
      if (ok && !this.stopped) this.onAlive();
    });
  }
}

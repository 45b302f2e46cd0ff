/**
 * The operator's dashboard, served by the agent itself (the host may be offline: no CDN, no
 * build step, no framework):
 *
 *   GET /                 the page        (open: it holds no data)
 *   GET /dashboard.js     its script      (open)
 *   GET /dashboard.css    its style       (open)
 *   GET /events           server-sent events (read: the bearer token once one is set)
 *   GET /chaos-report     the latest chaos report's RTO histogram (read; chaosReport.ts)
 *
 * `/events` sends the whole status document (what `GET /status` answers) as a `state` event on
 * connect, then, as they happen, `failure` (published), `recovering` (its recovery started) and
 * `recovery` (its outcome: recovered, escalated, unhandled…) and `cleared` (its detector closed
 * it: not a recovery) from the orchestrator, a `status`
 * event every `refreshMs` (health score, scrub, processes: they change without an event), and a
 * keep-alive comment every `keepAliveMs` so that proxies do not cut an idle stream. The page
 * reads it with fetch() rather than EventSource, which cannot send the Authorization header: the
 * token never goes into a URL, so never into a log.
 *
 * Open streams are ended in the server's preClose hook: `agent.stop()` does not wait for a
 * browser to hang up.
 *
 * The streams cost the agent little whatever clients do: one orchestrator subscription and one
 * pair of timers serve them all (each event and each refresh is serialized once, then written to
 * every stream); at most `maxStreams` are open (more get 503); and a stream whose client does not
 * read is dropped once `maxBufferedBytes` wait in its buffer, rather than growing the agent's
 * memory without bound. Every document is serialized section by section (jsonSafe.ts): what a
 * plugin's section holds never throws from a timer, where a throw would end the process.
 *
 * The static files are read from `core/http/dashboard/` in the package (not from dist/: they
 * are not compiled), once, when the routes are mounted.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Failure } from '../contracts/Failure.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { ClearedRecord, RecoveryRecord } from '../orchestrator/journal.js';
import { documentJsonText, toJsonText } from './jsonSafe.js';
import { readChaosReport } from './chaosReport.js';

/** The page's files, relative to this module compiled (dist/core/http/) or not (core/http/). */
export function dashboardDir(): URL {
  const here = new URL('.', import.meta.url);
  return here.pathname.includes('/dist/core/http/') ? new URL('../../../core/http/dashboard/', here) : new URL('./dashboard/', here);
}

const FILES: ReadonlyArray<{ url: string; file: string; type: string }> = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/dashboard.js', file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  { url: '/dashboard.css', file: 'dashboard.css', type: 'text/css; charset=utf-8' },
];

/**
 * What the page may load and do: its own files and its own API only, no inline script, no
 * frames. A second line of defence behind the page's textContent-only rendering.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export interface DashboardOptions {
  orchestrator: Orchestrator;
  /** The status document (`GET /status`), sent on connect. */
  status: () => unknown;
  /** The part of it that changes without an event, sent every refreshMs. */
  refresh: () => unknown;
  refreshMs?: number;
  keepAliveMs?: number;
  /** Open streams at most; one more gets 503 (a dashboard holds one per browser tab). */
  maxStreams?: number;
  /** Bytes a stream may have waiting for its client before it is dropped. */
  maxBufferedBytes?: number;
  /** The chaos report whose RTO histogram the page shows (default: the package's bench/results/chaos.json). */
  chaosReport?: string;
}

/** The package's own latest chaos report: bench/results/chaos.json beside core/. */
export function defaultChaosReport(): string {
  return new URL('../../../bench/results/chaos.json', dashboardDir()).pathname;
}

export const DEFAULT_MAX_STREAMS = 32;
export const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;

/** The `data:` of an event whose document could not be computed at all. */
function computed(what: () => unknown): string {
  try {
    return documentJsonText(what());
  } catch (err) {
    return toJsonText({ error: (err as Error).message });
  }
}

const frame = (event: string, json: string) => `event: ${event}\ndata: ${json}\n\n`;

export function mountDashboard(app: FastifyInstance, o: DashboardOptions): void {
  const dir = dashboardDir();
  for (const f of FILES) {
    const body = readFileSync(new URL(f.file, dir));
    app.get(f.url, { config: { access: 'open' } }, async (_req, reply) =>
      reply.header('content-type', f.type).header('cache-control', 'no-cache').header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').send(body),
    );
  }

  const chaosFile = o.chaosReport ?? defaultChaosReport();
  app.get('/chaos-report', async (_req, reply) => {
    const r = await readChaosReport(chaosFile);
    return 'view' in r ? r.view : reply.code(404).send({ error: r.missing });
  });

  const maxStreams = o.maxStreams ?? DEFAULT_MAX_STREAMS;
  const maxBuffered = o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const streams = new Set<ServerResponse>();

  /**
   * Writes to one stream, unless its client has let more than maxBuffered bytes pile up: then
   * the stream is dropped (write() returning false only says the buffer is past its high-water
   * mark: what is written after that still goes into memory). Checked before the write, so that
   * one large event (the state, with its failures' evidence) is not a reason; what waits is at
   * most maxBuffered plus one event. The browser reconnects and gets the whole state again.
   */
  const write = (res: ServerResponse, chunk: string) => {
    if (res.writableEnded || res.destroyed) return;
    if (res.writableLength > maxBuffered) {
      app.log.warn({ buffered: res.writableLength, limit: maxBuffered }, 'dashboard: dropping an event stream whose client does not read');
      streams.delete(res);
      res.destroy();
      if (streams.size === 0) stopFanOut();
      return;
    }
    res.write(chunk);
  };
  const broadcast = (chunk: string) => {
    for (const res of [...streams]) write(res, chunk);
  };

  // One subscription and one pair of timers for all the streams, while there is any.
  const onFailure = (f: Failure) => broadcast(frame('failure', toJsonText(f)));
  const onRecovering = (f: Failure) => broadcast(frame('recovering', toJsonText(f)));
  const onRecovery = (r: RecoveryRecord) => broadcast(frame('recovery', toJsonText(r)));
  const onCleared = (c: ClearedRecord) => broadcast(frame('cleared', toJsonText(c)));
  let timers: { refresh: NodeJS.Timeout; keepAlive: NodeJS.Timeout } | null = null;
  const startFanOut = () => {
    if (timers) return;
    o.orchestrator.on('failure', onFailure);
    o.orchestrator.on('recovering', onRecovering);
    o.orchestrator.on('recovery', onRecovery);
    o.orchestrator.on('cleared', onCleared);
    timers = {
      refresh: setInterval(() => broadcast(frame('status', computed(o.refresh))), o.refreshMs ?? 1000),
      keepAlive: setInterval(() => broadcast(': keep-alive\n\n'), o.keepAliveMs ?? 15_000),
    };
  };
  function stopFanOut() {
    if (!timers) return;
    clearInterval(timers.refresh);
    clearInterval(timers.keepAlive);
    timers = null;
    o.orchestrator.off('failure', onFailure);
    o.orchestrator.off('recovering', onRecovering);
    o.orchestrator.off('recovery', onRecovery);
    o.orchestrator.off('cleared', onCleared);
  }

  // End every stream cleanly before the server closes (which then cuts whatever connection is
  // left: server.ts's forceCloseConnections), so that agent.stop() never waits for a browser.
  app.addHook('preClose', async () => {
    stopFanOut();
    await Promise.all([...streams].map((res) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 250);
      res.end(() => {
        clearTimeout(timer);
        resolve();
      });
    })));
  });

  app.get('/events', async (req, reply) => {
    if (streams.size >= maxStreams) {
      return reply.code(503).header('retry-after', '10').send({ error: `too many dashboard event streams open (${streams.size}, the most allowed): close a dashboard tab and retry` });
    }
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      // The stream is the connection's last response: when it ends (the agent stops), the
      // socket closes with it rather than idling until the client's keep-alive runs out.
      connection: 'close',
      // nginx buffers responses by default; an event must not wait for a buffer to fill.
      'x-accel-buffering': 'no',
    });
    req.raw.socket.setNoDelay(true);
    streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      if (streams.size === 0) stopFanOut();
    });
    startFanOut();
    // Tells the browser how long to wait before it reconnects, then the state to draw.
    write(res, 'retry: 2000\n\n');
    write(res, frame('state', computed(o.status)));
  });
}

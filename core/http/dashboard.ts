/**
 * The operator's dashboard, served by the agent itself (the host may be offline: no CDN, no
 * build step, no framework):
 *
 *   GET /                 the page        (open: it holds no data)
 *   GET /dashboard.js     its script      (open)
 *   GET /dashboard.css    its style       (open)
 *   GET /events           server-sent events (read: the bearer token once one is set)
 *
 * `/events` sends the whole status document (what `GET /status` answers) as a `state` event on
 * connect, then, as they happen, `failure` (published), `recovering` (its recovery started) and
 * `recovery` (its outcome: recovered, escalated, unhandled…) from the orchestrator, a `status`
 * event every `refreshMs` (health score, scrub, processes: they change without an event), and a
 * keep-alive comment every `keepAliveMs` so that proxies do not cut an idle stream. The page
 * reads it with fetch() rather than EventSource, which cannot send the Authorization header: the
 * token never goes into a URL, so never into a log.
 *
 * Open streams are ended in the server's preClose hook: `agent.stop()` does not wait for a
 * browser to hang up.
 *
 * The static files are read from `core/http/dashboard/` in the package (not from dist/: they
 * are not compiled), once, when the routes are mounted.
 */
import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { Failure } from '../contracts/Failure.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { RecoveryRecord } from '../orchestrator/journal.js';

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
}

export function mountDashboard(app: FastifyInstance, o: DashboardOptions): void {
  const dir = dashboardDir();
  for (const f of FILES) {
    const body = readFileSync(new URL(f.file, dir));
    app.get(f.url, { config: { access: 'open' } }, async (_req, reply) =>
      reply.header('content-type', f.type).header('cache-control', 'no-cache').header('content-security-policy', CSP).header('x-content-type-options', 'nosniff').send(body),
    );
  }

  const streams = new Set<ServerResponse>();
  // End every stream cleanly before the server closes (which then cuts whatever connection is
  // left: server.ts's forceCloseConnections), so that agent.stop() never waits for a browser.
  app.addHook('preClose', async () => {
    await Promise.all([...streams].map((res) => new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 250);
      res.end(() => {
        clearTimeout(timer);
        resolve();
      });
    })));
  });

  app.get('/events', async (req, reply) => {
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
    const send = (event: string, data: unknown) => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    const onFailure = (f: Failure) => send('failure', f);
    const onRecovering = (f: Failure) => send('recovering', f);
    const onRecovery = (r: RecoveryRecord) => send('recovery', r);
    const guarded = (what: () => unknown) => {
      try {
        return what();
      } catch (err) {
        return { error: (err as Error).message };
      }
    };
    const refresh = setInterval(() => send('status', guarded(o.refresh)), o.refreshMs ?? 1000);
    const keepAlive = setInterval(() => {
      if (!res.writableEnded) res.write(': keep-alive\n\n');
    }, o.keepAliveMs ?? 15_000);
    const close = () => {
      clearInterval(refresh);
      clearInterval(keepAlive);
      o.orchestrator.off('failure', onFailure);
      o.orchestrator.off('recovering', onRecovering);
      o.orchestrator.off('recovery', onRecovery);
      streams.delete(res);
    };
    streams.add(res);
    res.on('close', close);
    o.orchestrator.on('failure', onFailure);
    o.orchestrator.on('recovering', onRecovering);
    o.orchestrator.on('recovery', onRecovery);
    // Tells the browser how long to wait before it reconnects, then the state to draw.
    res.write('retry: 2000\n\n');
    send('state', guarded(o.status));
  });
}

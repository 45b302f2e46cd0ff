/**
 * The HTTP API, on 127.0.0.1 unless configured otherwise:
 *
 *   GET  /health       200 when healthy, 503 with the reasons otherwise (for load balancers)
 *   GET  /status       plugins, the sections plugins contribute (StatusSection), open
 *                      failures, recent recoveries, statistics
 *   GET  /metrics      Prometheus text format
 *   GET  /failures     recent failures        (?limit=N)
 *   GET  /recoveries   recent recoveries      (?limit=N)
 *   POST /recoveries   { "store": id }: ask for crash recovery of a store    (bearer token);
 *                      409 when a live process has the store open (it recovered it on open)
 *
 *   GET  /, /dashboard.js, /dashboard.css   the dashboard (dashboard.ts; open: no data in them)
 *   GET  /events       the dashboard's server-sent events: the status, then failures and recoveries
 *
 * and every route running plugins contribute as `HttpRoute`s (pluginRoutes.ts): `POST /scans`
 * (corruption-detector), `GET`/`POST /snapshots` (snapshot-manager), `GET /health/history`
 * (health-monitor)…
 *
 * Access, checked in an onRequest hook, before a body is read or parsed (so a huge or malformed
 * body from a client without the token gets 401, and is never parsed):
 *
 *   open   /health, /metrics: never need the token (load balancers, Prometheus); the dashboard's files
 *   read   every other GET (and any route that does not say, and unknown paths): need
 *          `Authorization: Bearer <agent.http.token>` once a token is set; open without one,
 *          which the config allows only on loopback or with allowUnauthenticatedRemote
 *   write  the POSTs: need the token; disabled (403) while none is set
 *
 * A plugin's route says its own access (`HttpRoute.access`), checked by the same hook.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { HttpAccess } from '../contracts/HttpRoute.js';
import { StatusSection } from '../contracts/StatusSection.js';
import { StorageEngine } from '../contracts/StorageEngine.js';
import { liveOwnerOf } from '../engines.js';
import type { AgentConfig } from '../config/schema.js';
import type { FailureBus } from '../failureBus.js';
import type { Orchestrator } from '../orchestrator/orchestrator.js';
import type { PluginHost } from '../pluginHost.js';
import { tokenMatches } from './auth.js';
import { mountDashboard } from './dashboard.js';
import { jsonSafe } from './jsonSafe.js';
import { mountPluginRoutes } from './pluginRoutes.js';

/** Who may call a route; set as the route's `config.access` (absent: 'read'). */
export type Access = HttpAccess;
const openRoute = { config: { access: 'open' satisfies Access } };
const writeRoute = { config: { access: 'write' satisfies Access } };

export interface HttpDeps {
  config: AgentConfig;
  log: Logger;
  host: PluginHost;
  orchestrator: Orchestrator;
  bus: FailureBus;
  metrics: Registry;
  version: string;
}

export interface Health {
  healthy: boolean;
  reasons: string[];
}

export function health(d: Pick<HttpDeps, 'host' | 'orchestrator'>): Health {
  const reasons: string[] = [];
  for (const p of d.host.status()) if (p.state === 'failed') reasons.push(`plugin ${p.id} failed: ${p.error?.message ?? 'unknown'}`);
  for (const o of d.orchestrator.openFailures()) {
    if (o.state === 'escalated' && (o.failure.priority === 'P0' || o.failure.priority === 'P1')) {
      // A detector's own words, when it gave them (store-missing: why the store cannot be opened).
      const why = typeof o.failure.evidence.reason === 'string' ? `: ${o.failure.evidence.reason}` : '';
      reasons.push(`${o.failure.priority} ${o.failure.kind} on ${o.failure.subject} was not fixed automatically${why}`);
    } else if (o.state === 'retrying' && (o.failure.priority === 'P0' || o.failure.priority === 'P1') && o.retry) {
      reasons.push(`${o.failure.priority} ${o.failure.kind} on ${o.failure.subject} was not fixed yet: retrying automatically (attempt ${o.retry.nextAttempt} of ${o.retry.maxAttempts}) when ${o.retry.waitingFor}`);
    }
  }
  return { healthy: reasons.length === 0, reasons };
}

/** The configured stores, as the dashboard lists them. */
function storesOf(config: AgentConfig): Array<{ id: string; engine: string; snapshots: boolean }> {
  return config.stores.map((s) => ({ id: s.id, engine: s.engine, snapshots: (s as { snapshots?: unknown }).snapshots !== undefined }));
}

function limitOf(req: FastifyRequest): number {
  const raw = (req.query as { limit?: string }).limit;
  const n = raw === undefined ? 100 : Number(raw);
  return Number.isInteger(n) && n > 0 ? Math.min(n, 1000) : 100;
}

export function buildServer(d: HttpDeps): FastifyInstance {
  // forceCloseConnections: a stopping agent does not wait for clients' keep-alive sockets (a
  // browser on the dashboard holds spare ones that never carry a request); its event streams
  // are ended first, in the dashboard's preClose hook.
  const app = Fastify({ loggerInstance: d.log as unknown as FastifyBaseLogger, bodyLimit: 64 * 1024, forceCloseConnections: true, logController: new LogController({ disableRequestLogging: true }) });
  const started = Date.now();

  app.addHook('onRequest', async (req, reply) => {
    const access = (req.routeOptions.config as { access?: Access }).access ?? 'read';
    if (access === 'open') return;
    const token = d.config.agent.http.token;
    if (!token) {
      if (access === 'read') return;
      return reply.code(403).header('connection', 'close').send({ error: 'mutating endpoints are disabled: set agent.http.token in the config' });
    }
    if (!tokenMatches(req.headers.authorization, token)) {
      // The body, if any, is never read: close the connection rather than drain it.
      return reply.code(401).header('www-authenticate', 'Bearer').header('connection', 'close').send({ error: 'missing or wrong bearer token' });
    }
  });

  app.get('/health', openRoute, async (_req, reply) => {
    const h = health(d);
    return reply.code(h.healthy ? 200 : 503).send({ status: h.healthy ? 'healthy' : 'unhealthy', reasons: h.reasons });
  });

  /**
   * The plugins' StatusSections, each under its name, each made plain JSON data on its own
   * (jsonSafe.ts): a throw, a value JSON cannot hold, or a promise shows as `{ error }` in its
   * place, never as a failed /status or, from the dashboard's timer, a crashed agent.
   */
  const sections = (): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const { value: s } of d.host.contributions(StatusSection)) {
      try {
        out[s.name] = jsonSafe(s.snapshot());
      } catch (err) {
        out[s.name] = { error: (err as Error).message };
      }
    }
    return out;
  };
  const status = () => ({
    agent: { version: d.version, pid: process.pid, uptimeSeconds: Math.round((Date.now() - started) / 1000), config: d.config.source ?? null },
    health: health(d),
    plugins: d.host.status(),
    ...sections(),
    openFailures: d.orchestrator.openFailures(),
    recentRecoveries: d.orchestrator.recentRecoveries(20),
    statistics: d.orchestrator.snapshot(),
  });

  app.get('/status', async () => status());

  app.get('/metrics', openRoute, async (_req, reply) => reply.header('content-type', d.metrics.contentType).send(await d.metrics.metrics()));
  app.get('/failures', async (req) => ({ failures: d.orchestrator.recentFailures(limitOf(req)) }));
  app.get('/recoveries', async (req) => ({ recoveries: d.orchestrator.recentRecoveries(limitOf(req)), statistics: d.orchestrator.snapshot() }));

  app.post('/recoveries', writeRoute, async (req, reply) => {
    const body = req.body as { store?: unknown } | undefined;
    const store = body?.store;
    const configured = d.config.stores.find((s) => s.id === store);
    if (typeof store !== 'string' || !configured) {
      return reply.code(400).send({ error: `body must be { "store": <id> } naming a configured store (have: ${d.config.stores.map((s) => s.id).join(', ') || 'none'})` });
    }
    // Refused, not queued: a recovery that does nothing must not be recorded as one (nor weigh in RTO compliance).
    const owner = await liveOwnerOf(d.host.contributions(StorageEngine).map((c) => c.value), configured);
    if (owner !== null) {
      return reply.code(409).send({ error: `store "${store}" is open by live process ${owner}, which recovered it when it opened it: no recovery is needed`, store, ownerPid: owner });
    }
    const failure = d.bus.publish('http-api', { kind: 'recovery-requested', priority: 'P1', subject: `store:${store}`, evidence: { store, requestedBy: req.ip } });
    return reply.code(202).send({ accepted: true, failureId: failure.id });
  });

  mountDashboard(app, {
    orchestrator: d.orchestrator,
    // The dashboard also wants the stores (which to ask /snapshots about) and recent failures.
    status: () => ({ ...status(), stores: storesOf(d.config), recentFailures: d.orchestrator.recentFailures(50), recentRecoveries: d.orchestrator.recentRecoveries(50) }),
    refresh: () => ({ health: health(d), ...sections(), openFailures: d.orchestrator.openFailures(), statistics: d.orchestrator.snapshot() }),
  });

  // After the core's own routes, so that a plugin claiming one of them is refused by name.
  mountPluginRoutes(app, d.host);

  return app;
}

/** Starts listening on `host:port`; resolves to the address actually bound (port 0 picks one). */
export async function listen(app: FastifyInstance, listenOn: string): Promise<string> {
  const i = listenOn.lastIndexOf(':');
  const host = listenOn.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listenOn.slice(i + 1));
  await app.listen({ host, port });
  const addr = app.server.address();
  return typeof addr === 'object' && addr ? `${addr.family === 'IPv6' ? `[${addr.address}]` : addr.address}:${addr.port}` : listenOn;
}

/**
 * Mounts the `HttpRoute`s running plugins contribute. Each route gets its access as the route's
 * `config.access`, so the server's onRequest hook checks the token for it exactly as for the
 * core's own routes (before any body is read). Two routes with one method and path are refused,
 * naming both plugins (or the core), instead of one silently shadowing the other.
 *
 * Routes live in an encapsulated Fastify context of their own, whose error handler answers a
 * request that fails a route's JSON Schema with 400 `{ error }`, the API's usual shape.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { HttpRoute, type HttpResponse } from '../contracts/HttpRoute.js';
import { isRaError, raError } from '../errors.js';
import type { PluginHost } from '../pluginHost.js';

export function mountPluginRoutes(app: FastifyInstance, host: PluginHost): void {
  const routes = host.contributions(HttpRoute);
  const claimed = new Map<string, string>();
  for (const { plugin, value: route } of routes) {
    const key = `${route.method} ${route.path}`;
    const first = claimed.get(key) ?? (app.hasRoute({ method: route.method, url: route.path }) ? 'the core' : undefined);
    if (first !== undefined) {
      throw raError('RA_ERR_PLUGIN_DUPLICATE', `plugin "${plugin}" serves ${key}, which ${first === 'the core' ? first : `plugin "${first}"`} serves already; a route has one owner`, {
        details: { route: key, plugins: [first, plugin] },
      });
    }
    claimed.set(key, plugin);
  }
  if (routes.length === 0) return;

  void app.register(async (scope) => {
    scope.setErrorHandler((err: Error & { validation?: unknown; statusCode?: number }, _req, reply) => {
      if (err.validation) return reply.code(400).send({ error: err.message });
      throw err; // the default handler's answer
    });
    for (const { plugin, value: route } of routes) {
      scope.route({
        method: route.method,
        url: route.path,
        config: { access: route.access },
        ...(route.schema ? { schema: route.schema } : {}),
        handler: async (req: FastifyRequest, reply: FastifyReply) => {
          // A plugin that failed after the API opened (an isolated one whose process died) no longer answers.
          if (!host.isRunning(plugin)) return reply.code(503).send({ error: `plugin "${plugin}", which serves ${route.method} ${route.path}, is not running` });
          let res: HttpResponse;
          try {
            res = await route.handler({ body: req.body, query: (req.query ?? {}) as Record<string, unknown>, params: (req.params ?? {}) as Record<string, string>, ip: req.ip });
          } catch (err) {
            if (isRaError(err, 'RA_ERR_USAGE')) return reply.code(400).send({ error: err.message });
            if (isRaError(err)) return reply.code(500).send({ error: err.message, code: err.code });
            throw err;
          }
          return reply.code(res.status).send(res.body);
        },
      });
    }
  });
}

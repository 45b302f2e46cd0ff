import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { HttpRoute, isHttpRoute, type HttpRequest } from '../../core/contracts/HttpRoute.js';
import { isRaError, raError } from '../../core/errors.js';
import { definePlugin, type PluginDefinition } from '../../core/plugin.js';
import { captureLogger } from '../helpers/logCapture.js';

const TOKEN = 'routes-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_TYPE = { 'content-type': 'application/json' };

function agentWith(plugins: readonly PluginDefinition[], token: string | null = TOKEN): Agent {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-routes-'));
  const config = validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', ...(token ? { token } : {}) } } }, path.join(dir, 'agent.yaml'), {});
  return new Agent({ config, builtins: plugins, log: captureLogger().log });
}

/** A plugin contributing one route of each access, one with a body schema, and one that throws RA_ERR_USAGE. */
function acme(seen: HttpRequest[]): PluginDefinition {
  return definePlugin({
    id: 'acme-api',
    contractVersion: '^1.0.0',
    provides: [HttpRoute],
    register(ctx) {
      const route = (r: HttpRoute) => ctx.provide(HttpRoute, r, isHttpRoute);
      route({ method: 'GET', path: '/acme/ping', access: 'open', handler: () => ({ status: 200, body: { pong: true } }) });
      route({ method: 'GET', path: '/acme/things/:id', access: 'read', handler: (req) => (seen.push(req), { status: 200, body: { id: req.params.id, query: req.query } }) });
      route({
        method: 'POST',
        path: '/acme/things',
        access: 'write',
        schema: { body: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
        handler: (req) => (seen.push(req), { status: 201, body: { created: (req.body as { name: string }).name } }),
      });
      route({ method: 'GET', path: '/acme/bad', access: 'read', handler: () => { throw raError('RA_ERR_USAGE', 'limit must be a positive integer (got "x")'); } });
    },
  });
}

describe('routes contributed by plugins', () => {
  it('are mounted, and the token rules apply to them as to the core routes', async () => {
    const seen: HttpRequest[] = [];
    const agent = agentWith([acme(seen)]);
    await agent.start();
    try {
      const base = `http://${agent.httpAddress}`;
      assert.deepEqual(await (await fetch(`${base}/acme/ping`)).json(), { pong: true }, 'open: no token needed');

      const noToken = await fetch(`${base}/acme/things/7?verbose=1`);
      assert.equal(noToken.status, 401, 'read: the token is needed once one is set');
      assert.equal(noToken.headers.get('www-authenticate'), 'Bearer');
      const read = await fetch(`${base}/acme/things/7?verbose=1`, { headers: AUTH });
      assert.equal(read.status, 200);
      assert.deepEqual(await read.json(), { id: '7', query: { verbose: '1' } });

      const post = (headers: Record<string, string>, body: unknown) => fetch(`${base}/acme/things`, { method: 'POST', headers: { ...JSON_TYPE, ...headers }, body: JSON.stringify(body) });
      assert.equal((await post({}, { name: 'x' })).status, 401, 'write: the token is needed');
      assert.equal((await post({ authorization: `Bearer ${TOKEN}x` }, { name: 'x' })).status, 401);
      assert.equal(seen.length, 1, 'a refused request never reaches the handler');
      const invalid = await post(AUTH, { title: 'x' });
      assert.equal(invalid.status, 400, 'the route schema is enforced');
      assert.match(((await invalid.json()) as { error: string }).error, /body must have required property 'name'/);
      const created = await post(AUTH, { name: 'widget' });
      assert.equal(created.status, 201);
      assert.deepEqual(await created.json(), { created: 'widget' });
      assert.equal(seen.at(-1)!.ip, '127.0.0.1');

      const bad = await fetch(`${base}/acme/bad`, { headers: AUTH });
      assert.equal(bad.status, 400, 'RA_ERR_USAGE from a handler answers 400');
      assert.deepEqual(await bad.json(), { error: 'limit must be a positive integer (got "x")' });
    } finally {
      await agent.stop();
    }
  });

  it('without a token, read routes are open and write routes refused (403)', async () => {
    const agent = agentWith([acme([])], null);
    await agent.start();
    try {
      const base = `http://${agent.httpAddress}`;
      assert.equal((await fetch(`${base}/acme/things/1`)).status, 200);
      const res = await fetch(`${base}/acme/things`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ name: 'x' }) });
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as { error: string }).error, /set agent\.http\.token/);
    } finally {
      await agent.stop();
    }
  });

  it('a route that changes something (any method but GET) must need the token: one that does not is refused', async () => {
    for (const access of ['open', 'read'] as const) {
      const loose = definePlugin({ id: `loose-${access}`, contractVersion: '^1.0.0', provides: [HttpRoute], register: (ctx) => ctx.provide(HttpRoute, { method: 'POST', path: '/wipe', access, handler: () => ({ status: 200, body: 'wiped' }) }, isHttpRoute) });
      assert.equal(isHttpRoute({ method: 'POST', path: '/wipe', access, handler: () => ({ status: 200, body: null }) }), false);
      const agent = agentWith([loose]);
      const status = await agent.start();
      try {
        const mine = status.find((p) => p.id === `loose-${access}`);
        assert.equal(mine?.state, 'failed', JSON.stringify(status));
        assert.equal(mine?.error?.code, 'RA_ERR_CONTRACT');
        const res = await fetch(`http://${agent.httpAddress}/wipe`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
        assert.equal(res.status, 404, 'the route is not mounted');
      } finally {
        await agent.stop();
      }
    }
  });

  it('two plugins claiming one method and path are refused, naming both', async () => {
    const claim = (id: string, method: 'GET' | 'POST', routePath: string) =>
      definePlugin({ id, contractVersion: '^1.0.0', provides: [HttpRoute], register: (ctx) => ctx.provide(HttpRoute, { method, path: routePath, access: method === 'GET' ? 'read' : 'write', handler: () => ({ status: 200, body: id }) }, isHttpRoute) });
    const twice = agentWith([claim('first-owner', 'GET', '/things'), claim('second-owner', 'GET', '/things'), claim('other-method', 'POST', '/things')]);
    await assert.rejects(twice.start(), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_DUPLICATE') && /plugin "second-owner" serves GET \/things, which plugin "first-owner" serves already/.test(err.message));

    const core = agentWith([claim('status-thief', 'GET', '/status')]);
    await assert.rejects(core.start(), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_DUPLICATE') && /plugin "status-thief" serves GET \/status, which the core serves already/.test(err.message));
  });
});

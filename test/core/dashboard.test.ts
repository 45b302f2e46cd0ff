/**
 * The dashboard's routes without a browser: the page is open, its event stream keeps the API's
 * access model, events arrive as they happen, keep-alives flow, listeners go with the client,
 * and agent.stop() does not wait on an open stream.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { mountDashboard } from '../../core/http/dashboard.js';
import type { Orchestrator } from '../../core/orchestrator/orchestrator.js';
import { captureLogger } from '../helpers/logCapture.js';

const TOKEN = 'dashboard-token-0123456789';
const AUTH = { authorization: `Bearer ${TOKEN}` };

interface SseEvent {
  type: string;
  data: unknown;
  at: number;
}

/** Reads a text/event-stream response into `events` (and `comments`) until it ends. */
function readSse(res: Response): { events: SseEvent[]; comments: string[]; ended: Promise<void>; waitFor: (pred: (e: SseEvent) => boolean, ms?: number) => Promise<SseEvent> } {
  const events: SseEvent[] = [];
  const comments: string[] = [];
  const decoder = new TextDecoder();
  let buf = '';
  const ended = (async () => {
    const reader = res.body!.getReader();
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        let type = 'message';
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) comments.push(line);
          else if (line.startsWith('event: ')) type = line.slice(7);
          else if (line.startsWith('data: ')) data.push(line.slice(6));
        }
        if (data.length > 0) events.push({ type, data: JSON.parse(data.join('\n')), at: Date.now() });
      }
    }
  })();
  const waitFor = async (pred: (e: SseEvent) => boolean, ms = 5000) => {
    const end = Date.now() + ms;
    for (;;) {
      const e = events.find(pred);
      if (e) return e;
      if (Date.now() > end) throw new Error(`no such event within ${ms} ms; got: ${events.map((x) => x.type).join(', ')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  return { events, comments, ended, waitFor };
}

describe('dashboard routes on a running agent', () => {
  let agent: Agent;
  let base: string;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ra-dash-'));
    const config = validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', token: TOKEN } } }, path.join(dir, 'agent.yaml'), {});
    agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    base = `http://${agent.httpAddress}`;
  });
  after(async () => {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page, its script and style without the token, and they hold no data', async () => {
    for (const [p, type] of [['/', 'text/html'], ['/dashboard.js', 'text/javascript'], ['/dashboard.css', 'text/css']] as const) {
      const res = await fetch(`${base}${p}`);
      assert.equal(res.status, 200, p);
      assert.match(res.headers.get('content-type')!, new RegExp(`^${type}`), p);
      assert.match(res.headers.get('content-security-policy')!, /script-src 'self'/, p);
      const text = await res.text();
      assert.ok(text.length > 100, p);
      assert.ok(!text.includes(TOKEN) && !text.includes(String(process.pid)) && !text.includes(dir), `${p} holds no data`);
    }
    const html = await (await fetch(base)).text();
    assert.doesNotMatch(html, /<script>|https?:\/\//, 'no inline script, nothing from elsewhere');
  });

  it('GET /events needs the token once one is set', async () => {
    const none = await fetch(`${base}/events`);
    assert.equal(none.status, 401);
    assert.deepEqual(await none.json(), { error: 'missing or wrong bearer token' });
    assert.equal((await fetch(`${base}/events`, { headers: { authorization: `Bearer ${TOKEN}x` } })).status, 401);
  });

  it('sends the state on connect, then each failure, its recovery start and its outcome within a second, and a periodic status', async () => {
    const ctrl = new AbortController();
    const res = await fetch(`${base}/events`, { headers: AUTH, signal: ctrl.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const sse = readSse(res);
    const first = await sse.waitFor(() => true);
    assert.equal(first.type, 'state', 'the first event is the whole state');
    const st = first.data as { agent: { pid: number }; stores: unknown[]; openFailures: unknown[]; statistics: object; health: { healthy: boolean } };
    assert.equal(st.agent.pid, process.pid);
    assert.deepEqual(st.stores, []);
    assert.ok(Array.isArray(st.openFailures) && typeof st.statistics === 'object' && st.health.healthy);

    const publishedAt = Date.now();
    const f = agent.bus.publish('test', { kind: 'dashboard-test', priority: 'P3', subject: 'thing:1', evidence: { note: '<b>hostile</b>' } });
    const failure = await sse.waitFor((e) => e.type === 'failure' && (e.data as { id: string }).id === f.id);
    const recovering = await sse.waitFor((e) => e.type === 'recovering' && (e.data as { id: string }).id === f.id);
    const recovery = await sse.waitFor((e) => e.type === 'recovery' && (e.data as { failureId: string }).failureId === f.id);
    assert.ok(failure.at - publishedAt < 1000, `failure event after ${failure.at - publishedAt} ms`);
    assert.ok(failure.at <= recovering.at && recovering.at <= recovery.at, 'in order');
    assert.deepEqual((failure.data as { evidence: unknown }).evidence, { note: '<b>hostile</b>' }, 'evidence as data, untouched (the page escapes it)');
    const r = recovery.data as { outcome: string; escalated: boolean; rtoMs: number; targetMs: number };
    assert.equal(r.outcome, 'no-action', 'a P3 nothing handles');
    assert.equal(r.escalated, false);
    assert.ok(typeof r.rtoMs === 'number' && typeof r.targetMs === 'number');

    const status = await sse.waitFor((e) => e.type === 'status', 3000);
    assert.ok('openFailures' in (status.data as object) && 'statistics' in (status.data as object) && 'health' in (status.data as object));
    ctrl.abort();
    await sse.ended;
  });

  it('agent.stop() ends an open stream instead of waiting for the client', async () => {
    // node:http rather than fetch: one connection, the stream's, and no pool opening others.
    const { port } = new URL(base);
    let text = '';
    const ended = new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/events', headers: AUTH }, (res) => {
        assert.equal(res.statusCode, 200);
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('close', resolve);
      }).on('error', reject);
    });
    const until = Date.now() + 5000;
    while (!text.includes('event: state') && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.match(text, /event: state/);
    const t0 = Date.now();
    await Promise.race([agent.stop(), new Promise((_, reject) => setTimeout(() => reject(new Error('agent.stop() hung on an open SSE stream')), 8000))]);
    await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the stream did not end')), 2000))]);
    assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
  });
});

describe('mountDashboard', () => {
  it('sends keep-alive comments, and drops its listeners when the client goes', async () => {
    const orchestrator = new EventEmitter() as unknown as Orchestrator;
    const app = Fastify();
    mountDashboard(app, { orchestrator, status: () => ({ s: 1 }), refresh: () => { throw new Error('refresh failed'); }, refreshMs: 50, keepAliveMs: 30 });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const addr = app.server.address() as { port: number };
      const ctrl = new AbortController();
      const sse = readSse(await fetch(`http://127.0.0.1:${addr.port}/events`, { signal: ctrl.signal }));
      assert.deepEqual((await sse.waitFor((e) => e.type === 'state')).data, { s: 1 });
      assert.deepEqual((await sse.waitFor((e) => e.type === 'status')).data, { error: 'refresh failed' }, 'a throwing section is an error in the event, not a dead stream');
      const end = Date.now() + 3000;
      while (!sse.comments.includes(': keep-alive') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      assert.ok(sse.comments.includes(': keep-alive'), 'keep-alive comment sent');
      const ee = orchestrator as unknown as EventEmitter;
      assert.deepEqual(['failure', 'recovering', 'recovery', 'cleared'].map((n) => ee.listenerCount(n)), [1, 1, 1, 1]);
      ee.emit('cleared', { failureId: 'f7', resolvedFailureId: 'f7', kind: 'store-missing', reason: 'the store appeared' });
      const cleared = await sse.waitFor((e) => e.type === 'cleared');
      assert.deepEqual((cleared.data as { failureId: string; reason: string }), { failureId: 'f7', resolvedFailureId: 'f7', kind: 'store-missing', reason: 'the store appeared' }, 'a failure its detector closed reaches the page');
      ctrl.abort();
      await sse.ended;
      const until = Date.now() + 3000;
      while (ee.listenerCount('failure') > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(['failure', 'recovering', 'recovery', 'cleared'].map((n) => ee.listenerCount(n)), [0, 0, 0, 0], 'listeners removed with the client');
    } finally {
      await app.close();
    }
  });
});

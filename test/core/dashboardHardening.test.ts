/**
 * The dashboard's event stream (and GET /status) against what plugins and clients may do: a
 * status section holding a BigInt, a cycle, or an async snapshot() that rejects must not crash
 * the agent (the stream serializes from a timer, where a throw or an unhandled rejection ends a
 * Node 20 process); a client that never reads must not grow the agent's memory without bound;
 * many clients share one subscription and one refresh; the page keeps a bounded failure list.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import vm from 'node:vm';
import { describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { StatusSection } from '../../core/contracts/StatusSection.js';
import { dashboardDir, mountDashboard, type DashboardOptions } from '../../core/http/dashboard.js';
import { buildServer, type HttpDeps } from '../../core/http/server.js';
import type { Orchestrator } from '../../core/orchestrator/orchestrator.js';
import { captureLogger } from '../helpers/logCapture.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `body` with the process's uncaughtException/unhandledRejection/warning events collected (not fatal). */
async function collectingProcessTrouble(body: (trouble: { uncaught: unknown[]; rejections: unknown[]; warnings: Error[] }) => Promise<void>): Promise<void> {
  const trouble = { uncaught: [] as unknown[], rejections: [] as unknown[], warnings: [] as Error[] };
  const saved = { uncaughtException: process.listeners('uncaughtException'), unhandledRejection: process.listeners('unhandledRejection') };
  process.removeAllListeners('uncaughtException');
  process.removeAllListeners('unhandledRejection');
  const onUncaught = (e: unknown) => trouble.uncaught.push(e);
  const onRejection = (e: unknown) => trouble.rejections.push(e);
  const onWarning = (w: Error) => trouble.warnings.push(w);
  process.on('uncaughtException', onUncaught);
  process.on('unhandledRejection', onRejection);
  process.on('warning', onWarning);
  try {
    await body(trouble);
  } finally {
    process.off('uncaughtException', onUncaught);
    process.off('unhandledRejection', onRejection);
    process.off('warning', onWarning);
    for (const l of saved.uncaughtException) process.on('uncaughtException', l);
    for (const l of saved.unhandledRejection) process.on('unhandledRejection', l as NodeJS.UnhandledRejectionListener);
  }
}

/** The SSE events of a stream, parsed as they come; `close()` aborts it. */
async function openStream(port: number): Promise<{ status: number; events: Array<{ type: string; data: unknown }>; close: () => void; body?: unknown }> {
  const ctrl = new AbortController();
  const res = await fetch(`http://127.0.0.1:${port}/events`, { signal: ctrl.signal });
  const events: Array<{ type: string; data: unknown }> = [];
  if (res.status !== 200) return { status: res.status, events, close: () => ctrl.abort(), body: await res.json() };
  void (async () => {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true as const }));
      if (done) return;
      buf += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (type && data !== undefined) events.push({ type, data: JSON.parse(data) });
      }
    }
  })();
  return { status: res.status, events, close: () => ctrl.abort() };
}

async function until(what: string, pred: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function dashboardApp(o: Omit<DashboardOptions, 'orchestrator'>): Promise<{ app: FastifyInstance; port: number; ee: EventEmitter }> {
  const ee = new EventEmitter();
  const app = Fastify();
  mountDashboard(app, { orchestrator: ee as unknown as Orchestrator, ...o });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, port: (app.server.address() as { port: number }).port, ee };
}

const circular = (): unknown => {
  const o: Record<string, unknown> = { a: 1 };
  o.self = o;
  return o;
};

describe('dashboard event stream: what sections hold', () => {
  it('a section holding a BigInt, a cycle or a rejecting promise is its own value or error; the agent lives', async () => {
    await collectingProcessTrouble(async (trouble) => {
      const { app, port, ee } = await dashboardApp({
        status: () => ({ s: 1, lsn: 7n }),
        // What server.ts's sections() would hold for such plugins, were it not guarded itself.
        refresh: () => ({ replication: { lsn: 5n }, loop: circular(), remote: (async () => { throw new Error('replica socket gone'); })(), health: { healthy: true } }),
        refreshMs: 30,
        keepAliveMs: 10_000,
      });
      try {
        const s = await openStream(port);
        assert.equal(s.status, 200);
        await until('two status events', () => s.events.filter((e) => e.type === 'status').length >= 2);
        assert.deepEqual(s.events[0], { type: 'state', data: { s: 1, lsn: '7' } });
        const status = s.events.find((e) => e.type === 'status')!.data as Record<string, unknown>;
        assert.deepEqual(status.replication, { lsn: '5' }, 'a BigInt as its decimal string');
        assert.deepEqual(status.health, { healthy: true }, 'the good sections go out');
        assert.match((status.loop as { error: string }).error, /not serializable as JSON/);
        assert.deepEqual(status.remote, { error: 'asynchronous status section' });
        ee.emit('failure', { id: 'f1', evidence: { bytes: 10n, loop: circular() } });
        ee.emit('recovery', { failureId: 'f2', evidence: { bytes: 11n } });
        await until('the recovery event', () => s.events.some((e) => e.type === 'recovery'));
        assert.match((s.events.find((e) => e.type === 'failure')!.data as { error: string }).error, /not serializable as JSON/, 'an unserializable event is an error event, not a crash');
        assert.deepEqual(s.events.find((e) => e.type === 'recovery')!.data, { failureId: 'f2', evidence: { bytes: '11' } });
        s.close();
        await sleep(50);
      } finally {
        await app.close();
      }
      assert.deepEqual(trouble.uncaught, [], 'uncaught exceptions (each would end the agent)');
      assert.deepEqual(trouble.rejections, [], 'unhandled rejections (each would end the agent)');
    });
  });

  it('GET /status and /events on the real server: each plugin section made JSON on its own', async () => {
    const sections: StatusSection[] = [
      { name: 'replication', snapshot: () => ({ lsn: 5n }) },
      { name: 'remote', snapshot: async () => { throw new Error('replica socket gone'); } },
      { name: 'loop', snapshot: circular },
      { name: 'broken', snapshot: () => { throw new Error('no data'); } },
      { name: 'fine', snapshot: () => ({ ok: true }) },
    ];
    const orchestrator = Object.assign(new EventEmitter(), { openFailures: () => [], recentRecoveries: () => [], recentFailures: () => [], snapshot: () => ({}) });
    const deps = {
      config: { agent: { http: {} }, stores: [], source: null },
      log: captureLogger().log,
      host: { status: () => [], contributions: (t: unknown) => (t === StatusSection ? sections.map((value) => ({ plugin: 'p', value })) : []), isRunning: () => true },
      orchestrator,
      bus: {},
      metrics: new Registry(),
      version: 'test',
    } as unknown as HttpDeps;
    await collectingProcessTrouble(async (trouble) => {
      const app = buildServer(deps);
      await app.listen({ host: '127.0.0.1', port: 0 });
      try {
        const port = (app.server.address() as { port: number }).port;
        const res = await fetch(`http://127.0.0.1:${port}/status`);
        assert.equal(res.status, 200);
        const body = (await res.json()) as Record<string, unknown>;
        assert.deepEqual(body.replication, { lsn: '5' });
        assert.deepEqual(body.remote, { error: 'asynchronous status section' });
        assert.match((body.loop as { error: string }).error, /not serializable as JSON/);
        assert.deepEqual(body.broken, { error: 'no data' });
        assert.deepEqual(body.fine, { ok: true });
        const s = await openStream(port);
        await until('a status event', () => s.events.some((e) => e.type === 'status'), 3000);
        assert.deepEqual((s.events[0]!.data as Record<string, unknown>).replication, { lsn: '5' });
        assert.deepEqual((s.events.find((e) => e.type === 'status')!.data as Record<string, unknown>).remote, { error: 'asynchronous status section' });
        s.close();
        await sleep(50);
      } finally {
        await app.close();
      }
      assert.deepEqual(trouble.uncaught, []);
      assert.deepEqual(trouble.rejections, []);
    });
  });
});

describe('dashboard event stream: what clients do', () => {
  it('a client that never reads is dropped, not buffered for without bound', async () => {
    const { app, port, ee } = await dashboardApp({ status: () => ({ s: 1 }), refresh: () => ({}), refreshMs: 100_000, keepAliveMs: 100_000 });
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => {});
    try {
      await new Promise((r) => sock.once('connect', r));
      sock.write('GET /events HTTP/1.1\r\nHost: x\r\n\r\n');
      sock.pause(); // a reader that never reads
      await until('the stream to subscribe', () => ee.listenerCount('failure') === 1);
      const before = process.memoryUsage().rss;
      const big = 'x'.repeat(64 * 1024);
      for (let i = 0; i < 3000; i++) ee.emit('failure', { id: `f${i}`, evidence: { big } });
      await sleep(200);
      const grown = process.memoryUsage().rss - before;
      assert.ok(grown < 64 * 1024 * 1024, `rss grew by ${(grown / 2 ** 20).toFixed(0)} MiB for one client that never reads`);
      assert.equal(ee.listenerCount('failure'), 0, 'the stream was dropped (its subscription with it)');
    } finally {
      sock.destroy();
      await app.close();
    }
  });

  it('many clients: one subscription and one refresh per tick, no listener-leak warning, a cap with a reason', async () => {
    let refreshes = 0;
    await collectingProcessTrouble(async (trouble) => {
      const { app, port, ee } = await dashboardApp({ status: () => ({ s: 1 }), refresh: () => ({ n: ++refreshes }), refreshMs: 50, keepAliveMs: 10_000, maxStreams: 12 });
      const open: Array<Awaited<ReturnType<typeof openStream>>> = [];
      try {
        for (let i = 0; i < 12; i++) open.push(await openStream(port));
        assert.deepEqual(open.map((s) => s.status), Array(12).fill(200));
        assert.deepEqual(['failure', 'recovering', 'recovery'].map((n) => ee.listenerCount(n)), [1, 1, 1], 'one shared subscription');
        const over = await openStream(port);
        assert.equal(over.status, 503);
        assert.match((over.body as { error: string }).error, /too many dashboard event streams open \(12/);

        await until('every stream to have its state', () => open.every((s) => s.events.length > 0));
        const r0 = refreshes;
        const t0 = Date.now();
        await sleep(500);
        const ticks = (Date.now() - t0) / 50;
        assert.ok(refreshes - r0 <= ticks + 2, `${refreshes - r0} refreshes in ${ticks.toFixed(0)} ticks for 12 streams: once per tick`);
        // Every stream got the same refresh (computed once, sent to all).
        const last = refreshes - 1;
        await until('every stream to get one refresh', () => open.every((s) => s.events.some((e) => e.type === 'status' && (e.data as { n: number }).n === last)));

        open.pop()!.close();
        // The server sees the close a moment later: retry until the freed place is taken.
        let again = await openStream(port);
        for (let i = 0; i < 100 && again.status !== 200; i++) {
          await sleep(20);
          again = await openStream(port);
        }
        open.push(again);
        assert.equal(open.at(-1)!.status, 200, 'a place freed by a closed stream is taken again');
      } finally {
        for (const s of open) s.close();
        await sleep(50);
        await app.close();
      }
      assert.deepEqual(trouble.warnings.filter((w) => w.name === 'MaxListenersExceededWarning'), []);
      assert.deepEqual(['failure', 'recovering', 'recovery'].map((n) => ee.listenerCount(n)), [0, 0, 0], 'unsubscribed with the last stream');
    });
  });

  it('on a running agent: stalled streams past the default cap get 503, no leak warning, and stop does not wait', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-dashcap-'));
    const TOKEN = 'dashboard-token-0123456789';
    const config = validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', token: TOKEN } } }, path.join(dir, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    const socks: net.Socket[] = [];
    try {
      await collectingProcessTrouble(async (trouble) => {
        await agent.start();
        const port = Number(new URL(`http://${agent.httpAddress}`).port);
        const statusLines = await Promise.all(Array.from({ length: 40 }, () => new Promise<string>((resolve) => {
          const s = net.connect(port, '127.0.0.1');
          socks.push(s);
          s.on('error', () => resolve('error'));
          s.once('data', (d: Buffer) => {
            resolve(d.toString('latin1').split('\r\n')[0]!);
            s.pause(); // and never read again
          });
          s.write(`GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
        })));
        assert.equal(statusLines.filter((l) => / 200 /.test(l)).length, 32, statusLines.join('; '));
        assert.equal(statusLines.filter((l) => / 503 /.test(l)).length, 8, statusLines.join('; '));
        const t0 = Date.now();
        await Promise.race([agent.stop(), new Promise((_, rej) => setTimeout(() => rej(new Error('stop hung')), 8000))]);
        assert.ok(Date.now() - t0 < 3000, `stopped in ${Date.now() - t0} ms`);
        assert.deepEqual(trouble.warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
      });
    } finally {
      for (const s of socks) s.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('dashboard page', () => {
  it('keeps the newest 500 failures, not every one it has seen', () => {
    // The page's script in a context whose DOM is an inert stand-in: only its state is looked at.
    const inert: unknown = new Proxy(function () {}, {
      get: (_t, k) => (k === Symbol.toPrimitive ? () => '' : k === Symbol.iterator ? function* () {} : k === 'then' ? undefined : inert),
      apply: () => inert,
      construct: () => inert as object,
    });
    const context = vm.createContext({
      document: inert,
      window: { Node: function Node() {}, setTimeout: () => 0, setInterval: () => 0, location: inert },
      sessionStorage: { getItem: () => null, setItem: () => {} },
      fetch: () => new Promise(() => {}),
      TextDecoder,
      AbortController,
      console,
    });
    vm.runInContext(readFileSync(new URL('dashboard.js', dashboardDir()), 'utf8'), context);
    const t0 = Date.now();
    const size = JSON.parse(vm.runInContext(`
      for (let i = 0; i < 2000; i++) noteFailure({ id: 'f' + i, kind: 'k', priority: 'P3', subject: 's', detectedAt: ${t0} + i, evidence: {} });
      noteRecovery({ failureId: 'old', kind: 'k', priority: 'P3', subject: 's', detectedAt: ${t0} - 1, outcome: 'recovered', escalated: false });
      JSON.stringify([state.failures.size, state.failures.has('f1999'), state.failures.has('f1500'), state.failures.has('f1499'), state.failures.has('old')])
    `, context) as string) as unknown[];
    assert.deepEqual(size, [500, true, true, false, false]);
  });
});

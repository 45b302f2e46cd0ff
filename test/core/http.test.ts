import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { tokenMatches } from '../../core/http/auth.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { captureLogger } from '../helpers/logCapture.js';
import { BIN } from '../helpers/cli.js';
import { killedWriter, tmpStoreDir } from '../helpers/store.js';

const TOKEN = 'test-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/** The environment for a child, without RECOVERY_AGENT_TOKEN unless given. */
const envWith = (token?: string): NodeJS.ProcessEnv => {
  const { RECOVERY_AGENT_TOKEN: _drop, ...rest } = process.env;
  return token === undefined ? rest : { ...rest, RECOVERY_AGENT_TOKEN: token };
};

/** `recovery-agent status …` in a child process. */
function runStatus(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [BIN, 'status', ...args], { env });
    let out = '';
    let err = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('exit', (code) => resolve({ code, out, err }));
  });
}

/**
 * A POST announcing `length` bytes of body of which only `first` are sent: the answer must come
 * without the rest (a server that wanted the whole body would never answer).
 */
function postPartial(base: string, urlPath: string, headers: Record<string, string>, length: number, first: Buffer): Promise<{ status: number; body: string; connection: string | undefined }> {
  const url = new URL(urlPath, base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, 'content-length': String(length) } });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer to a partial ${length}-byte body within 5 s`));
    }, 5000);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode!, body, connection: res.headers.connection });
        req.destroy();
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.write(first);
  });
}

/** Every line of a Prometheus text exposition is a comment, blank, or `name{labels} value`. */
function assertPrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    // (prom-client writes NaN as "Nan"; Prometheus parses floats case-insensitively.)
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[Nn]a[Nn]|\+Inf|-Inf)$/.exec(line);
    assert.ok(m, `not Prometheus text: ${JSON.stringify(line)}`);
    samples.set(m[1]! + (m[2] ?? ''), Number(m[3]));
  }
  return samples;
}

describe('http api', () => {
  let agent: Agent;
  let base: string;
  let store: string;

  before(async () => {
    store = tmpStoreDir();
    killedWriter({ dir: store, commits: 30, open: 2, pages: 16 });
    const dir = path.dirname(store);
    const config = validateConfig(
      { agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', token: TOKEN } }, stores: [{ id: 'demo', path: store }] },
      path.join(dir, 'agent.yaml'),
      {},
    );
    agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    base = `http://${agent.httpAddress}`;
  });
  after(async () => {
    await agent.stop();
  });

  it('listens on loopback', () => {
    assert.match(agent.httpAddress!, /^127\.0\.0\.1:\d+$/);
  });

  it('GET /health is 200 while healthy', async () => {
    const res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: 'healthy', reasons: [] });
  });

  it('GET /health and /metrics need no token; every other GET, and an unknown path, needs it', async () => {
    assert.equal((await fetch(`${base}/health`)).status, 200);
    assert.equal((await fetch(`${base}/metrics`)).status, 200);
    for (const p of ['/status', '/failures', '/recoveries', '/snapshots?store=demo', '/health/history', '/no-such-endpoint']) {
      const none = await fetch(`${base}${p}`);
      assert.equal(none.status, 401, `GET ${p} without the token`);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer');
      assert.deepEqual(await none.json(), { error: 'missing or wrong bearer token' }, `GET ${p} says nothing else`);
      assert.equal((await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${TOKEN.slice(0, -1)}x` } })).status, 401, `GET ${p} with a wrong token`);
      assert.notEqual((await fetch(`${base}${p}`, { headers: AUTH })).status, 401, `GET ${p} with the token`);
    }
    assert.equal((await fetch(`${base}/no-such-endpoint`, { headers: AUTH })).status, 404);
  });

  it('checks the token before reading the body: a huge or malformed body without it gets 401, not 413 or 400', async () => {
    const json = { 'content-type': 'application/json' };
    // 100 MiB announced (the limit is 64 KiB), 16 KiB sent.
    const huge = await postPartial(base, '/recoveries', json, 100 * 2 ** 20, Buffer.alloc(16 * 1024, 0x20));
    assert.equal(huge.status, 401, huge.body);
    assert.equal(huge.connection, 'close', 'the connection is closed rather than the body drained');
    // With the token the same request is judged by its body: so the 401 above came first.
    assert.equal((await postPartial(base, '/recoveries', { ...json, ...AUTH }, 100 * 2 ** 20, Buffer.alloc(16 * 1024, 0x20))).status, 413);
    const malformed = await fetch(`${base}/recoveries`, { method: 'POST', headers: json, body: '{"store":' });
    assert.equal(malformed.status, 401);
    const wrongType = await fetch(`${base}/scans`, { method: 'POST', headers: { 'content-type': 'application/x-nonsense' }, body: 'x' });
    assert.equal(wrongType.status, 401);
    assert.equal((await fetch(`${base}/scans`, { method: 'POST', headers: { 'content-type': 'application/x-nonsense', ...AUTH }, body: 'x' })).status, 415);
  });

  it('GET /status lists plugins and statistics', async () => {
    const s = (await (await fetch(`${base}/status`, { headers: AUTH })).json()) as { plugins: Array<{ id: string; state: string }>; statistics: { failuresDetected: number }; agent: { pid: number } };
    assert.equal(s.agent.pid, process.pid);
    assert.ok(s.plugins.some((p) => p.id === 'self-healer' && p.state === 'running'));
    assert.equal(typeof s.statistics.failuresDetected, 'number');
  });

  it('POST /recoveries needs the bearer token', async () => {
    const post = (headers: Record<string, string>) => fetch(`${base}/recoveries`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ store: 'demo' }) });
    const none = await post({});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer');
    assert.equal((await post({ authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await post({ authorization: `Basic ${TOKEN}` })).status, 401);
    const bad = await fetch(`${base}/recoveries`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ store: 'nope' }) });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /configured store/);
    const broken = await fetch(`${base}/recoveries`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: '{"store":' });
    assert.equal(broken.status, 400);
  });

  it('POST /recoveries with the token recovers the store, and /recoveries shows it', async () => {
    const res = await fetch(`${base}/recoveries`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ store: 'demo' }) });
    assert.equal(res.status, 202);
    const { failureId } = (await res.json()) as { failureId: string };
    await agent.orchestrator.idle();
    const list = (await (await fetch(`${base}/recoveries`, { headers: AUTH })).json()) as { recoveries: Array<{ failureId: string; outcome: string; rtoMs: number; attempts: Array<{ action: string; verified: boolean }> }> };
    const r = list.recoveries.find((x) => x.failureId === failureId)!;
    assert.equal(r.outcome, 'recovered');
    assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['recover-store', true]]);
    const failures = (await (await fetch(`${base}/failures`, { headers: AUTH })).json()) as { failures: Array<{ id: string; kind: string }> };
    assert.ok(failures.failures.some((f) => f.id === failureId && f.kind === 'recovery-requested'));
  });

  it('recovery-agent status prints it, as text or JSON, with the token from RECOVERY_AGENT_TOKEN; unreachable exits 1', async () => {
    const text = await runStatus(['--url', base], envWith(TOKEN));
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /: healthy/);
    assert.match(text.out, /plugins: .*self-healer/);
    const json = await runStatus(['--url', base, '--json'], envWith(TOKEN));
    assert.equal((JSON.parse(json.out) as { agent: { pid: number } }).agent.pid, process.pid);
    const down = await runStatus(['--url', 'http://127.0.0.1:9'], envWith(TOKEN));
    assert.equal(down.code, 1);
    assert.match(down.err, /no agent answers at http:\/\/127\.0\.0\.1:9.*: is it running\? \[RA_ERR_AGENT_UNREACHABLE\]/);
    assert.equal(down.err.trim().split('\n').length, 1, down.err);
  });

  it('recovery-agent status takes the token from --config, and exits 2 naming where to put it when it has none or a wrong one', async () => {
    const cfg = path.join(path.dirname(store), 'status.yaml');
    writeFileSync(cfg, `agent: { http: { listen: "${agent.httpAddress}", token: "${TOKEN}" } }\n`);
    const viaConfig = await runStatus(['--config', cfg, '--json'], envWith());
    assert.equal(viaConfig.code, 0, viaConfig.err);
    assert.equal((JSON.parse(viaConfig.out) as { agent: { pid: number } }).agent.pid, process.pid);
    const none = await runStatus(['--url', base], envWith());
    assert.equal(none.code, 2);
    assert.match(none.err, /refused a request without a token \(HTTP 401\): set RECOVERY_AGENT_TOKEN, or pass --config/);
    const wrong = await runStatus(['--url', base], envWith('not-the-token-0123456789'));
    assert.equal(wrong.code, 2);
    assert.match(wrong.err, /refused the token given/);
  });

  it('POST /scans scans a store with the token, and the scan shows in /metrics', async () => {
    const noToken = await fetch(`${base}/scans`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ store: 'demo' }) });
    assert.equal(noToken.status, 401);
    const res = await fetch(`${base}/scans`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ store: 'demo' }) });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { pagesScanned: number; corrupt: unknown[] };
    assert.equal(body.pagesScanned, 16);
    assert.deepEqual(body.corrupt, []);
    const samples = assertPrometheusText(await (await fetch(`${base}/metrics`)).text());
    assert.ok(samples.get('recovery_agent_scan_pages_total')! >= 16);
    assert.equal(samples.get('recovery_agent_corruption_detected_total'), 0);
    const status = (await (await fetch(`${base}/status`, { headers: AUTH })).json()) as { scrub: { scans: number } };
    assert.equal(status.scrub.scans, 1);
  });

  it('GET /metrics is Prometheus text with the recovery metrics', async () => {
    const res = await fetch(`${base}/metrics`);
    assert.match(res.headers.get('content-type')!, /^text\/plain/);
    const samples = assertPrometheusText(await res.text());
    assert.equal(samples.get('recovery_agent_failures_detected_total{kind="recovery-requested",priority="P1"}'), 1);
    assert.equal(samples.get('recovery_agent_recoveries_total{outcome="recovered",priority="P1"}'), 1);
    assert.equal(samples.get('recovery_agent_recovery_duration_seconds_count{priority="P1"}'), 1);
    assert.equal(samples.get('recovery_agent_rto_compliance_ratio'), 1);
    assert.ok(samples.has('recovery_agent_process_cpu_user_seconds_total'));
    // The store was recovered twice: at start (two losers rolled back) and on request.
    assert.equal(samples.get('recovery_agent_rollbacks_total'), 2);
    assert.ok(samples.get('recovery_agent_store_recoveries_total{result="recovered"}')! >= 2);
  });
});

describe('bearer token check', () => {
  it('accepts only the exact token', () => {
    assert.ok(tokenMatches(`Bearer ${TOKEN}`, TOKEN));
    assert.ok(tokenMatches(`bearer ${TOKEN}`, TOKEN));
    assert.ok(!tokenMatches(`Bearer ${TOKEN}x`, TOKEN));
    assert.ok(!tokenMatches(TOKEN, TOKEN));
    assert.ok(!tokenMatches(undefined, TOKEN));
    assert.ok(!tokenMatches('Bearer ', TOKEN));
  });
});

describe('http api without a token, on loopback', () => {
  it('serves every GET as before, and refuses mutating calls with 403 saying how to enable them', async () => {
    const dir = path.dirname(tmpStoreDir());
    const config = validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } } }, path.join(dir, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    try {
      const base = `http://${agent.httpAddress}`;
      for (const p of ['/health', '/metrics', '/status', '/failures', '/recoveries']) assert.equal((await fetch(`${base}${p}`)).status, 200, `GET ${p}`);
      const res = await fetch(`${base}/recoveries`, { method: 'POST', headers: { authorization: 'Bearer anything', 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as { error: string }).error, /set agent\.http\.token/);
      // Refused before the body is read, too.
      assert.equal((await postPartial(base, '/scans', { 'content-type': 'application/json' }, 100 * 2 ** 20, Buffer.alloc(1024, 0x20))).status, 403);
      const status = await runStatus(['--url', base, '--json'], envWith());
      assert.equal(status.code, 0, status.err);
    } finally {
      await agent.stop();
    }
  });
});

import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../core/config/load.js';
import { tokenMatches } from '../../core/http/auth.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { captureLogger } from '../helpers/logCapture.js';
import { BIN } from '../helpers/cli.js';
import { killedWriter, tmpStoreDir } from '../helpers/store.js';

const TOKEN = 'test-token-0123456789abcdef';

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

  it('GET /status lists plugins and statistics', async () => {
    const s = (await (await fetch(`${base}/status`)).json()) as { plugins: Array<{ id: string; state: string }>; statistics: { failuresDetected: number }; agent: { pid: number } };
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
    const list = (await (await fetch(`${base}/recoveries`)).json()) as { recoveries: Array<{ failureId: string; outcome: string; rtoMs: number; attempts: Array<{ action: string; verified: boolean }> }> };
    const r = list.recoveries.find((x) => x.failureId === failureId)!;
    assert.equal(r.outcome, 'recovered');
    assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['recover-store', true]]);
    const failures = (await (await fetch(`${base}/failures`)).json()) as { failures: Array<{ id: string; kind: string }> };
    assert.ok(failures.failures.some((f) => f.id === failureId && f.kind === 'recovery-requested'));
  });

  it('recovery-agent status prints it, as text or JSON; unreachable exits 1', async () => {
    const { spawn } = await import('node:child_process');
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const c = spawn(process.execPath, [BIN, 'status', ...args]);
        let out = '';
        let err = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (err += d.toString()));
        c.on('exit', (code) => resolve({ code, out, err }));
      });
    const text = await run(['--url', base]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /: healthy/);
    assert.match(text.out, /plugins: .*self-healer/);
    const json = await run(['--url', base, '--json']);
    assert.equal((JSON.parse(json.out) as { agent: { pid: number } }).agent.pid, process.pid);
    const down = await run(['--url', 'http://127.0.0.1:9']);
    assert.equal(down.code, 1);
    assert.match(down.err, /no agent answered at http:\/\/127\.0\.0\.1:9/);
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
    const status = (await (await fetch(`${base}/status`)).json()) as { scrub: { scans: number } };
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

describe('http api without a token', () => {
  it('refuses mutating calls with 403 and says how to enable them', async () => {
    const dir = path.dirname(tmpStoreDir());
    const config = validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } } }, path.join(dir, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    try {
      const res = await fetch(`http://${agent.httpAddress}/recoveries`, { method: 'POST', headers: { authorization: 'Bearer anything', 'content-type': 'application/json' }, body: '{}' });
      assert.equal(res.status, 403);
      assert.match(((await res.json()) as { error: string }).error, /set agent\.http\.token/);
    } finally {
      await agent.stop();
    }
  });
});

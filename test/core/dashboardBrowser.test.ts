/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against a real
 * agent (`recovery-agent run`) supervising the demo writer on a real store. The page asks for
 * the token, loads with no console error and no page error, and a `kill -9` of the writer
 * appears on it as a failure and then as a recovery with its RTO; the delay from the kill to
 * the screen is measured and logged. A screenshot is written to test-artifacts/dashboard.png.
 *
 * A second page, on an in-process agent, gets a failure whose kind, subject and evidence are
 * markup: it must show as text, and nothing of it may run.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { StatusSection, isStatusSection } from '../../core/contracts/StatusSection.js';
import { definePlugin } from '../../core/plugin.js';
import type { ProcessStatus } from '../../core/contracts/ProcessSupervisor.js';
import { BIN } from '../helpers/cli.js';
import { captureLogger } from '../helpers/logCapture.js';
import { repoRoot } from '../helpers/paths.js';
import { needTool } from '../helpers/tools.js';
import { freePort, pidExists } from '../plugins/crash-detector/harness.js';

// The page's globals, for the functions that run in the browser (the project compiles without the DOM lib).
interface El {
  readonly textContent: string | null;
  readonly className?: string;
  readonly children: ArrayLike<El | undefined>;
}
declare const document: { querySelectorAll(selector: string): Iterable<El> & ArrayLike<El>; getElementById(id: string): El | null };
declare const sessionStorage: { getItem(key: string): string | null };
declare const window: unknown;

const TOKEN = 'browser-test-token-0123456789';
const CHROMIUM = '/usr/bin/chromium';
const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-dash-browser-'));
const children: ChildProcess[] = [];
const writers = new Set<number>();
let browser: Browser | null = null;

after(async () => {
  await browser?.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const pid of writers) if (pidExists(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function until<T>(check: () => Promise<T | undefined | null | false> | T | undefined | null | false, ms: number, what: string, context: () => string = () => ''): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${context()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function launch(): Promise<Browser> {
  needTool('chromium', 'chromium');
  browser ??= await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  return browser;
}

/** Console errors and page errors of `page`, as they come. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  return problems;
}

/** The text of the timeline row of the failure whose subject is `subject` (the newest), or ''. */
const timelineRow = (page: Page, subject: string) =>
  page.evaluate((s) => [...document.querySelectorAll('#timeline tbody tr')].find((r) => r.children[3]?.textContent === s)?.textContent ?? '', subject);

describe('dashboard in a real browser (chromium)', () => {
  it('asks for the token, loads cleanly, and shows a kill -9 of the writer as a failure, then its recovery with its RTO', { timeout: 120_000 }, async (t) => {
    const b = await launch();
    const [httpPort, udpPort] = [await freePort(), await freePort()];
    const store = path.join(dir, 'store');
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, [
      `agent: { dataDir: ${path.join(dir, 'agent')}, workers: 1, http: { listen: 127.0.0.1:${httpPort}, token: ${TOKEN} } }`,
      'health: { interval: 1s }',
      'stores:',
      `  - { id: s, engine: pagestore, path: ${store}, scrub: { rate: 1MiB/s, interval: 5s }, snapshots: { dir: ${path.join(dir, 'snapshots')}, every: 1h } }`,
      'processes:',
      '  - id: writer',
      `    command: ${process.execPath}`,
      `    args: [${path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js')}, --store, ${store}, --rate, '20', --pages, '64']`,
      '    store: s',
      `    heartbeat: { udp: 127.0.0.1:${udpPort}, timeout: 2s }`,
      '    restart: { policy: on-failure, backoff: { initial: 100ms, max: 1s }, limit: { burst: 5, within: 60s } }',
      '',
    ].join('\n'));
    const log = path.join(dir, 'agent.log');
    const agent = spawn(process.execPath, [BIN, 'run', '-c', cfg], { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
    children.push(agent);
    const tail = () => readFileSync(log, 'utf8').split('\n').slice(-20).join('\n');
    const base = `http://127.0.0.1:${httpPort}`;
    const writer = await until(async () => {
      try {
        const res = await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: AbortSignal.timeout(2000) });
        const p = ((await res.json()) as { processes?: ProcessStatus[] }).processes?.find((x) => x.id === 'writer');
        return p?.state === 'running' && p.lastHeartbeatAt !== null ? p : undefined;
      } catch {
        return undefined;
      }
    }, 30_000, 'the agent running the writer', tail);
    writers.add(writer.pid!);

    const page = await (await b.newContext({ viewport: { width: 1400, height: 1100 } })).newPage();
    const problems = watch(page);
    await page.goto(`${base}/`);
    // Without the token the API answers 401, and the page asks for it.
    await page.locator('#login').waitFor({ state: 'visible', timeout: 10_000 });
    assert.equal(await page.locator('#live').textContent(), 'needs the token');
    assert.equal(await page.locator('#access').textContent(), 'read-only without the token');
    // Chromium logs the refused request itself; that is the only error allowed before the token.
    assert.ok(problems.every((p) => /401/.test(p)), problems.join('\n'));
    problems.length = 0;
    await page.fill('#token', TOKEN);
    await page.click('#login button[type=submit]');
    await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', null, { timeout: 10_000 });
    await page.waitForFunction((pid) => [...document.querySelectorAll('#processes tbody tr')].some((r) => r.children[0]?.textContent === 'writer' && r.children[1]?.textContent === 'running' && r.children[2]?.textContent === String(pid)), writer.pid, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => sessionStorage.getItem('recovery-agent.token')), TOKEN, 'kept for the session');
    assert.equal(await page.locator('#scrub button').first().isDisabled(), false, '"scan now" enabled with the token');
    assert.equal(await page.locator('#replication-panel').isHidden(), true, 'no replication panel without replication');

    // kill -9 of the writer: on screen as a failure, then as its recovery with its RTO.
    const killedAt = Date.now();
    process.kill(writer.pid!, 'SIGKILL');
    await page.waitForFunction(() => [...document.querySelectorAll('#timeline tbody tr')].some((r) => r.children[2]?.textContent === 'process-crash' && r.children[3]?.textContent === 'process:writer'), null, { timeout: 30_000, polling: 10 });
    const failureShownMs = Date.now() - killedAt;
    await page.waitForFunction(() => [...document.querySelectorAll('#timeline tbody tr')].some((r) => r.children[3]?.textContent === 'process:writer' && r.children[4]?.textContent === 'recovered' && /^RTO \d/.test(r.children[5]?.textContent ?? '')), null, { timeout: 60_000, polling: 10 });
    const recoveryShownMs = Date.now() - killedAt;
    const row = await timelineRow(page, 'process:writer');
    t.diagnostic(`kill -9 → failure on screen in ${failureShownMs} ms, → recovery on screen in ${recoveryShownMs} ms; row: ${row}`);
    assert.match(row, /P1process-crashprocess:writerrecovered.*RTO [\d.]+ (ms|s) \/ [\d.]+ (ms|s|min)/);
    // The recovery's record says when it finished: it must have been on screen within a second of that.
    const rec = ((await (await fetch(`${base}/recoveries`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { recoveries: Array<{ subject: string; finishedAt: number; outcome: string }> }).recoveries.filter((r) => r.subject === 'process:writer').at(-1)!;
    assert.equal(rec.outcome, 'recovered');
    const lag = killedAt + recoveryShownMs - rec.finishedAt;
    t.diagnostic(`recovery finished → on screen: ${lag} ms (polling every 10 ms)`);
    assert.ok(lag < 1000, `recovery on screen ${lag} ms after it finished`);
    assert.ok(failureShownMs < 5000, `the failure was on screen ${failureShownMs} ms after the kill`);
    const restarted = await until(async () => {
      const p = ((await (await fetch(`${base}/status`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { processes: ProcessStatus[] }).processes.find((x) => x.id === 'writer');
      return p?.state === 'running' && p.pid !== writer.pid && p.pid !== null ? p : undefined;
    }, 30_000, 'the writer restarted', tail);
    writers.add(restarted.pid!);
    await page.waitForFunction((pid) => [...document.querySelectorAll('#processes tbody tr')].some((r) => r.children[2]?.textContent === String(pid)), restarted.pid, { timeout: 5000 });
    await page.waitForFunction(() => /^\d+$/.test(document.getElementById('score')?.textContent ?? ''), null, { timeout: 10_000 });
    await page.waitForFunction(() => document.getElementById('open-count')?.textContent === '0' && /recovered 1/.test(document.getElementById('stats')?.textContent ?? ''), null, { timeout: 5000 });

    const artifacts = path.join(repoRoot(), 'test-artifacts');
    mkdirSync(artifacts, { recursive: true });
    const shot = path.join(artifacts, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
    assert.deepEqual(problems, [], 'no console error and no page error once the token is given');

    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    await page.waitForFunction(() => document.getElementById('live')?.textContent !== 'live', null, { timeout: 10_000 });
  });

  it('shows replication roles and lag as a table, from the replication status section', { timeout: 60_000 }, async () => {
    const b = await launch();
    const d = path.join(dir, 'replication');
    // A stand-in for the replication plugin's section (its shape: plugins/replication/index.ts), so
    // the page is tested without two agents; the two-agent tests check the section itself.
    const section = {
      p: { role: 'primary', listen: '127.0.0.1:7000', mode: 'sync', owner: 'up', epoch: 1, flushedLsn: 9000, syncState: 'sync', replicas: [
        { id: 'r1', address: '127.0.0.1:5555', state: 'streaming', durableLsn: 9000, appliedLsn: 8000, lagBytes: 1000, lagMs: 12.6, lagging: false },
        { id: '<b>r2</b>', address: '127.0.0.1:5556', state: 'catching-up', durableLsn: 100, appliedLsn: 100, lagBytes: 5 << 20, lagMs: 4000, lagging: true },
      ] },
      q: { role: 'replica', id: 'r9', primary: '127.0.0.1:7001', state: 'refused', reason: 'authentication failed', epoch: 1, durableLsn: 64, appliedLsn: 64, lagBytes: null, lagMs: null, lagging: false },
    };
    const fake = definePlugin({
      id: 'fake-replication-status',
      contractVersion: '^1.0.0',
      provides: [StatusSection],
      register(ctx) {
        ctx.provide(StatusSection, { name: 'replication', snapshot: () => section }, isStatusSection);
        return {};
      },
    });
    const config = validateConfig({ agent: { dataDir: path.join(d, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } }, health: { enabled: false } }, path.join(d, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: [...builtinPlugins, fake], log: captureLogger().log });
    await agent.start();
    try {
      const page = await (await b.newContext()).newPage();
      const problems = watch(page);
      await page.goto(`http://${agent.httpAddress}/`);
      await page.waitForFunction(() => document.querySelectorAll('#replication tbody tr').length === 4, null, { timeout: 10_000 });
      const rows = await page.evaluate(() => [...document.querySelectorAll('#replication tbody tr')].map((r) => Array.from(r.children, (c) => c?.textContent)));
      assert.deepEqual(rows[0]!.slice(0, 5), ['p', 'primary (sync)', '127.0.0.1:7000', 'owner up · sync', '1']);
      assert.deepEqual(rows[1]!.slice(2), ['r1 127.0.0.1:5555', 'streaming', '–', '9000', '8000', '1000 B', '13 ms']);
      assert.deepEqual(rows[2]!.slice(2), ['<b>r2</b> 127.0.0.1:5556', 'catching-up', '–', '100', '100', '5.0 MiB', '4.0 s']);
      assert.deepEqual(rows[3]!.slice(0, 4), ['q', 'replica r9', '127.0.0.1:7001', 'refused (authentication failed)']);
      assert.equal(await page.locator('#replication-panel').isVisible(), true);
      assert.equal(await page.evaluate(() => document.querySelectorAll('#replication b').length), 0, 'a replica id is text, not markup');
      assert.equal(await page.evaluate(() => document.querySelectorAll('#replication tbody tr')[2]!.children[7]!.className), 'warn', 'a lagging replica is marked');
      await page.screenshot({ path: path.join(repoRoot(), 'test-artifacts', 'dashboard-replication.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await agent.stop();
    }
  });

  it('draws the RTO histogram of the latest chaos report (agent.http.chaosReport), its kinds as rows', { timeout: 60_000 }, async () => {
    const b = await launch();
    const d = path.join(dir, 'chaos');
    mkdirSync(d, { recursive: true });
    // A fixture report in the shape bench/chaos/run.ts writes: 5 recovered trials, one failed (no bar).
    const trial = (kind: string, rto: number | null, status = 'passed') => ({ kind, status, harnessRtoMs: rto, targetMs: 120_000 });
    const report = {
      bench: 'chaos', seed: 7, trialsPerKind: 3, at: '2026-12-01T10:00:00.000Z',
      kinds: [
        { kind: 'app-sigkill', trials: 3, passed: 3, failed: 0, unsupported: 0, targetMs: 120_000, rtoMs: { n: 3, p50: 700, p95: 1500, p99: 1500, max: 1500 } },
        { kind: '<b>page-x</b>', trials: 3, passed: 2, failed: 1, unsupported: 0, targetMs: 10_000, rtoMs: { n: 2, p50: 4000, p95: 150_000, p99: 150_000, max: 150_000 } },
      ],
      trials: [trial('app-sigkill', 300), trial('app-sigkill', 700), trial('app-sigkill', 1500), trial('<b>page-x</b>', 4000), trial('<b>page-x</b>', 150_000), trial('<b>page-x</b>', 90_000, 'failed')],
    };
    writeFileSync(path.join(d, 'chaos.json'), JSON.stringify(report));
    const config = validateConfig({ agent: { dataDir: path.join(d, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', chaosReport: './chaos.json' } }, health: { enabled: false } }, path.join(d, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    try {
      const page = await (await b.newContext()).newPage();
      const problems = watch(page);
      await page.goto(`http://${agent.httpAddress}/`);
      await page.waitForFunction(() => document.querySelectorAll('#chaos-chart .rto-bar').length > 0, null, { timeout: 10_000 });
      assert.equal(await page.locator('#chaos-panel').isVisible(), true);
      assert.equal(await page.evaluate(() => document.querySelectorAll('#chaos-chart .rto-bar').length), 5, 'one bar per kind and bin with trials');
      const counts = await page.evaluate(() => Array.from(document.querySelectorAll('#chaos-chart .rto-count'), (e) => e.textContent));
      assert.deepEqual(counts, ['', '1', '1', '1', '1', '', '', '', '', '1'], 'the failed trial is in no bin');
      const bins = await page.evaluate(() => Array.from(document.querySelectorAll('#chaos-chart .rto-bin'), (e) => e.textContent));
      assert.deepEqual(bins, ['< 250 ms', '< 500 ms', '< 1.0 s', '< 2.0 s', '< 5.0 s', '< 10.0 s', '< 30.0 s', '< 60.0 s', '< 2.0 min', '≥ 2.0 min']);
      const rows = await page.evaluate(() => [...document.querySelectorAll('#chaos-kinds tbody tr')].map((r) => Array.from(r.children, (c) => c?.textContent)));
      assert.deepEqual(rows, [
        ['app-sigkill', '3/3', '700 ms', '1.5 s', '1.5 s', '2.0 min'],
        ['<b>page-x</b>', '2/3', '4.0 s', '2.5 min', '2.5 min', '10.0 s'],
      ]);
      assert.equal(await page.evaluate(() => document.querySelectorAll('#chaos-kinds tbody tr')[1]!.children[3]!.className), 'bad', 'a p95 over its target is marked');
      assert.match((await page.locator('#chaos-meta').textContent()) ?? '', /^5 recovered trials · seed 7 · 3 per kind · /);
      assert.equal(await page.evaluate(() => document.querySelectorAll('#chaos-panel b').length), 0, 'a kind is text, not markup');
      await page.screenshot({ path: path.join(repoRoot(), 'test-artifacts', 'dashboard-chaos.png'), fullPage: true });
      assert.deepEqual(problems, []);
    } finally {
      await agent.stop();
    }
  });

  it('shows hostile strings from a failure as text, and runs none of them', { timeout: 60_000 }, async () => {
    const b = await launch();
    const d = path.join(dir, 'hostile');
    const config = validateConfig({ agent: { dataDir: path.join(d, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } }, health: { enabled: false } }, path.join(d, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    try {
      const page = await (await b.newContext()).newPage();
      const problems = watch(page);
      await page.goto(`http://${agent.httpAddress}/`);
      await page.waitForFunction(() => document.getElementById('live')?.textContent === 'live', null, { timeout: 10_000 });
      const evil = '<img src=x onerror="window.pwned=1">';
      agent.bus.publish('test', { kind: `k${evil}`, priority: 'P3', subject: `s${evil}`, evidence: { html: `<script>window.pwned=2</script>${evil}` } });
      await page.waitForFunction((s) => [...document.querySelectorAll('#timeline tbody tr')].some((r) => r.children[3]?.textContent === s), `s${evil}`, { timeout: 10_000 });
      assert.equal(await page.evaluate(() => document.querySelectorAll('img, main script').length), 0, 'no element made of the data');
      assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
      assert.equal(await page.locator('#access').textContent(), 'read-only without the token');
      assert.deepEqual(problems, []);
    } finally {
      await agent.stop();
    }
  });
});

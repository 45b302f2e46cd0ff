/**
 * The deployment files in deploy/: the systemd unit (systemd-analyze verify), the Prometheus
 * alert rules (promtool check rules, promtool test rules) and the Grafana dashboard, checked
 * against a live agent's /metrics (promtool check metrics) — started with the unit's own
 * ExecStart= command line, so the unit starts an agent that really runs.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { repoRoot } from '../helpers/paths.js';
import { needTool } from '../helpers/tools.js';

const DEPLOY = path.join(repoRoot(), 'deploy');
const UNIT = path.join(DEPLOY, 'recovery-agent.service');
const ALERTS = path.join(DEPLOY, 'prometheus-alerts.yml');
const DASHBOARD = path.join(DEPLOY, 'grafana-dashboard.json');
/** Where the unit expects things, and where they are in this checkout. */
const INSTALLED_CONFIG = '/etc/recovery-agent/agent.yaml';

/** The unit's text with its install paths pointed at this checkout, its node and `config`. */
function localUnit(config: string): string {
  return readFileSync(UNIT, 'utf8')
    .replaceAll('/usr/bin/node', process.execPath)
    .replaceAll('/opt/recovery-agent', repoRoot())
    .replaceAll(INSTALLED_CONFIG, config);
}

/** The values of `key=` in the unit's [Service] section. */
function serviceValues(unit: string, key: string): string[] {
  const service = unit.split(/^\[/m).find((s) => s.startsWith('Service]')) ?? '';
  return service.split('\n').filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));
}

/** The recovery_agent_ metric families a /metrics text declares (`# TYPE name type`). */
function families(metricsText: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of metricsText.matchAll(/^# TYPE (recovery_agent_\w+) (\w+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** The recovery_agent_ metric names a PromQL expression reads, histogram series to their family. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\brecovery_agent_\w+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, ''));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

describe('deploy/', () => {
  let dir: string;
  let config: string;
  let agent: ChildProcess | undefined;
  let agentErr = '';
  let metricsText = '';

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ra-deploy-'));
    const port = await freePort();
    config = path.join(dir, 'agent.yaml');
    // A store, a supervised process, a scrub and snapshots: every built-in plugin registers its metrics.
    writeFileSync(config, `agent: { dataDir: ./state, workers: 1, logLevel: warn, http: { listen: '127.0.0.1:${port}' } }
stores:
  - { id: s1, engine: pagestore, path: ./store, scrub: { rate: 4MiB/s, interval: 30s }, snapshots: { dir: ./snaps, every: 1h } }
processes:
  - id: writer
    command: ${process.execPath}
    args: [${path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js')}, --store, ./store, --rate, '20']
    store: s1
`);
    mkdirSync(path.join(dir, 'unit'));
    // The unit's own command line, pointed at this checkout and the test config.
    const execStart = serviceValues(localUnit(config), 'ExecStart');
    assert.equal(execStart.length, 1, 'one ExecStart=');
    const [cmd, ...args] = execStart[0]!.split(/\s+/);
    agent = spawn(cmd!, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    agent.stderr!.on('data', (d: Buffer) => (agentErr += d.toString()));
    let exited = false;
    agent.on('exit', () => (exited = true));
    // Ready once /metrics answers with the plugins' metrics (the HTTP API starts after the plugins).
    for (let waited = 0; !/^# TYPE recovery_agent_process_restarts_total /m.test(metricsText); waited += 200) {
      assert.ok(!exited, `the agent exited: ${agentErr}`);
      if (waited > 30_000) assert.fail(`no /metrics with the plugins' metrics in time: ${agentErr}\n${metricsText}`);
      await new Promise((r) => setTimeout(r, 200));
      metricsText = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => (r.ok ? r.text() : ''), () => '');
    }
  });

  after(async () => {
    await stopAgent();
    rmSync(dir, { recursive: true, force: true });
  });

  async function stopAgent(): Promise<void> {
    if (!agent || agent.exitCode !== null || agent.signalCode !== null) return;
    const exited = new Promise((resolve) => agent!.on('exit', resolve));
    agent.kill('SIGTERM'); // it stops its supervised writer itself
    const timer = setTimeout(() => agent!.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  }

  it('/metrics of a live agent passes `promtool check metrics`', () => {
    needTool('promtool', 'prometheus');
    const r = spawnSync('promtool', ['check', 'metrics'], { input: metricsText, encoding: 'utf8' });
    assert.equal(`${r.stdout}${r.stderr}`, '', 'promtool reports no problem');
    assert.equal(r.status, 0);
    const types = families(metricsText);
    // The metrics the alerts and dashboard are built on, each registered by its plugin.
    for (const name of ['recovery_agent_rto_compliance_ratio', 'recovery_agent_escalations_total', 'recovery_agent_corruption_detected_total', 'recovery_agent_predicted_exhaustion_seconds', 'recovery_agent_snapshots_total']) {
      assert.ok(types.has(name), `${name} is exported`);
    }
    // The sums prom-client names `_total` although they are gauges are left out; their per-type gauges stay.
    assert.ok(!types.has('recovery_agent_nodejs_active_handles_total'));
    assert.equal(types.get('recovery_agent_nodejs_active_handles'), 'gauge');
  });

  it('`promtool check metrics` is a live check: it rejects a gauge named _total', () => {
    needTool('promtool', 'prometheus');
    const bad = `${metricsText}# HELP recovery_agent_x_total x\n# TYPE recovery_agent_x_total gauge\nrecovery_agent_x_total 1\n`;
    const r = spawnSync('promtool', ['check', 'metrics'], { input: bad, encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(`${r.stdout}${r.stderr}`, /recovery_agent_x_total/);
  });

  it('the alert rules pass `promtool check rules` and read only metrics the agent exports', () => {
    needTool('promtool', 'prometheus');
    const r = spawnSync('promtool', ['check', 'rules', ALERTS], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /SUCCESS: \d+ rules found/);
    const exprs = [...readFileSync(ALERTS, 'utf8').matchAll(/^\s+expr: (.+)$/gm)].map((m) => m[1]!);
    assert.ok(exprs.length >= 5);
    const types = families(metricsText);
    const read = new Set(exprs.flatMap(metricsIn));
    for (const name of read) assert.ok(types.has(name), `${name} (in an alert) is not exported by the agent`);
    // What issue #13 asks alerts for: RTO compliance, escalations, corruption, predicted exhaustion.
    for (const name of ['recovery_agent_rto_compliance_ratio', 'recovery_agent_escalations_total', 'recovery_agent_corruption_detected_total', 'recovery_agent_predicted_exhaustion_seconds']) {
      assert.ok(read.has(name), `an alert on ${name}`);
    }
  });

  it('the alerts fire on the series that should raise them (`promtool test rules`), and a changed rule fails', () => {
    needTool('promtool', 'prometheus');
    const cases = readFileSync(path.join(repoRoot(), 'test', 'deploy', 'alerts.promtest.yml'), 'utf8');
    const run = (rules: string) => {
      const file = path.join(dir, `cases-${Math.random().toString(36).slice(2)}.yml`);
      writeFileSync(file, `rule_files: [${JSON.stringify(rules)}]\n${cases}`);
      return spawnSync('promtool', ['test', 'rules', file], { encoding: 'utf8' });
    };
    const ok = run(ALERTS);
    assert.equal(ok.status, 0, `${ok.stdout}${ok.stderr}`);
    const loosened = path.join(dir, 'alerts-loosened.yml');
    writeFileSync(loosened, readFileSync(ALERTS, 'utf8').replace('recovery_agent_rto_compliance_ratio < 0.95', 'recovery_agent_rto_compliance_ratio < 0.85'));
    const bad = run(loosened);
    assert.notEqual(bad.status, 0, 'the RTO alert no longer fires at 90 %');
    assert.match(`${bad.stdout}${bad.stderr}`, /RecoveryAgentRtoCompliance/);
  });

  it('the Grafana dashboard parses and every metric its queries read is one the agent exports', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { uid: string; title: string; panels: { type: string; title: string; targets?: { expr: string }[] }[] };
    assert.equal(dash.uid, 'recovery-agent');
    const queryPanels = dash.panels.filter((p) => p.type !== 'row');
    assert.ok(queryPanels.length >= 10);
    const types = families(metricsText);
    const read = new Set<string>();
    for (const p of queryPanels) {
      assert.ok(p.targets && p.targets.length > 0, `panel ${p.title} has queries`);
      for (const t of p.targets) {
        const names = metricsIn(t.expr);
        assert.ok(names.length > 0, `panel ${p.title}: ${t.expr} reads a recovery_agent_ metric`);
        for (const n of names) read.add(n);
      }
    }
    for (const name of read) assert.ok(types.has(name), `${name} (on the dashboard) is not exported by the agent`);
    for (const name of ['recovery_agent_rto_compliance_ratio', 'recovery_agent_recovery_duration_seconds', 'recovery_agent_escalations_total', 'recovery_agent_corruption_detected_total', 'recovery_agent_predicted_exhaustion_seconds', 'recovery_agent_health_score']) {
      assert.ok(read.has(name), `the dashboard shows ${name}`);
    }
  });

  it('the systemd unit: restarts on failure, leaves the applications to the agent (KillMode=process), and nothing that breaks Node', () => {
    const unit = readFileSync(UNIT, 'utf8');
    assert.ok(['simple', 'notify'].includes(serviceValues(unit, 'Type')[0]!), 'Type= simple or notify');
    assert.deepEqual(serviceValues(unit, 'Restart'), ['on-failure']);
    assert.deepEqual(serviceValues(unit, 'KillMode'), ['process']);
    assert.deepEqual(serviceValues(unit, 'MemoryDenyWriteExecute'), [], 'V8 needs W+X memory');
    for (const key of ['NoNewPrivileges', 'ProtectSystem', 'ProtectKernelModules', 'RestrictSUIDSGID']) assert.equal(serviceValues(unit, key).length, 1, `${key}=`);
    // Its ExecStartPre= (config check), run as the unit would run it, accepts a good config.
    const pre = serviceValues(localUnit(config), 'ExecStartPre');
    assert.equal(pre.length, 1);
    const [cmd, ...args] = pre[0]!.split(/\s+/);
    const r = spawnSync(cmd!, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  it('the systemd unit passes `systemd-analyze verify`, which catches a bad key', () => {
    needTool('systemd-analyze', 'systemd');
    const verify = (text: string) => {
      const d = mkdtempSync(path.join(dir, 'unit-'));
      const file = path.join(d, 'recovery-agent.service');
      writeFileSync(file, text);
      // --man=no: Documentation= names no man page, and a container may have no man-db.
      return spawnSync('systemd-analyze', ['verify', '--man=no', file], { encoding: 'utf8' });
    };
    // Paths pointed at this checkout, so verify's check that ExecStart= is executable is meaningful.
    const good = verify(localUnit(config));
    assert.equal(good.status, 0, good.stderr);
    assert.equal(good.stderr.trim(), '', 'no warning: every key is known and every value parses');
    const typo = verify(localUnit(config).replace(/^KillMode=process$/m, 'KillMode=proces'));
    assert.match(typo.stderr, /kill mode/i, 'verify reads KillMode');
    const noNode = verify(localUnit(config).replaceAll(process.execPath, '/nonexistent/node'));
    assert.notEqual(noNode.status, 0);
    assert.match(noNode.stderr, /not executable/);
  });
});

// The narrow RPC between the agent and an isolated plugin: what the plugin can resolve (Config,
// FailureBus) and what it is refused; its log lines; calls that time out or are cancelled; and
// the self-healer moving on from a dead plugin's action to the next one.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { container, type DependencyContainer } from 'tsyringe';
import { Agent } from '../../core/agent.js';
import { parseConfigText } from '../../cli/config.js';
import { validateConfig } from '../../cli/config.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { HealingAction } from '../../core/contracts/HealingAction.js';
import { HealthProbe } from '../../core/contracts/HealthProbe.js';
import { isRaError } from '../../core/errors.js';
import { FailureBus } from '../../core/failureBus.js';
import { PluginHost } from '../../core/pluginHost.js';
import * as tokens from '../../core/tokens.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { captureLogger } from '../helpers/logCapture.js';
import { fixture, repoRoot } from '../helpers/paths.js';
import { until } from '../helpers/wait.js';

const NOTIFY_FILE = path.join(repoRoot(), 'examples', 'plugins', 'notify-file.js');
const plugin = (name: string) => fixture(path.join('plugins', `${name}.js`));

let child: DependencyContainer;
let dir: string;
beforeEach(() => {
  child = container.createChildContainer();
  dir = mkdtempSync(path.join(os.tmpdir(), 'ra-isolation-rpc-'));
});
afterEach(async () => {
  await child.dispose();
});

function host(configText = '') {
  const cap = captureLogger();
  const config = parseConfigText(configText, path.join(dir, 'agent.yaml'), {});
  const h = new PluginHost({ container: child, log: cap.log, config, startTimeoutMs: 15_000, stopTimeoutMs: 2_000 });
  return { h, lines: cap.lines, config };
}

const failure = (id: string): Failure => ({ id, kind: 'acme-alert', priority: 'P3', subject: 'acme:1', evidence: {}, detectedAt: Date.now(), source: 'test', fingerprint: id });

describe('plugin isolation: the RPC', () => {
  it('an isolated plugin resolves Config and FailureBus; its failures and log lines carry its own id', async () => {
    const bus = new FailureBus();
    child.register(tokens.FailureBus, { useValue: bus });
    const { h, lines } = host('agent: { workers: 3 }\n');
    await h.load(plugin('publisher'));
    const [st] = await h.startAll();
    assert.equal(st!.state, 'running', JSON.stringify(st));
    const [published] = bus.recent();
    assert.ok(published, 'the failure reached the agent bus');
    assert.equal(published.source, 'publisher', 'the source is the plugin, whatever it claims');
    assert.equal(published.kind, 'acme-alert');
    assert.deepEqual(published.evidence, { workers: 3 }, 'Config resolved in the plugin is the agent config');
    const line = lines().find((l) => l.msg === 'published acme-alert');
    assert.ok(line, 'the plugin log line was forwarded');
    assert.equal(line.plugin, 'publisher', 'a log field cannot claim another plugin id');
    assert.equal(line.level, 30, 'nor another level');
    assert.equal(line.step, 'publish', 'child bindings cross');
    assert.equal(line.failureId, published.id, 'publish returned, synchronously, the failure as the bus made it');
    const refused = lines().find((l) => l.plugin === 'publisher' && l.level === 40);
    assert.match(String((refused?.err as { message?: string } | undefined)?.message), /failure\.kind must be a non-empty string/, 'a bad publication throws in the plugin');
    await until(() => lines().some((l) => l.msg === 'hello from console.log'), 5_000, "the plugin's console.log to reach the log");
    const said = lines().find((l) => l.msg === 'hello from console.log')!;
    assert.equal(said.plugin, 'publisher', 'its stdout is logged as lines of that plugin');
    assert.equal(said.stream, 'stdout');
    await h.stopAll();
  });

  it('an isolated plugin cannot resolve other core tokens, and says so by id', async () => {
    const { h } = host();
    await h.load(plugin('publisher'), { resolve: 'recovery-agent.WorkerPool' });
    const [st] = await h.startAll();
    assert.equal(st!.state, 'failed');
    assert.equal(st!.error?.code, 'RA_ERR_PLUGIN_ISOLATION');
    assert.match(st!.error!.message, /plugin "publisher" runs isolated in a process of its own and cannot resolve Symbol\(recovery-agent\.WorkerPool\); it can resolve: recovery-agent\.Config$/);
    await h.stopAll();
  });

  it('a HealthProbe crosses as a proxy; an extension point that cannot cross is refused by name', async () => {
    const { h } = host();
    await h.load(plugin('probe'));
    await h.startAll();
    const probe = child.resolveAll(HealthProbe).find((p) => p.id === 'acme')!;
    assert.deepEqual(await probe.sample(), { metrics: { acme_samples_total: 1 }, score: 90 });
    assert.deepEqual(await probe.sample(), { metrics: { acme_samples_total: 2 }, score: 90 }, 'each sample is a call into the plugin');
    await h.stopAll();
    await assert.rejects(probe.sample(), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_UNAVAILABLE') && /"acme-probe" is not running/.test(err.message));

    await child.dispose();
    child = container.createChildContainer();
    const other = host();
    await other.h.load(plugin('probe'), { alsoStatusSection: true });
    const [st] = await other.h.startAll();
    assert.equal(st!.state, 'failed');
    assert.equal(st!.error?.code, 'RA_ERR_PLUGIN_ISOLATION');
    assert.match(st!.error!.message, /plugin "acme-probe" runs isolated in a process of its own and cannot provide Symbol\(recovery-agent\.StatusSection\); it can provide: HealingAction, HealthProbe/);
    assert.equal(child.isRegistered(HealthProbe), false, 'nothing of a failed plugin reaches the container');
    await other.h.stopAll();
  });

  it('a call that does not answer times out; a call its caller aborts is cancelled in the plugin too', async () => {
    const { h, lines } = host('agent: { pluginCallTimeout: 300ms }\n');
    await h.load(plugin('stuckAction'), { honourSignal: true });
    await h.startAll();
    const action = child.resolve(HealingAction);
    assert.equal(await action.canHandle(failure('f-0')), true);
    const t0 = Date.now();
    await assert.rejects(action.apply(failure('f-timeout'), {} as never), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_TIMEOUT') && /plugin "stuck-action" did not answer apply within 300 ms/.test(err.message));
    assert.ok(Date.now() - t0 < 2_000);
    const ctrl = new AbortController();
    const pending = action.apply(failure('f-abort'), { signal: ctrl.signal, log: undefined as never, options: {} });
    ctrl.abort(new Error('the healer gave up'));
    await assert.rejects(pending, /the healer gave up/);
    const cancelled = (id: string) => lines().some((l) => l.msg === 'apply cancelled' && l.plugin === 'stuck-action' && l.action === 'stuck-action' && l.failureId === id);
    await until(() => cancelled('f-timeout') && cancelled('f-abort'), 10_000, 'both calls to be cancelled in the plugin');
    await h.stopAll();
  });

  it("the self-healer treats a dead plugin's action as failed and applies the next one", async () => {
    const notes = path.join(dir, 'notes.log');
    const config = validateConfig(
      {
        agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { enabled: false } },
        healing: { rules: [{ on: 'acme-alert', do: [{ anyOf: ['timer-bomb', 'notify-file'] }] }] },
        plugins: [
          { module: plugin('timerBomb'), options: { delayMs: 500 } },
          { module: NOTIFY_FILE, options: { path: notes } },
        ],
      },
      path.join(dir, 'agent.yaml'),
      {},
    );
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    try {
      const bomb = () => agent.status().plugins.find((p) => p.id === 'timer-bomb')!;
      await until(() => bomb().state === 'failed', 15_000, 'timer-bomb to fail');
      const f = agent.bus.publish('test', { kind: 'acme-alert', priority: 'P3', subject: 'acme:1' });
      await agent.orchestrator.idle();
      const [r] = agent.orchestrator.recentRecoveries();
      assert.equal(r!.failureId, f.id);
      assert.equal(r!.outcome, 'recovered');
      assert.deepEqual(r!.attempts.map((a) => [a.action, a.verified]), [['timer-bomb', false], ['notify-file', true]]);
      assert.match(r!.attempts[0]!.error!, /plugin "timer-bomb" is not running/);
      assert.match(readFileSync(notes, 'utf8'), new RegExp(f.id));
    } finally {
      await agent.stop();
    }
  });
});

// Typed dependencies of an isolated plugin: declared in its process, ordered and checked by the
// agent, resolved in its process from what can cross.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { container, type DependencyContainer } from 'tsyringe';
import { parseConfigText } from '../../cli/config.js';
import { HealthProbe } from '../../core/contracts/HealthProbe.js';
import { FailureBus } from '../../core/failureBus.js';
import { PluginHost } from '../../core/pluginHost.js';
import * as tokens from '../../core/tokens.js';
import { captureLogger } from '../helpers/logCapture.js';
import { fixture } from '../helpers/paths.js';

const plugin = (name: string) => fixture(path.join('plugins', `${name}.js`));

let child: DependencyContainer;
let bus: FailureBus;
beforeEach(() => {
  child = container.createChildContainer();
  bus = new FailureBus();
  child.register(tokens.FailureBus, { useValue: bus });
  child.register(tokens.WorkerPool, { useValue: {} as never });
});
afterEach(async () => {
  await child.dispose();
});

function host() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-isolation-deps-'));
  const config = parseConfigText('agent: { workers: 3 }\n', path.join(dir, 'agent.yaml'), {});
  child.register(tokens.Config, { useValue: config }); // as the agent does
  return new PluginHost({ container: child, log: captureLogger().log, config, startTimeoutMs: 15_000, stopTimeoutMs: 2_000 });
}

describe('plugin isolation: typed dependencies', () => {
  it('an isolated plugin gets its deps resolved in its process: what crosses, and undefined for an optional one that cannot', async () => {
    const h = host();
    await h.load(plugin('typedDeps'));
    const [st] = await h.startAll();
    assert.equal(st!.state, 'running', JSON.stringify(st));
    const published = bus.recent().find((f) => f.kind === 'acme-deps');
    assert.deepEqual(published?.evidence, { workers: 3, pool: 'absent' });
    assert.deepEqual(child.resolveAll(HealthProbe).map((p) => p.id), ['typed'], 'what it declared and provided crossed');
    await h.stopAll();
  });

  it('an isolated plugin that provides a token it did not declare fails, naming it', async () => {
    const h = host();
    await h.load(plugin('typedDeps'), { sneak: true });
    const [st] = await h.startAll();
    assert.equal(st!.state, 'failed');
    assert.equal(st!.error?.code, 'RA_ERR_CONTRACT');
    assert.match(st!.error!.message, /"typed-deps" provides recovery-agent\.HealingAction, which it does not declare/);
    assert.equal(child.isRegistered(HealthProbe), false);
    await h.stopAll();
  });

  it('an isolated plugin that requires a token that cannot cross fails alone, naming the token', async () => {
    const h = host();
    await h.load(plugin('needsPool'));
    const [st] = await h.startAll();
    assert.equal(st!.state, 'failed');
    assert.equal(st!.error?.code, 'RA_ERR_PLUGIN_ISOLATION');
    assert.match(st!.error!.message, /"needs-pool" runs isolated in a process of its own and cannot resolve Symbol\(recovery-agent\.WorkerPool\)/);
    await h.stopAll();
  });
});

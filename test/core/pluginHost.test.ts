import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { container, type DependencyContainer } from 'tsyringe';
import { parseConfigText } from '../../cli/config.js';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import { isRaError } from '../../core/errors.js';
import { definePlugin, type PluginDefinition } from '../../core/plugin.js';
import { PluginHost } from '../../core/pluginHost.js';
import { captureLogger } from '../helpers/logCapture.js';
import { repoRoot } from '../helpers/paths.js';
import type { Failure } from '../../core/contracts/Failure.js';

let child: DependencyContainer;
beforeEach(() => {
  child = container.createChildContainer();
});
afterEach(async () => {
  await child.dispose();
});

function host(options: { startTimeoutMs?: number; configText?: string; configSource?: string } = {}) {
  const cap = captureLogger();
  const config = parseConfigText(options.configText ?? '', options.configSource ?? path.join(repoRoot(), 'examples', 'test.yaml'), {});
  const h = new PluginHost({ container: child, log: cap.log, config, startTimeoutMs: options.startTimeoutMs ?? 10_000, stopTimeoutMs: 500 });
  return { h, lines: cap.lines };
}

/** A plugin that records start and stop into `events`. */
function recorder(id: string, events: string[], dependsOn: string[] = [], extra: Partial<PluginDefinition> = {}): PluginDefinition {
  return definePlugin({
    id,
    dependsOn,
    contractVersion: '^1.0.0',
    register: () => ({
      start: () => void events.push(`start:${id}`),
      stop: () => void events.push(`stop:${id}`),
    }),
    ...extra,
  });
}

describe('plugin host', () => {
  it('starts in dependency order and stops in reverse', async () => {
    const events: string[] = [];
    const { h } = host();
    // Added in an order that differs from the dependency order on purpose.
    h.add(recorder('c', events, ['b']));
    h.add(recorder('a', events));
    h.add(recorder('b', events, ['a']));
    h.add(recorder('d', events, ['a', 'c']));
    const status = await h.startAll();
    assert.deepEqual(status.map((s) => s.state), ['running', 'running', 'running', 'running']);
    await h.stopAll();
    assert.deepEqual(events, ['start:a', 'start:b', 'start:c', 'start:d', 'stop:d', 'stop:c', 'stop:b', 'stop:a']);
    assert.ok(h.status().every((s) => s.state === 'stopped'));
  });

  it('names the plugins of a missing dependency and of a cycle', async () => {
    const events: string[] = [];
    const missing = host().h;
    missing.add(recorder('a', events, ['ghost']));
    await assert.rejects(missing.startAll(), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_MISSING_DEPENDENCY') && /"a" depends on "ghost"/.test(err.message));

    const cyclic = host().h;
    cyclic.add(recorder('x', events, ['z']));
    cyclic.add(recorder('y', events, ['x']));
    cyclic.add(recorder('z', events, ['y']));
    cyclic.add(recorder('free', events));
    await assert.rejects(cyclic.startAll(), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_CYCLE') && /x -> z -> y -> x/.test(err.message));
    assert.deepEqual(events, [], 'nothing starts when the graph is broken');
  });

  it('rejects an incompatible contract version and a duplicate id', () => {
    const { h } = host();
    const old = definePlugin({ id: 'old', contractVersion: '^0.9.0', register: () => undefined });
    assert.throws(() => h.add(old, './old.js'), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_CONTRACT') && /"old" \(\.\/old\.js\) targets contract version "\^0\.9\.0"/.test(err.message));
    const future = definePlugin({ id: 'future', contractVersion: '>=2', register: () => undefined });
    assert.throws(() => h.add(future), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_CONTRACT'));
    h.add(recorder('one', []));
    assert.throws(() => h.add(recorder('one', [])), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_DUPLICATE'));
    assert.throws(() => definePlugin({ id: 'Bad Id', contractVersion: '^1', register: () => undefined }), /id must be lowercase/);
  });

  it('isolates a plugin that throws: it and its dependents fail, the rest run', async () => {
    const events: string[] = [];
    const { h, lines } = host();
    h.add(recorder('base', events));
    h.add(definePlugin({ id: 'broken', contractVersion: '^1.0.0', register: () => { throw new Error('boom'); } }));
    h.add(recorder('needs-broken', events, ['broken']));
    h.add(recorder('fine', events, ['base']));
    const status = Object.fromEntries((await h.startAll()).map((s) => [s.id, s]));
    assert.equal(status.base!.state, 'running');
    assert.equal(status.fine!.state, 'running');
    assert.equal(status.broken!.state, 'failed');
    assert.equal(status.broken!.error?.code, 'RA_ERR_PLUGIN_START');
    assert.match(status.broken!.error!.message, /"broken" failed to start: boom/);
    assert.equal(status['needs-broken']!.state, 'failed');
    assert.match(status['needs-broken']!.error!.message, /dependency "broken"/);
    const logged = lines().find((l) => l.plugin === 'broken' && l.level === 50);
    assert.ok(logged, 'the failure is logged by the plugin id');
    await h.stopAll();
    assert.deepEqual(events, ['start:base', 'start:fine', 'stop:fine', 'stop:base']);
  });

  it('marks a plugin that hangs on start as failed after the timeout, and stops it if it finishes later', async () => {
    const events: string[] = [];
    const { h } = host({ startTimeoutMs: 150 });
    let signalAborted = false;
    h.add(
      definePlugin({
        id: 'slow',
        contractVersion: '^1.0.0',
        register: (ctx) => ({
          start: () => new Promise<void>((resolve) => {
            ctx.signal.addEventListener('abort', () => { signalAborted = true; });
            setTimeout(resolve, 400);
          }),
          stop: () => void events.push('stop:slow'),
        }),
      }),
    );
    h.add(recorder('quick', events));
    const t0 = Date.now();
    const status = Object.fromEntries((await h.startAll()).map((s) => [s.id, s]));
    assert.ok(Date.now() - t0 < 380, 'the host did not wait for the hanging plugin');
    assert.equal(status.slow!.state, 'failed');
    assert.equal(status.slow!.error?.code, 'RA_ERR_PLUGIN_TIMEOUT');
    assert.equal(status.quick!.state, 'running');
    assert.ok(signalAborted, 'the plugin was told through its abort signal');
    await new Promise((r) => setTimeout(r, 400));
    assert.deepEqual(events, ['start:quick', 'stop:slow'], 'a late starter is stopped at once');
    await h.stopAll();
  });

  it('gives each plugin a child logger bound to its id', async () => {
    const { h, lines } = host();
    h.add(definePlugin({ id: 'chatty', contractVersion: '^1.0.0', register: (ctx) => void ctx.log.info({ answer: 42 }, 'hello') }));
    await h.startAll();
    const line = lines().find((l) => l.msg === 'hello');
    assert.equal(line?.plugin, 'chatty');
    assert.equal(line?.answer, 42);
    await h.stopAll();
  });

  it('registers provided extension points only once the plugin runs, and checks them with the guard', async () => {
    const { h } = host();
    const action = { id: 'noop', canHandle: () => true, apply: async () => undefined, verify: async () => true };
    h.add(definePlugin({ id: 'good', contractVersion: '^1.0.0', provides: [HealingAction], register: (ctx) => ctx.provide(HealingAction, action, isHealingAction) }));
    h.add(definePlugin({ id: 'bad', contractVersion: '^1.0.0', provides: [HealingAction], register: (ctx) => ctx.provide(HealingAction, { id: 'x' } as never, isHealingAction) }));
    h.add(
      definePlugin({
        id: 'fails-late',
        contractVersion: '^1.0.0',
        provides: [HealingAction],
        register: (ctx) => {
          ctx.provide(HealingAction, { ...action, id: 'never-seen' }, isHealingAction);
          return { start: () => { throw new Error('no'); } };
        },
      }),
    );
    const status = Object.fromEntries((await h.startAll()).map((s) => [s.id, s]));
    assert.equal(status.bad!.state, 'failed');
    assert.equal(status.bad!.error?.code, 'RA_ERR_CONTRACT');
    assert.deepEqual(child.resolveAll(HealingAction).map((a) => a.id), ['noop']);
    await h.stopAll();
  });

  it('loads the example third-party plugin from a path, and its action works', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-notify-'));
    const out = path.join(dir, 'notes.log');
    const { h } = host({ configSource: path.join(repoRoot(), 'examples', 'demo.yaml') });
    await h.load('./plugins/notify-file.js', { path: out, kinds: ['process-crash'] });
    const [st] = await h.startAll();
    assert.equal(st!.state, 'running');
    const action = child.resolve(HealingAction);
    const failure: Failure = { id: 'f-1', kind: 'process-crash', priority: 'P1', subject: 'process:w', evidence: { exitCode: 137 }, detectedAt: Date.now(), source: 'test', fingerprint: 'x' };
    // Third-party plugins run isolated: canHandle is asked across threads and answers a promise.
    assert.equal(await action.canHandle(failure), true);
    assert.equal(await action.canHandle({ ...failure, kind: 'page-corruption' }), false);
    assert.equal(await action.verify(failure, {} as never), false);
    await action.apply(failure, {} as never);
    assert.equal(await action.verify(failure, {} as never), true);
    const line = JSON.parse(readFileSync(out, 'utf8').trim()) as Record<string, unknown>;
    assert.equal(line.failureId, 'f-1');
    assert.deepEqual(line.evidence, { exitCode: 137 });
    await h.stopAll();
  });

  it('reports a plugin module that cannot be loaded or is not a plugin', async () => {
    const { h } = host();
    await assert.rejects(h.load('./does-not-exist.js'), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && /does-not-exist\.js/.test(err.message));
    await assert.rejects(h.load('no-such-package-ra-test'), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD'));
    await assert.rejects(h.load(path.join(repoRoot(), 'eslint.config.js')), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && /definePlugin/.test(err.message));
  });

  it('a plugin whose options are bad fails alone with its own message', async () => {
    const { h } = host({ configSource: path.join(repoRoot(), 'examples', 'demo.yaml') });
    await h.load('./plugins/notify-file.js', {});
    const [st] = await h.startAll();
    assert.equal(st!.state, 'failed');
    assert.match(st!.error!.message, /options\.path must be/);
  });
});

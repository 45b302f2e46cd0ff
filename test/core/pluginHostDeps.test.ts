import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { container, type DependencyContainer } from 'tsyringe';
import { parseConfigText } from '../../cli/config.js';
import { Detector, isDetector } from '../../core/contracts/Detector.js';
import type { Failure, FailureSink } from '../../core/contracts/Failure.js';
import { isRaError } from '../../core/errors.js';
import { FailureBus as FailureBusImpl } from '../../core/failureBus.js';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { PluginHost } from '../../core/pluginHost.js';
import { createToken } from '../../core/token.js';
import { FailureBus } from '../../core/tokens.js';
import { captureLogger } from '../helpers/logCapture.js';
import { repoRoot } from '../helpers/paths.js';

interface Clock {
  now(): number;
}
const ClockToken = createToken<Clock>('deps-test.Clock');
const Greeting = createToken<string>('deps-test.Greeting');
const Part = createToken<string>('deps-test.Part');
const Ping = createToken<string>('deps-test.Ping');
const Pong = createToken<string>('deps-test.Pong');

let child: DependencyContainer;
beforeEach(() => {
  child = container.createChildContainer();
});
afterEach(async () => {
  await child.dispose();
});

function host() {
  const cap = captureLogger();
  const config = parseConfigText('', path.join(repoRoot(), 'examples', 'test.yaml'), {});
  return { h: new PluginHost({ container: child, log: cap.log, config, startTimeoutMs: 5_000, stopTimeoutMs: 500 }), lines: cap.lines };
}

describe('plugin host: typed dependencies and the derived start order', () => {
  it('starts a consumer added before its providers after them, and hands it the values resolved', async () => {
    const events: string[] = [];
    let got: { clock: Clock; greeting: string | undefined; parts: string[]; absent: string | undefined } | undefined;
    const { h } = host();
    h.add(
      definePlugin({
        id: 'consumer',
        contractVersion: '^1.0.0',
        deps: { clock: ClockToken, greeting: optional(Greeting), parts: many(Part), absent: optional(Ping) },
        register(_ctx, deps) {
          events.push('register:consumer');
          got = deps;
        },
      }),
    );
    h.add(definePlugin({ id: 'part-a', contractVersion: '^1.0.0', provides: [Part], register: (ctx) => void (events.push('register:part-a'), ctx.provide(Part, 'a')) }));
    h.add(definePlugin({ id: 'clock', contractVersion: '^1.0.0', provides: [ClockToken], register: (ctx) => void (events.push('register:clock'), ctx.provide(ClockToken, { now: () => 42 })) }));
    h.add(definePlugin({ id: 'part-b', contractVersion: '^1.0.0', provides: [Part], register: (ctx) => void (events.push('register:part-b'), ctx.provide(Part, 'b')) }));

    assert.deepEqual(h.order().map((d) => d.id), ['clock', 'part-a', 'part-b', 'consumer']);
    const status = await h.startAll();
    assert.ok(status.every((s) => s.state === 'running'), JSON.stringify(status));
    assert.equal(events.at(-1), 'register:consumer');
    assert.equal(got!.clock.now(), 42);
    assert.equal(got!.greeting, undefined, 'an optional token nobody provides is undefined');
    assert.equal(got!.absent, undefined);
    assert.deepEqual([...got!.parts].sort(), ['a', 'b'], 'many() gets every provider');
    assert.deepEqual([...status.find((s) => s.id === 'consumer')!.dependsOn].sort(), ['clock', 'part-a', 'part-b'], 'status names the plugins it starts after');
    await h.stopAll();
  });

  it('refuses a cycle of tokens, naming the plugins and the tokens', async () => {
    const started: string[] = [];
    const { h } = host();
    h.add(definePlugin({ id: 'ping', contractVersion: '^1.0.0', deps: { pong: Pong }, provides: [Ping], register: () => void started.push('ping') }));
    h.add(definePlugin({ id: 'pong', contractVersion: '^1.0.0', deps: { ping: Ping }, provides: [Pong], register: () => void started.push('pong') }));
    h.add(definePlugin({ id: 'bystander', contractVersion: '^1.0.0', register: () => void started.push('bystander') }));
    await assert.rejects(
      h.startAll(),
      (err: unknown) =>
        isRaError(err, 'RA_ERR_PLUGIN_CYCLE') &&
        /ping -> pong -> ping/.test(err.message) &&
        err.message.includes('"ping" needs deps-test.Pong, which "pong" provides') &&
        err.message.includes('"pong" needs deps-test.Ping, which "ping" provides'),
    );
    assert.deepEqual(started, [], 'nothing starts when the graph is broken');
  });

  it('refuses a required token that no plugin provides and the agent does not register, naming the plugin and the token', async () => {
    const started: string[] = [];
    const { h } = host();
    h.add(definePlugin({ id: 'lonely', contractVersion: '^1.0.0', deps: { greeting: Greeting }, register: () => void started.push('lonely') }));
    h.add(definePlugin({ id: 'other', contractVersion: '^1.0.0', register: () => void started.push('other') }));
    await assert.rejects(
      h.startAll(),
      (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_MISSING_DEPENDENCY') && /plugin "lonely" needs deps-test\.Greeting \(deps\.greeting\), which no registered plugin provides/.test(err.message),
    );
    assert.deepEqual(started, []);
  });

  it('a token the agent registers itself needs no provider; a third-party plugin missing one fails alone', async () => {
    const { h } = host();
    child.register(Greeting, { useValue: 'hello' });
    let greeting: string | undefined;
    h.add(definePlugin({ id: 'greeted', contractVersion: '^1.0.0', deps: { greeting: Greeting }, register: (_ctx, d) => void (greeting = d.greeting) }));
    h.add(definePlugin({ id: 'acme-needy', contractVersion: '^1.0.0', deps: { clock: ClockToken }, register: () => undefined }), './acme-needy.js');
    const status = Object.fromEntries((await h.startAll()).map((s) => [s.id, s]));
    assert.equal(greeting, 'hello');
    assert.equal(status.greeted!.state, 'running');
    assert.equal(status['acme-needy']!.state, 'failed');
    assert.equal(status['acme-needy']!.error?.code, 'RA_ERR_PLUGIN_MISSING_DEPENDENCY');
    assert.match(status['acme-needy']!.error!.message, /"acme-needy" needs deps-test\.Clock/);
    await h.stopAll();
  });

  it('fails a consumer whose required provider failed, naming it; an optional consumer runs without it', async () => {
    const { h } = host();
    h.add(definePlugin({ id: 'broken-clock', contractVersion: '^1.0.0', provides: [ClockToken], register: () => { throw new Error('no time'); } }));
    h.add(definePlugin({ id: 'needs-clock', contractVersion: '^1.0.0', deps: { clock: ClockToken }, register: () => undefined }));
    let clock: Clock | undefined | null = null;
    h.add(definePlugin({ id: 'likes-clock', contractVersion: '^1.0.0', deps: { clock: optional(ClockToken) }, register: (_ctx, d) => void (clock = d.clock) }));
    const status = Object.fromEntries((await h.startAll()).map((s) => [s.id, s]));
    assert.equal(status['broken-clock']!.state, 'failed');
    assert.equal(status['needs-clock']!.state, 'failed');
    assert.match(status['needs-clock']!.error!.message, /not started: it needs deps-test\.Clock \(deps\.clock\), and no plugin that provides it is running \("broken-clock" failed\)/);
    assert.equal(status['likes-clock']!.state, 'running');
    assert.equal(clock, undefined);
    await h.stopAll();
  });

  it('refuses a value under a token the plugin did not declare in provides', async () => {
    const { h } = host();
    h.add(definePlugin({ id: 'sneaky', contractVersion: '^1.0.0', provides: [Part], register: (ctx) => ctx.provide(Greeting, 'hi') }));
    const [st] = await h.startAll();
    assert.equal(st!.state, 'failed');
    assert.equal(st!.error?.code, 'RA_ERR_CONTRACT');
    assert.match(st!.error!.message, /"sneaky" provides deps-test\.Greeting, which it does not declare/);
    assert.equal(child.isRegistered(Part), false);
  });

  it('still orders by dependsOn, beside the tokens', async () => {
    const events: string[] = [];
    const { h } = host();
    h.add(definePlugin({ id: 'late', contractVersion: '^1.0.0', dependsOn: ['early'], register: () => void events.push('late') }));
    h.add(definePlugin({ id: 'early', contractVersion: '^1.0.0', deps: { clock: ClockToken }, register: () => void events.push('early') }));
    h.add(definePlugin({ id: 'clock', contractVersion: '^1.0.0', provides: [ClockToken], register: (ctx) => void (events.push('clock'), ctx.provide(ClockToken, { now: () => 1 })) }));
    await h.startAll();
    assert.deepEqual(events, ['clock', 'early', 'late']);
    await h.stopAll();
  });
});

describe('plugin host: detectors', () => {
  /** A detector that records its life in `events` and publishes one failure when started. */
  const detector = (id: string, events: string[], failStart = false): Detector => ({
    id,
    kinds: ['test-kind'],
    start(sink: FailureSink) {
      if (failStart) throw new Error(`${id} cannot start`);
      events.push(`start:${id}`);
      sink.publish({ kind: 'test-kind', priority: 'P3', subject: `detector:${id}` });
    },
    stop() {
      events.push(`stop:${id}`);
    },
  });

  it('starts every Detector a plugin provides with a sink under its id after its start hook, and stops them, last first, before its stop hook', async () => {
    const events: string[] = [];
    const bus = new FailureBusImpl(captureLogger().log);
    const published: Failure[] = [];
    bus.subscribe((f) => void published.push(f));
    child.register(FailureBus, { useValue: bus });
    const { h } = host();
    h.add(
      definePlugin({
        id: 'watcher',
        contractVersion: '^1.0.0',
        provides: [Detector],
        register(ctx) {
          ctx.provide(Detector, detector('one', events), isDetector);
          ctx.provide(Detector, detector('two', events), isDetector);
          return { start: () => void events.push('hook:start'), stop: () => void events.push('hook:stop') };
        },
      }),
    );
    const [st] = await h.startAll();
    assert.equal(st!.state, 'running');
    assert.deepEqual(events, ['hook:start', 'start:one', 'start:two']);
    assert.deepEqual(published.map((f) => [f.source, f.subject]), [['watcher', 'detector:one'], ['watcher', 'detector:two']]);
    await h.stopAll();
    assert.deepEqual(events.slice(3), ['stop:two', 'stop:one', 'hook:stop']);
  });

  it('a detector that cannot start fails its plugin, and what did start is stopped', async () => {
    const events: string[] = [];
    child.register(FailureBus, { useValue: new FailureBusImpl(captureLogger().log) });
    const { h } = host();
    h.add(
      definePlugin({
        id: 'half',
        contractVersion: '^1.0.0',
        provides: [Detector],
        register(ctx) {
          ctx.provide(Detector, detector('fine', events), isDetector);
          ctx.provide(Detector, detector('broken', events, true), isDetector);
          return { stop: () => void events.push('hook:stop') };
        },
      }),
    );
    const [st] = await h.startAll();
    assert.equal(st!.state, 'failed');
    assert.match(st!.error!.message, /broken cannot start/);
    assert.deepEqual(events, ['start:fine', 'stop:fine', 'hook:stop']);
    assert.equal(child.isRegistered(Detector), false, 'nothing of it reaches the container');
    await h.stopAll();
  });
});

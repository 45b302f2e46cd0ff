/**
 * The host shim inside an isolated plugin's worker thread: imports the plugin's module, calls
 * `register(ctx)` and its hooks, and answers the main thread's requests (messages.ts) by
 * calling the values the plugin provided.
 *
 * Nothing here tries to survive the plugin: an uncaught exception, an unhandled rejection or
 * `process.exit()` ends this worker, and the main thread marks the plugin failed. The one thing
 * the shim watches itself is memory outside V8's heap (Buffers, ArrayBuffers), which Node's
 * `resourceLimits` do not cover.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { raError } from '../errors.js';
import { isPluginDefinition, type PluginContext, type PluginDefinition, type PluginHooks } from '../plugin.js';
import { crossingContracts } from './crossingContracts.js';
import { toWireError, type FromWorker, type InvokeRequest, type LoadedPlugin, type PluginWorkerData, type ProvidedValue, type ToWorker } from './messages.js';
import { failureBusProxy, forwardingLogger, IsolatedContainer } from './workerContext.js';

/** How often the memory watchdog looks at Buffers and ArrayBuffers. */
const kMemoryCheckMs = 50;

const data = workerData as PluginWorkerData;
const port = parentPort!;
const post = (m: FromWorker): void => port.postMessage(m);
const log = forwardingLogger(post, data.logLevel);

let definition: PluginDefinition | undefined;
let hooks: PluginHooks = {};
const lifetime = new AbortController();
/** Values the plugin provided, by `ProvidedValue.target`. */
const provided: Array<Record<string, unknown>> = [];
/** The signals of pending `invoke`s, so that a `cancel` can abort one. */
const invocations = new Map<number, AbortController>();

const watchdog = setInterval(() => {
  const externalMb = process.memoryUsage().external / 2 ** 20;
  if (externalMb > data.maxExternalMemoryMb) {
    post({ kind: 'memory-exceeded', externalMb: Math.round(externalMb), limitMb: data.maxExternalMemoryMb });
    process.exit(1);
  }
}, kMemoryCheckMs);
watchdog.unref(); // the watchdog must not be what keeps a finished worker alive

port.on('message', (m: ToWorker) => {
  if (m.kind === 'cancel') {
    invocations.get(m.callId)?.abort(new Error('cancelled by the agent'));
    return;
  }
  handle(m).then(
    (value) => answer(m.callId, { ok: true, value }),
    (err: unknown) => answer(m.callId, { ok: false, error: toWireError(err) }),
  );
});

function answer(callId: number, r: { ok: true; value: unknown } | { ok: false; error: ReturnType<typeof toWireError> }): void {
  try {
    post({ kind: 'response', callId, ...r });
  } catch (err) {
    // A value that cannot be cloned (a function, a socket…) cannot cross; say so instead.
    const error = raError('RA_ERR_PLUGIN_ISOLATION', `plugin ${name()} answered with something that cannot cross to the agent (only plain data can): ${(err as Error).message}`);
    post({ kind: 'response', callId, ok: false, error: toWireError(error) });
  }
}

function name(): string {
  return definition ? `"${definition.id}"` : `module ${data.specifier}`;
}

async function handle(m: Exclude<ToWorker, { kind: 'cancel' }>): Promise<unknown> {
  switch (m.kind) {
    case 'load':
      return load();
    case 'start':
      return start();
    case 'invoke':
      return invoke(m);
    case 'stop':
      lifetime.abort(new Error('the agent is stopping the plugin'));
      await hooks.stop?.();
      return undefined;
  }
}

async function load(): Promise<LoadedPlugin> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(data.url)) as Record<string, unknown>;
  } catch (err) {
    throw raError('RA_ERR_PLUGIN_LOAD', `cannot load plugin module ${data.specifier}: ${(err as Error)?.message ?? String(err)}`);
  }
  const def = [mod.default, mod.plugin, (mod.default as Record<string, unknown> | undefined)?.default].find(isPluginDefinition);
  if (!def) throw raError('RA_ERR_PLUGIN_LOAD', `plugin module ${data.specifier} has no default export made with definePlugin()`);
  definition = def;
  return { id: def.id, dependsOn: [...def.dependsOn], contractVersion: def.contractVersion };
}

async function start(): Promise<ProvidedValue[]> {
  const def = definition!;
  const described: ProvidedValue[] = [];
  const resolvable = new Map<symbol, unknown>();
  for (const key of data.resolvable) {
    if (key === 'recovery-agent.Config') resolvable.set(Symbol.for(key), data.config);
    if (key === 'recovery-agent.FailureBus') resolvable.set(Symbol.for(key), failureBusProxy(def.id, data, post));
  }
  const ctx: PluginContext = {
    id: def.id,
    container: new IsolatedContainer(def.id, resolvable) as unknown as PluginContext['container'],
    log,
    options: data.options,
    config: data.config,
    signal: lifetime.signal,
    provide: (token, value, guard) => {
      const key = typeof token === 'symbol' ? Symbol.keyFor(token) : undefined;
      const contract = key === undefined ? undefined : crossingContracts[key];
      if (!key || !contract) {
        const can = Object.values(crossingContracts).map((c) => c.name).join(', ');
        throw raError('RA_ERR_PLUGIN_ISOLATION', `plugin "${def.id}" runs isolated in a worker thread and cannot provide ${String(token)}; it can provide: ${can}`);
      }
      if ((guard && !guard(value)) || !contract.guard(value)) {
        throw raError('RA_ERR_CONTRACT', `plugin "${def.id}" provides a value for ${String(token)} that does not implement the contract`);
      }
      const v = value as Record<string, unknown>;
      described.push({ token: key, target: provided.length, id: String(v.id), methods: contract.methods.filter((method) => typeof v[method] === 'function') });
      provided.push(v);
    },
  };
  hooks = (await def.register(ctx)) ?? {};
  await hooks.start?.();
  return described;
}

async function invoke(m: InvokeRequest): Promise<unknown> {
  const value = provided[m.target];
  const fn = value?.[m.method];
  if (typeof fn !== 'function') throw raError('RA_ERR_PLUGIN_ISOLATION', `plugin ${name()} has no method ${m.method} on provided value #${m.target}`);
  if (!m.healing) return await fn.apply(value, m.args);
  const signal = new AbortController();
  invocations.set(m.callId, signal);
  try {
    const ctx = { signal: signal.signal, log: log.child(m.healing.logBindings), options: m.healing.options };
    return await fn.apply(value, [...m.args, ctx]);
  } finally {
    invocations.delete(m.callId);
  }
}

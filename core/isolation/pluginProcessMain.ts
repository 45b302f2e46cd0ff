/**
 * The host shim inside an isolated plugin's child process (the agent forks this file): imports
 * the plugin's module, calls `register(ctx)` and its hooks, and answers the agent's requests
 * (messages.ts) by calling the values the plugin provided.
 *
 * Nothing here tries to survive the plugin: an uncaught exception or an unhandled rejection is
 * reported to the agent and ends this process, as do `process.exit()`, a signal, a native crash
 * or running out of V8's heap (which aborts the process); the agent marks the plugin failed.
 * What the shim watches itself: memory outside V8's heap (Buffers, ArrayBuffers), which
 * `--max-old-space-size` does not cover, and the agent: when its IPC channel closes, or when
 * this process gets a new parent (the agent was killed while the plugin spins, so no event
 * would ever run), this process ends.
 */
import { Worker } from 'node:worker_threads';
import { raError } from '../errors.js';
import { depRequests, isPluginDefinition, type PluginContext, type PluginDefinition, type PluginHooks } from '../plugin.js';
import { tokenId, tokenOf } from '../token.js';
import { Config, FailureBus } from '../tokens.js';
import { crossingContracts } from './crossingContracts.js';
import { failureBusProxy, forwardingLogger, IsolatedContainer } from './isolatedContext.js';
import { kPublishAnswerFd, toWireError, type FromPlugin, type InvokeRequest, type LoadedPlugin, type PluginProcessData, type ProvidedValue, type ToPlugin } from './messages.js';
import { PublishAnswerReader } from './publishChannel.js';

/** How often the memory watchdog looks at Buffers and ArrayBuffers. */
const kMemoryCheckMs = 50;
/** How often the orphan watchdog (on a thread of its own) checks that the agent is still this process's parent. */
const kParentCheckMs = 250;
/** How long a last message to the agent (why this process dies) may take before it exits anyway. */
const kLastWordsMs = 1_000;

const agentPid = Number(process.argv[2]);
const send = process.send!.bind(process);
/** Throws at once when `m` cannot be cloned; a channel that is already closed is not an error here ('disconnect' ends this process). */
const post = (m: FromPlugin): void => void send(m, undefined, {}, () => undefined);
/** Set by the `load` request, the first the agent sends. */
let data!: PluginProcessData;
let log: ReturnType<typeof forwardingLogger>;
const answers = new PublishAnswerReader(kPublishAnswerFd);

let definition: PluginDefinition | undefined;
let hooks: PluginHooks = {};
const lifetime = new AbortController();
/** Values the plugin provided, by `ProvidedValue.target`. */
const provided: Array<Record<string, unknown>> = [];
/** The signals of pending `invoke`s, so that a `cancel` can abort one. */
const invocations = new Map<number, AbortController>();

/** Tells the agent why this process dies, then ends it (exit code 1, as Node's own for an uncaught error). */
function dieWith(m: FromPlugin): void {
  const exit = () => process.exit(1);
  setTimeout(exit, kLastWordsMs).unref();
  try {
    send(m, undefined, {}, exit);
  } catch {
    exit();
  }
}

process.on('uncaughtException', (err) => dieWith({ kind: 'uncaught', error: toWireError(err) }));
process.on('disconnect', () => process.exit(0)); // the agent is gone, or done with this plugin
// Ctrl-C in a terminal and a service manager's SIGTERM reach the whole process group; the agent
// stops its plugins itself, in order (their stop hooks first), and a plugin whose agent died goes
// through 'disconnect' and the parent watchdog. So these signals are the agent's to handle.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);

// A thread of its own, so it runs even while the plugin spins: a process whose parent is no
// longer the agent (killed with SIGKILL, say) kills itself. Allowed only a small heap.
const orphanWatchdog = new Worker(
  `const { workerData: w } = require('node:worker_threads');
   setInterval(() => { if (process.ppid !== w.agentPid) process.kill(w.pid, 'SIGKILL'); }, w.everyMs);`,
  { eval: true, workerData: { agentPid, pid: process.pid, everyMs: kParentCheckMs }, resourceLimits: { maxOldGenerationSizeMb: 16 }, stdout: false, stderr: false },
);
orphanWatchdog.unref();

const memoryWatchdog = setInterval(() => {
  const externalMb = process.memoryUsage().external / 2 ** 20;
  if (externalMb > data.maxExternalMemoryMb) {
    clearInterval(memoryWatchdog);
    dieWith({ kind: 'memory-exceeded', externalMb: Math.round(externalMb), limitMb: data.maxExternalMemoryMb });
  }
}, kMemoryCheckMs);
memoryWatchdog.unref(); // the watchdog must not be what keeps a finished plugin alive

process.on('message', (m: ToPlugin) => {
  if (m.kind === 'load') {
    data = m.data;
    log = forwardingLogger(post, data.logLevel);
  }
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

async function handle(m: Exclude<ToPlugin, { kind: 'cancel' }>): Promise<unknown> {
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
  return {
    id: def.id,
    dependsOn: [...def.dependsOn],
    deps: depRequests(def).map((d) => ({ name: d.name, token: tokenId(d.token), kind: d.kind })),
    ...(def.provides ? { provides: def.provides.map((t) => tokenId(t)) } : {}),
    contractVersion: def.contractVersion,
  };
}

async function start(): Promise<ProvidedValue[]> {
  const def = definition!;
  const described: ProvidedValue[] = [];
  const resolvable = new Map<symbol, unknown>();
  for (const key of data.resolvable) {
    if (key === tokenId(Config)) resolvable.set(tokenOf(key), data.config);
    if (key === tokenId(FailureBus)) resolvable.set(tokenOf(key), failureBusProxy(def.id, data.publishTimeoutMs, answers, post));
  }
  const ctx: PluginContext = {
    id: def.id,
    container: new IsolatedContainer(def.id, resolvable) as unknown as PluginContext['container'],
    log,
    options: data.options,
    config: data.config,
    signal: lifetime.signal,
    provide: (token, value, guard) => {
      if (def.provides && !def.provides.includes(token)) {
        throw raError('RA_ERR_CONTRACT', `plugin "${def.id}" provides ${tokenId(token)}, which it does not declare: add it to definePlugin({ provides: [...] })`);
      }
      const key = typeof token === 'symbol' ? Symbol.keyFor(token) : undefined;
      const contract = key === undefined ? undefined : crossingContracts[key];
      if (!key || !contract) {
        const can = Object.values(crossingContracts).map((c) => c.name).join(', ');
        throw raError('RA_ERR_PLUGIN_ISOLATION', `plugin "${def.id}" runs isolated in a process of its own and cannot provide ${String(token)}; it can provide: ${can}`);
      }
      if ((guard && !guard(value)) || !contract.guard(value)) {
        throw raError('RA_ERR_CONTRACT', `plugin "${def.id}" provides a value for ${String(token)} that does not implement the contract`);
      }
      const v = value as Record<string, unknown>;
      described.push({ token: key, target: provided.length, id: String(v.id), methods: contract.methods.filter((method) => typeof v[method] === 'function') });
      provided.push(v);
    },
  };
  const container = ctx.container as unknown as IsolatedContainer;
  const deps: Record<string, unknown> = {};
  for (const d of depRequests(def)) {
    // Only what can cross is there (Config, FailureBus); resolve() says so for anything else.
    if (d.kind === 'many') deps[d.name] = container.isRegistered(d.token) ? container.resolveAll(d.token) : [];
    else deps[d.name] = d.kind === 'optional' && !container.isRegistered(d.token) ? undefined : container.resolve(d.token);
  }
  hooks = (await def.register(ctx, deps as never)) ?? {};
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

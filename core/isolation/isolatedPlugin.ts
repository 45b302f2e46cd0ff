/**
 * A third-party plugin run isolated, as the plugin host sees it: a `PluginDefinition` like any
 * other, whose `register` starts the plugin in its child process and puts proxies of what it
 * provided into the agent's container, and whose `stop` hook stops it and then kills the process.
 *
 * What isolation gives (VS Code's extension host): the plugin's module, `register`, hooks,
 * timers and promises run in a process of their own. A throw, an unhandled rejection,
 * `process.exit()`, a signal, a native crash, a heap or Buffer leak past its limits (even one
 * giant allocation, which aborts a V8 heap) ends only its process; a busy loop blocks only its
 * process, so the host's start timeout fires and the process is killed; a leftover timer cannot
 * keep the agent alive, because the process is killed after `stop` and never holds the agent.
 */
import { definePlugin, many, optional, type PluginContext, type PluginDefinition, type PluginHooks } from '../plugin.js';
import { describeError, isRaError, raError, type RecoveryAgentError } from '../errors.js';
import { tokenOf } from '../token.js';
import { crossingContracts } from './crossingContracts.js';
import type { LoadedPlugin, ProvidedValue } from './messages.js';
import { PluginProcess, type PluginProcessOptions } from './pluginProcess.js';

export interface IsolatedPluginOptions extends PluginProcessOptions {
  /** How long importing the module may take (the host's start timeout). */
  loadTimeoutMs: number;
  /** `agent.pluginCallTimeout`: the bound on each call into a provided value. */
  callTimeoutMs: number;
  /** `agent.pluginStopTimeout`: how long the `stop` hook may take before the process is killed. */
  stopTimeoutMs: number;
}

export class IsolatedPlugin {
  readonly definition: PluginDefinition;

  private constructor(
    private readonly child: PluginProcess,
    loaded: LoadedPlugin,
    private readonly o: IsolatedPluginOptions,
  ) {
    const { deps, provides, ...rest } = loaded;
    this.definition = definePlugin({
      ...rest,
      // Tokens by their id: the same tokens the plugin's process made.
      deps: Object.fromEntries(deps.map((d) => [d.name, d.kind === 'required' ? tokenOf(d.token) : d.kind === 'optional' ? optional(tokenOf(d.token)) : many(tokenOf(d.token))])),
      // A plugin that declares nothing can still provide what crosses, as before `provides` existed.
      provides: (provides ?? Object.keys(crossingContracts)).map((k) => tokenOf(k)),
      register: (ctx) => this.register(ctx),
    });
  }

  /**
   * Forks a process that imports the module and reports the plugin it defines. Rejects with
   * RA_ERR_PLUGIN_LOAD naming the module when the import throws, the module is missing or is not
   * a plugin, or the process dies or spins while importing; the process is then killed.
   */
  static async load(o: IsolatedPluginOptions): Promise<IsolatedPlugin> {
    const child = new PluginProcess(o);
    try {
      const loaded = (await child.load(o.loadTimeoutMs)) as LoadedPlugin;
      child.identify(loaded.id);
      return new IsolatedPlugin(child, loaded, o);
    } catch (err) {
      await child.terminate();
      if (isRaError(err, 'RA_ERR_PLUGIN_LOAD')) throw err;
      throw raError('RA_ERR_PLUGIN_LOAD', `cannot load plugin module ${o.specifier}: ${describeError(err)}`, { cause: err });
    }
  }

  /** Called once if the plugin's process dies while the agent did not ask it to (crash, exit, memory). */
  onFailure(listener: (err: RecoveryAgentError) => void): void {
    this.child.onDeath(listener);
  }

  /** Kills the plugin's process now, whatever it is doing. */
  terminate(): Promise<void> {
    return this.child.terminate();
  }

  private async register(ctx: PluginContext): Promise<PluginHooks> {
    // The host aborts the signal when the start times out: the process may be spinning, and
    // only killing it gets the CPU back. After the start, the signal is the host's to use.
    const onAbort = () => void this.child.terminate();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let provided: ProvidedValue[];
    try {
      provided = (await this.child.request({ kind: 'start' }, undefined, 'start')) as ProvidedValue[];
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
    for (const value of provided) {
      const contract = crossingContracts[value.token];
      if (!contract) throw raError('RA_ERR_PLUGIN_ISOLATION', `plugin "${ctx.id}" provided ${value.token}, which cannot cross to the agent`);
      ctx.provide(contract.token, contract.proxy(value, this.child, this.o.callTimeoutMs), contract.guard as (v: unknown) => v is unknown);
    }
    return { stop: () => this.stop() };
  }

  private async stop(): Promise<void> {
    try {
      await this.child.request({ kind: 'stop' }, this.o.stopTimeoutMs, 'stop');
    } finally {
      // Whatever the plugin left running (an interval, a socket) ends with its process.
      await this.child.terminate();
    }
  }
}

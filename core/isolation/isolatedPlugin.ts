/**
 * A third-party plugin run isolated, as the plugin host sees it: a `PluginDefinition` like any
 * other, whose `register` starts the plugin in its worker and puts proxies of what it provided
 * into the agent's container, and whose `stop` hook stops it and then ends the worker.
 *
 * What isolation gives (VS Code's extension host, on threads): the plugin's module, `register`,
 * hooks, timers and promises run on their own event loop and heap. A throw, an unhandled
 * rejection, `process.exit()`, a heap or Buffer leak past its limits ends only its worker; a
 * busy loop blocks only its worker, so the host's start timeout fires and the worker is
 * terminated; a leftover timer cannot keep the agent alive, because the worker is terminated
 * after `stop` and never holds the process.
 */
import { definePlugin, type PluginContext, type PluginDefinition, type PluginHooks } from '../plugin.js';
import { describeError, isRaError, raError, type RecoveryAgentError } from '../errors.js';
import { crossingContracts } from './crossingContracts.js';
import type { LoadedPlugin, ProvidedValue } from './messages.js';
import { PluginWorker, type PluginWorkerOptions } from './pluginWorker.js';

export interface IsolatedPluginOptions extends PluginWorkerOptions {
  /** How long importing the module may take (the host's start timeout). */
  loadTimeoutMs: number;
  /** `agent.pluginCallTimeout`: the bound on each call into a provided value. */
  callTimeoutMs: number;
  /** `agent.pluginStopTimeout`: how long the `stop` hook may take before the worker is terminated. */
  stopTimeoutMs: number;
}

export class IsolatedPlugin {
  readonly definition: PluginDefinition;

  private constructor(
    private readonly worker: PluginWorker,
    loaded: LoadedPlugin,
    private readonly o: IsolatedPluginOptions,
  ) {
    this.definition = definePlugin({ ...loaded, register: (ctx) => this.register(ctx) });
  }

  /**
   * Starts a worker that imports the module and reports the plugin it defines. Rejects with
   * RA_ERR_PLUGIN_LOAD naming the module when the import throws, the module is missing or is not
   * a plugin, or the worker dies or spins while importing; the worker is then ended.
   */
  static async load(o: IsolatedPluginOptions): Promise<IsolatedPlugin> {
    const worker = new PluginWorker(o);
    try {
      const loaded = (await worker.request({ kind: 'load' }, o.loadTimeoutMs, 'load')) as LoadedPlugin;
      worker.identify(loaded.id);
      return new IsolatedPlugin(worker, loaded, o);
    } catch (err) {
      await worker.terminate();
      if (isRaError(err, 'RA_ERR_PLUGIN_LOAD')) throw err;
      throw raError('RA_ERR_PLUGIN_LOAD', `cannot load plugin module ${o.specifier}: ${describeError(err)}`, { cause: err });
    }
  }

  /** Called once if the plugin's worker dies while the agent did not ask it to (crash, exit, memory). */
  onFailure(listener: (err: RecoveryAgentError) => void): void {
    this.worker.onDeath(listener);
  }

  /** Ends the worker now, whatever it is doing. */
  terminate(): Promise<void> {
    return this.worker.terminate();
  }

  private async register(ctx: PluginContext): Promise<PluginHooks> {
    // The host aborts the signal when the start times out: the worker may be spinning, and
    // only terminating it gets the CPU back. After the start, the signal is the host's to use.
    const onAbort = () => void this.worker.terminate();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    let provided: ProvidedValue[];
    try {
      provided = (await this.worker.request({ kind: 'start' }, undefined, 'start')) as ProvidedValue[];
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
    for (const value of provided) {
      const contract = crossingContracts[value.token];
      if (!contract) throw raError('RA_ERR_PLUGIN_ISOLATION', `plugin "${ctx.id}" provided ${value.token}, which cannot cross to the agent`);
      ctx.provide(contract.token, contract.proxy(value, this.worker, this.o.callTimeoutMs), contract.guard as (v: unknown) => v is unknown);
    }
    return { stop: () => this.stop() };
  }

  private async stop(): Promise<void> {
    try {
      await this.worker.request({ kind: 'stop' }, this.o.stopTimeoutMs, 'stop');
    } finally {
      // Whatever the plugin left running (an interval, a socket) ends with its worker.
      await this.worker.terminate();
    }
  }
}

/**
 * The extension points an isolated plugin can provide, and the proxies that stand for its
 * values in the agent's container. Every proxy method is an RPC into the plugin's process
 * with a timeout (`agent.pluginCallTimeout`); it rejects when the call times out or the process
 * is gone, so a caller (the self-healer, the health monitor) sees a failed call, never a hang.
 */
import type { InjectionToken } from 'tsyringe';
import { HealingAction, isHealingAction, type HealingContext, type HealingOutcome } from '../contracts/HealingAction.js';
import { HealthProbe, isHealthProbe, type HealthSample } from '../contracts/HealthProbe.js';
import type { Failure } from '../contracts/Failure.js';
import type { ProvidedValue } from './messages.js';
import type { PluginProcess } from './pluginProcess.js';

/** One extension point that can cross to the agent. */
export interface CrossingContract {
  /** For messages: `HealingAction`. */
  readonly name: string;
  readonly token: InjectionToken<unknown>;
  readonly guard: (v: unknown) => boolean;
  /** The methods the proxy forwards (optional ones only when the value has them). */
  readonly methods: readonly string[];
  /** Builds the agent's proxy for a value the plugin's process described. */
  proxy(value: ProvidedValue, plugin: PluginProcess, callTimeoutMs: number): unknown;
}

/** By the token's `Symbol.for` key. */
export const crossingContracts: Readonly<Record<string, CrossingContract>> = {
  'recovery-agent.HealingAction': { name: 'HealingAction', token: HealingAction, guard: isHealingAction, methods: ['canHandle', 'apply', 'verify', 'undo'], proxy: healingActionProxy },
  'recovery-agent.HealthProbe': { name: 'HealthProbe', token: HealthProbe, guard: isHealthProbe, methods: ['sample'], proxy: healthProbeProxy },
};

function healingActionProxy(value: ProvidedValue, plugin: PluginProcess, callTimeoutMs: number): HealingAction {
  // A HealingContext's signal and logger cannot cross: the options do, the child makes a
  // logger bound to the failure, and aborting the signal cancels the call in the child.
  const call = (method: string, failure: Failure, ctx?: Partial<HealingContext>) =>
    plugin.invoke(
      {
        target: value.target,
        method,
        args: [failure],
        ...(ctx ? { healing: { options: ctx.options ?? {}, logBindings: { action: value.id, failureId: failure.id } } } : {}),
      },
      callTimeoutMs,
      ctx?.signal,
    );
  const action: HealingAction = {
    id: value.id,
    canHandle: async (failure) => (await call('canHandle', failure)) === true,
    apply: async (failure, ctx) => (await call('apply', failure, ctx ?? {})) as HealingOutcome | void,
    verify: async (failure, ctx) => {
      const v = await call('verify', failure, ctx ?? {});
      return v === 'unobservable' ? v : v === true;
    },
  };
  if (!value.methods.includes('undo')) return action;
  return {
    ...action,
    undo: async (failure, ctx) => {
      await call('undo', failure, ctx ?? {});
    },
  };
}

function healthProbeProxy(value: ProvidedValue, plugin: PluginProcess, callTimeoutMs: number): HealthProbe {
  return {
    id: value.id,
    sample: async () => (await plugin.invoke({ target: value.target, method: 'sample', args: [] }, callTimeoutMs)) as HealthSample,
  };
}

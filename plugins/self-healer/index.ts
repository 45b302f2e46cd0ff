/**
 * The `self-healer` plugin: provides the Healer the orchestrator hands failures to. Rules come
 * from `healing.rules` in the config (defaults in rules.ts); actions are every HealingAction
 * provided by a running plugin, built-in or third-party, looked up when a failure arrives.
 * A failed recovery whose cause may be transient is retried (retry.ts, `healing.retry`).
 */
import path from 'node:path';
import type { InjectionToken } from 'tsyringe';
import { definePlugin } from '../../core/plugin.js';
import { healingSection } from './configSection.js';
import { createToken } from '../../core/token.js';
import { Healer, isHealer } from '../../core/contracts/Healer.js';
import { Learning, type ActionRecord } from './learning.js';
import { compileRules } from './rules.js';
import { createSelfHealer } from './healer.js';
import { withRetries } from './retry.js';

/** What the healer learned, for `/status`. */
export const HealerLearning: InjectionToken<{ snapshot(): Readonly<Record<string, ActionRecord>> }> = createToken<{ snapshot(): Readonly<Record<string, ActionRecord>> }>('self-healer.HealerLearning');

export default definePlugin({
  id: 'self-healer',
  contractVersion: '^1.0.0',
  config: [healingSection],
  provides: [Healer, HealerLearning],
  register(ctx) {
    const rules = compileRules(ctx.config);
    const learning = new Learning(path.join(ctx.config.agent.dataDir, 'healer-learning.json'), ctx.config.healing.learnAfter);
    const healer = createSelfHealer({ container: ctx.container, rules, learning, actionTimeoutMs: ctx.config.healing.actionTimeout, log: ctx.log });
    const retries = {
      policy: ctx.config.healing.retry,
      storePaths: new Map(ctx.config.stores.map((s) => [s.id, s.path])),
      processStores: new Map(ctx.config.processes.flatMap((p) => (p.store !== undefined ? [[p.id, p.store] as const] : []))),
    };
    ctx.provide(Healer, withRetries(healer, retries), isHealer);
    ctx.provide(HealerLearning, learning);
  },
});

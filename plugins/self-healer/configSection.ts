/**
 * The self-healer's config section, `healing:` — its rules and limits. A module of its own with
 * no import beyond zod and the config's value types, so `config check` validates it without
 * loading the healer.
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';
import { duration, size } from '../../core/config/valueTypes.js';

/** One step of a healing rule: an action id, an action with options, or alternatives. */
const ActionStep = z.union([
  z.string().min(1),
  z.strictObject({ action: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}), timeout: duration.optional() }),
]);
const HealingStep = z.union([ActionStep, z.strictObject({ anyOf: z.array(ActionStep).min(1) })], {
  error: 'expected an action id, { action, options, timeout } or { anyOf: [ … ] }',
});

const HealingSchema = z.strictObject({
  /** Rules, first match wins. Without any, built-in defaults apply (see the self-healer's README). */
  rules: z
    .array(
      z.strictObject({
        on: z.string().min(1),
        /** Optional conditions: priority, a subject pattern (regular expression), evidence values. */
        when: z
          .strictObject({
            priority: z.enum(['P0', 'P1', 'P2', 'P3']).optional(),
            subject: z.string().optional(),
            evidence: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
          })
          .optional(),
        do: z.array(HealingStep).min(1),
      }),
    )
    .optional(),
  /** Time each action may take (apply and verify) unless its step says otherwise. */
  actionTimeout: duration.default(30_000),
  /** Samples of a (failure kind, action) pair before its success rate reorders alternatives. */
  learnAfter: z.number().int().min(1).default(5),
  /**
   * A failed recovery whose cause may be transient (the store's disk full or failing, an I/O
   * error) is run again: when what blocked it clears, or after a backoff doubling from `initial`
   * to `max`; `attempts` in all, the first included (1: never retried). See retry.ts.
   */
  retry: z
    .strictObject({
      attempts: z.number().int().min(1).max(100).default(8),
      initial: duration.default(1000),
      max: duration.default(30_000),
      /** Below this much free space, a store's filesystem counts as full (statfs). */
      minFree: size.default(8 * 1024 * 1024),
      /** How often the blocking condition is checked while a retry waits. */
      checkEvery: duration.default(250),
    })
    .prefault({}),
});

/** The validated `healing:` section. */
export type HealingConfig = z.output<typeof HealingSchema>;

export const healingSection = defineConfigSection({
  plugin: 'self-healer',
  key: 'healing',
  scope: 'root',
  schema: HealingSchema.prefault({}),
});

declare module '../../core/config/section.js' {
  interface PluginConfigSections {
    healing: HealingConfig;
  }
}

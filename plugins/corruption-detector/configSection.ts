/**
 * The corruption detector's config section, `scrub:` inside a store: the background scrub's
 * rate and the interval of a full pass. A module of its own with no import beyond zod and the
 * config's value types, so `config check` validates it without loading the scanner.
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';
import { duration, rate } from '../../core/config/valueTypes.js';

const ScrubSchema = z.strictObject({
  rate: rate.default(50 * 2 ** 20),
  interval: duration.default(86_400_000),
  /**
   * Check the live WAL (sealed segments, and the current one up to the durable LSN) on this
   * interval (walScrub.ts): it reads at most the log since the last checkpoint and the segments
   * not yet retired, so once a minute costs little; 0 turns it off.
   */
  walInterval: duration.default(60_000),
});

/** A store's validated `scrub:` section. */
export type ScrubConfig = z.output<typeof ScrubSchema>;

export const scrubSection = defineConfigSection({
  plugin: 'corruption-detector',
  key: 'scrub',
  scope: 'store',
  schema: ScrubSchema.prefault({}),
});

declare module '../../core/config/section.js' {
  interface StoreConfigSections {
    scrub: ScrubConfig;
  }
}

/**
 * The redirect-store plugin's config key, `spare:` inside a store: an empty path (on another
 * disk) where the store is restored from its snapshots and WAL archive when its own disk fails.
 * Whatever the spare holds is replaced by the restore. A module of its own with no import beyond
 * zod, so `config check` validates it without loading the plugin.
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';

export const spareSection = defineConfigSection({
  plugin: 'redirect-store',
  key: 'spare',
  scope: 'store',
  schema: z.string().min(1).optional(),
  resolvePaths: (s, resolve) => (s === undefined ? s : resolve(s)),
});

declare module '../../core/config/section.js' {
  interface StoreConfigSections {
    /** Absent: a failed disk cannot be redirected from (only failed over, when the store is clustered). */
    spare?: string;
  }
}

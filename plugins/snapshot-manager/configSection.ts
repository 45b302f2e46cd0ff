/**
 * The snapshot manager's config section, `snapshots:` inside a store: where the store's
 * snapshots and WAL archive live, and the schedule. The agent's recoveries archive retired WAL
 * there too. A module of its own with no import beyond zod and the config's value types, so
 * `config check` validates it without loading the snapshot code.
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';
import { duration, rate } from '../../core/config/valueTypes.js';

const SnapshotsSchema = z.strictObject({
  dir: z.string().min(1),
  /** Take a snapshot on this interval inside the agent; without it, only the CLI takes them. */
  every: duration.optional(),
  /** Every Nth scheduled snapshot is full, the others incremental. */
  fullEvery: z.number().int().min(1).default(12),
  keep: z.strictObject({ full: z.number().int().min(0).default(2), incremental: z.number().int().min(0).default(12) }).prefault({}),
  maxAge: duration.optional(),
  /**
   * Check every snapshot file and archived WAL segment against its recorded checksum on this
   * interval (integrityDetector.ts): a pass reads each compressed file once, so the default
   * keeps that to an hour's background read of the snapshot directory; 0 turns it off.
   */
  verifyEvery: duration.default(3_600_000),
  /**
   * How fast a pass reads (`64MiB/s`): a pass over a large directory — an archive that grew
   * while no snapshot could be taken to prune it — is spread out, not a core busy back to back.
   */
  verifyRate: rate.default(64 * 2 ** 20),
});

/** A store's validated `snapshots:` section. */
export type SnapshotsConfig = z.output<typeof SnapshotsSchema>;

export const snapshotsSection = defineConfigSection({
  plugin: 'snapshot-manager',
  key: 'snapshots',
  scope: 'store',
  schema: SnapshotsSchema.optional(),
  resolvePaths: (s, resolve) => (s === undefined ? s : { ...s, dir: resolve(s.dir) }),
});

declare module '../../core/config/section.js' {
  interface StoreConfigSections {
    /** Absent: the store has no snapshots and no WAL archive. */
    snapshots?: SnapshotsConfig;
  }
}

/**
 * The replication plugin's config section, `replication:` inside a store (design: DESIGN.md).
 * A module of its own with no import beyond zod and the config's value types, so `config check`
 * validates it without loading the replication runtime.
 *
 *   primary:  { role: primary, listen: 127.0.0.1:7400, secretFile: ./repl.secret, mode: sync }
 *   replica:  { role: replica, primary: 127.0.0.1:7400, secretFile: ./repl.secret, id: r1 }
 *   member:   { role: member, listen: 127.0.0.1:7401, secretFile: ./repl.secret, mode: sync }  (a cluster decides)
 *
 * The secret is given inline or as a file (relative to the config); it must be at least 16
 * bytes, and is never logged nor shown by `GET /replication`.
 */
import { z } from 'zod';
import { defineConfigSection } from '../../core/config/section.js';
import { duration, id, listen, size } from '../../core/config/valueTypes.js';

/** The least secret length, in UTF-8 bytes (as the owner counts it: core/replication/protocol.ts MIN_SECRET_BYTES). */
const kMinSecretBytes = 16;
/** The longest `syncTimeoutMs` the owner takes (plugins/pagestore/replicationConfig.ts): 24 h. */
const kMaxSyncTimeoutMs = 24 * 3600_000;
/** Diverged stores a member keeps aside after a rebuild, by default (`keepDiverged`). */
export const DEFAULT_KEEP_DIVERGED = 2;
const kKeepDivergedError = 'keepDiverged must be a whole number, at least 1 (the diverged stores kept aside after a rebuild, newest first)';

const secretFields = {
  /** The shared secret, inline (at least 16 bytes). Prefer `secretFile`: a config is often readable by more people than a 0600 file. */
  secret: z
    .string()
    .refine((v) => Buffer.byteLength(v, 'utf8') >= kMinSecretBytes, { error: `the replication secret must be at least ${kMinSecretBytes} bytes (UTF-8)` })
    .refine((v) => /\S/.test(v), { error: 'the replication secret must not be only whitespace' })
    .optional(),
  /** A file holding the shared secret (trailing newline ignored; at least 16 bytes). */
  secretFile: z.string().min(1).optional(),
};

/** The port of a `host:port` (the value type checks the form only). */
const portOf = (v: string): number => Number(v.slice(v.lastIndexOf(':') + 1));
/** An address to listen on: port 0 (any free port) to 65535. */
const listenOn = listen.refine((v) => portOf(v) <= 65535, { error: 'expected a port from 0 to 65535' });
/** An address to connect to: port 1 to 65535 (nothing listens on port 0). */
const connectTo = listen.refine((v) => portOf(v) >= 1 && portOf(v) <= 65535, { error: 'expected a port from 1 to 65535 (port 0 cannot be connected to)' });

const PrimarySchema = z.strictObject({
  role: z.literal('primary'),
  /** Where the store's owner listens for replicas. */
  listen: listenOn,
  ...secretFields,
  /** `async`: a commit is acknowledged after the local flush; `sync`: after `syncReplicas` replicas have it durable too. */
  mode: z.enum(['async', 'sync']).default('async'),
  syncReplicas: z.number().int().min(1).max(64).default(1),
  /** How long a commit waits for `syncReplicas` before `onSyncTimeout` applies: whole milliseconds from 1 ms to 24 h (the owner refuses other values, and the store would not open). */
  syncTimeoutMs: duration
    .refine((v) => Number.isSafeInteger(v) && v >= 1 && v <= kMaxSyncTimeoutMs, { error: 'syncTimeoutMs must be a whole number of milliseconds from 1ms to 24h' })
    .default(10_000),
  /**
   * What a sync store does once `syncReplicas` replicas have been missing for `syncTimeoutMs`:
   * `block` (the default) keeps commits waiting — an operator who chose `sync` chose RPO 0, and no
   * acknowledged commit may then be lost on failover (Patroni's `synchronous_mode_strict`);
   * `degrade` acknowledges after the local flush until a replica is back (availability first).
   */
  onSyncTimeout: z.enum(['block', 'degrade']).default('block'),
  /** A replica more than this many bytes behind the flushed log raises `replica-lagging`. */
  maxLagBytes: size.default(64 * 2 ** 20),
  /** A replica more than this far behind in time raises `replica-lagging`. */
  maxLagMs: duration.default(30_000),
});

const ReplicaSchema = z.strictObject({
  role: z.literal('replica'),
  /** The primary's replication address, `host:port`. */
  primary: connectTo,
  ...secretFields,
  /** This replica's name, as the primary reports it (default: the store's id). */
  id: id.optional(),
  /**
   * When the primary refuses this replica as too far behind (it no longer has the log the replica
   * needs): move the replica's store aside (`<path>.replaced-<time>`) and make it again from a base
   * copy. Off by default: a whole copy of the store over the network, and the old replica set aside,
   * are the operator's call (README, "Replication").
   */
  autoReinit: z.boolean().default(false),
  maxLagBytes: size.default(64 * 2 ** 20),
  maxLagMs: duration.default(30_000),
});

/**
 * A member of a cluster (#15): primary or replica as the cluster decides (the `cluster:` section,
 * plugins/cluster/). It takes the primary's settings, used while it is the primary; while a
 * replica it streams from the leader's advertised address.
 */
const MemberSchema = z.strictObject({
  ...PrimarySchema.shape,
  role: z.literal('member'),
  /** The address other members connect to when this one is the primary (default: `listen`; required when `listen` is a wildcard). */
  advertise: connectTo.optional(),
  /** This member's name as a replica, as its primary reports it (default: the cluster's member id, so two members never share one). */
  id: id.optional(),
  /** While a replica: as the replica's `autoReinit` (a base copy when the primary says it is too far behind). */
  autoReinit: z.boolean().default(false),
  /**
   * Diverged stores kept for audit (`<path>.diverged-<time>`: an old primary's suffix past the
   * fork, set aside when it is made again from a base copy): the newest this many; older ones are
   * removed once a rebuild worked. At least 1: the latest diverged suffix is always kept.
   */
  keepDiverged: z
    .number({ error: kKeepDivergedError })
    .int({ error: kKeepDivergedError })
    .min(1, { error: kKeepDivergedError })
    .default(DEFAULT_KEEP_DIVERGED),
});

const ReplicationSchema = z
  .discriminatedUnion('role', [PrimarySchema, ReplicaSchema, MemberSchema])
  .refine((r) => (r.secret === undefined) !== (r.secretFile === undefined), { error: 'give exactly one of "secret" and "secretFile"' });

/** A store's validated `replication:` section. */
export type ReplicationConfig = z.output<typeof ReplicationSchema>;
export type PrimaryConfig = Extract<ReplicationConfig, { role: 'primary' }>;
export type ReplicaConfig = Extract<ReplicationConfig, { role: 'replica' }>;
export type MemberConfig = Extract<ReplicationConfig, { role: 'member' }>;

export const replicationSection = defineConfigSection({
  plugin: 'replication',
  key: 'replication',
  scope: 'store',
  schema: ReplicationSchema.optional(),
  resolvePaths: (r, resolve) => (r === undefined || r.secretFile === undefined ? r : { ...r, secretFile: resolve(r.secretFile) }),
  // An agent is one member of its cluster: the leader key names a member, not a store, so two
  // member stores in one agent could not be promoted or followed apart.
  checkConfig(config, issue) {
    const stores = Array.isArray(config.stores) ? (config.stores as unknown[]) : [];
    const members = stores.flatMap((s, i) => ((s as { replication?: { role?: unknown } } | null)?.replication?.role === 'member' ? [i] : []));
    const id = (i: number) => JSON.stringify((stores[i] as { id?: unknown }).id);
    for (const i of members.slice(1)) {
      issue(['stores', i, 'replication', 'role'], `an agent holds one member store (it is one member of its cluster), and ${id(members[0]!)} is one already: give this store role primary or replica, or run one agent per member store`);
    }
  },
});

declare module '../../core/config/section.js' {
  interface StoreConfigSections {
    /** Absent: the store is not replicated. */
    replication?: ReplicationConfig;
  }
}

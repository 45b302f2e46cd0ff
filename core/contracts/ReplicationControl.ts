/**
 * Replication as a cluster drives it (#15; plugins/replication/DESIGN.md "Roles that change"):
 * the replication plugin provides it for the stores whose `replication.role` is `member`, and the
 * cluster plugin decides, from etcd, which member is the primary. A member store is undecided
 * until told: its application is held (ProcessGate) until `promote`.
 */
import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

export type MemberRole = 'undecided' | 'primary' | 'replica';

/** One member store on this host, as the cluster publishes it for the election. */
export interface MemberStoreState {
  readonly store: string;
  readonly role: MemberRole;
  /** The epoch of this store's log (a primary's: the one it writes at). */
  readonly epoch: number;
  /** The end of the log durable here. */
  readonly durableLsn: number;
  /** A replica's applied LSN; a primary's: its flushed LSN. */
  readonly appliedLsn: number;
  /** A replica: streaming from its primary now (caught up to the live tail at least once). */
  readonly streaming: boolean;
  /** Where other members reach this store's stream when it is the primary (`host:port`). */
  readonly replicationAddress: string;
  /** `sync` or `async`, and how many replicas a sync commit waits for. */
  readonly mode: 'async' | 'sync';
  readonly syncReplicas: number;
  /** What is in progress or failed (a promotion waiting for the old owner to exit, a refusal…). */
  readonly note?: string;
}

/** Bounds of a role change: a time limit, and a signal that abandons it (a newer leader or epoch superseded it). */
export interface RoleChangeOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /**
   * `follow` only: the name this member gives its primary as a replica (the cluster passes its
   * member id). A primary counts a sync quorum by distinct replica names and a newer connection
   * of a name replaces the older, so two members must never share one; the store's
   * `replication.id`, when set, wins.
   */
  replicaId?: string;
}

export interface ReplicationControl {
  /** Every member store on this host. */
  members(): MemberStoreState[];
  /**
   * Makes this host the store's primary at `epoch`: the replica session (if any) stops, the
   * owner's settings become a fenced primary's at `epoch`, and the gate lets the application
   * start (its open runs crash recovery, undo included). Resolves once the owner serves the
   * store at that epoch; rejects after `timeoutMs` saying what it waited for.
   */
  promote(store: string, epoch: number, options?: RoleChangeOptions): Promise<void>;
  /**
   * Makes this host a replica of the primary at `address` (epoch `epoch`): the application is held
   * and stopped, its lock awaited, and a replica session streams from `address`.
   */
  follow(store: string, address: string, epoch: number, options?: RoleChangeOptions): Promise<void>;
  /** Tells the store's owner (a fenced primary) it may acknowledge commits until `untilNs` (CLOCK_MONOTONIC ns). */
  grantLease(store: string, epoch: number, untilNs: bigint): Promise<void>;
}

export const ReplicationControl: InjectionToken<ReplicationControl> = createToken<ReplicationControl>('recovery-agent.ReplicationControl');

export function isReplicationControl(v: unknown): v is ReplicationControl {
  const c = v as ReplicationControl | null;
  return typeof c === 'object' && c !== null && typeof c.members === 'function' && typeof c.promote === 'function' && typeof c.follow === 'function' && typeof c.grantLease === 'function';
}

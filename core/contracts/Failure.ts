/**
 * A failure: something a detector saw go wrong, published on the failure bus and consumed by
 * the orchestrator. Immutable once published.
 */

/** Urgency, with an RTO target each (config `agent.rto`): P0 data at risk … P3 housekeeping. */
export type Priority = 'P0' | 'P1' | 'P2' | 'P3';

/** Every priority, most urgent first. */
export const PRIORITIES: readonly Priority[] = ['P0', 'P1', 'P2', 'P3'];

/** A failure as it travels on the bus. */
export interface Failure {
  /** Unique per publication (`f-<time>-<seq>`). */
  readonly id: string;
  /** What went wrong, e.g. `process-crash`, `page-corruption`, `predicted-exhaustion`. */
  readonly kind: string;
  readonly priority: Priority;
  /** What it happened to: a store id, a process id, a host resource (`store:demo`, `process:writer`). */
  readonly subject: string;
  /** Facts that support the diagnosis (exit code, page ids, last heartbeat…); JSON-serialisable. */
  readonly evidence: Readonly<Record<string, unknown>>;
  /** When the detector saw it, in milliseconds since the epoch. */
  readonly detectedAt: number;
  /**
   * When the failure began, when its detector can bound that better than its detection (a
   * primary's last sign of life, before its lease ran out): never after `detectedAt`. The RTO
   * counts from it; absent, from `detectedAt`.
   */
  readonly occurredAt?: number;
  /**
   * The agent's own answer to this failure is already under way and its detector resolves the
   * failure when that answer succeeds (a deposed primary rebuilding itself as a replica, a member
   * cut off from etcd that stepped down and waits to reach it again): the orchestrator hands it to
   * the healer — and escalates it when nothing heals it — only if it is still open this many ms
   * after its detection. Until then it is `settling`: listed, journaled, not a recovery, not a
   * reason /health gives. Absent: handed to the healer at once.
   */
  readonly settlesWithinMs?: number;
  /** The plugin id of the detector that published it. */
  readonly source: string;
  /** Equal for failures that are the same problem; the orchestrator de-duplicates on it. */
  readonly fingerprint: string;
}

/** What a detector hands to the bus; the bus fills in id, time and fingerprint. */
export interface FailureInput {
  kind: string;
  priority: Priority;
  subject: string;
  evidence?: Record<string, unknown>;
  detectedAt?: number;
  /** See Failure.occurredAt; one after the detection counts as the detection. */
  occurredAt?: number;
  /** See Failure.settlesWithinMs: at most MAX_SETTLE_MS. */
  settlesWithinMs?: number;
  fingerprint?: string;
}

/** The longest a failure may be left to settle by itself before it is handed to the healer (1 h). */
export const MAX_SETTLE_MS = 3_600_000;

/**
 * A detector's word that a failure it published is over by itself (a store its writer was still
 * to create now exists): not a recovery. The orchestrator records the open failure as `cleared`
 * (no RTO sample, no weight in RTO compliance) and drops it from the open and escalated lists.
 */
export interface FailureResolution {
  /** The failure the detector published, and its fingerprint, kind, subject and detection time. */
  readonly failureId: string;
  readonly fingerprint: string;
  readonly kind: string;
  readonly subject: string;
  readonly detectedAt: number;
  /** Why it is over, for people (`/failures`, the log). */
  readonly reason: string;
  readonly resolvedAt: number;
  /** The plugin id of the detector: only the one that published a failure may resolve it. */
  readonly source: string;
}

/** Where detectors publish failures. */
export interface FailureSink {
  publish(failure: FailureInput): Failure;
  /**
   * Closes a failure this detector published whose condition went away by itself. Present for
   * in-process plugins; not yet carried across to isolated (child-process) plugins.
   */
  resolve?(failureId: string, reason: string): FailureResolution;
}

/** Runtime guard for a priority string. */
export function isPriority(v: unknown): v is Priority {
  return typeof v === 'string' && (PRIORITIES as readonly string[]).includes(v);
}

/** The store ids a failure names: `evidence.stores`, `evidence.store`, or a subject `store:<id>`. */
export function storesOf(failure: Failure): string[] {
  const out = new Set<string>();
  const { stores, store } = failure.evidence;
  if (Array.isArray(stores)) for (const s of stores) if (typeof s === 'string' && s) out.add(s);
  if (typeof store === 'string' && store) out.add(store);
  const m = /^store:(.+)$/.exec(failure.subject);
  if (m) out.add(m[1]!);
  return [...out];
}

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
  fingerprint?: string;
}

/** Where detectors publish failures. */
export interface FailureSink {
  publish(failure: FailureInput): Failure;
}

/** Runtime guard for a priority string. */
export function isPriority(v: unknown): v is Priority {
  return typeof v === 'string' && (PRIORITIES as readonly string[]).includes(v);
}

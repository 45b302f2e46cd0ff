/**
 * The failure bus: detectors publish `Failure`s, the orchestrator (and anyone else) subscribes.
 * Delivery is synchronous and isolated: a listener that throws is logged, never propagated to
 * the detector that published. A bounded backlog lets a late subscriber replay what it missed
 * (the orchestrator starts after the detectors it depends on may already have published).
 *
 * A detector may also `resolve` a failure it published when its condition goes away by itself
 * (not by a recovery): resolutions travel to `onResolve` listeners, with a backlog of their own,
 * replayed after the failures' (a resolution only ever follows its failure).
 */
import type { Logger } from 'pino';
import { MAX_SETTLE_MS, isPriority, type Failure, type FailureInput, type FailureResolution, type FailureSink } from './contracts/Failure.js';
import { raError } from './errors.js';

export type FailureListener = (failure: Failure) => void;
export type ResolutionListener = (resolution: FailureResolution) => void;

/** Failures published and not yet resolved that `resolve` can still name (the oldest are forgotten past this). */
const UNRESOLVED_KEPT = 10_000;

export class FailureBus {
  private readonly listeners = new Set<FailureListener>();
  private readonly backlog: Failure[] = [];
  private readonly resolutionListeners = new Set<ResolutionListener>();
  private readonly resolutions: FailureResolution[] = [];
  /** Published, not yet resolved, by id (insertion order: oldest first). */
  private readonly unresolved = new Map<string, Failure>();
  private seq = 0;

  constructor(
    private readonly log?: Logger,
    private readonly backlogSize = 1024,
  ) {}

  /** Publishes a failure on behalf of `source` (a plugin id). Returns it as delivered. */
  publish(source: string, input: FailureInput): Failure {
    if (typeof input?.kind !== 'string' || input.kind.length === 0) {
      throw raError('RA_ERR_CONTRACT', `failure.kind must be a non-empty string (got ${JSON.stringify(input?.kind)}) from ${source}`);
    }
    if (!isPriority(input.priority)) {
      throw raError('RA_ERR_CONTRACT', `failure.priority must be one of P0, P1, P2, P3 (got ${JSON.stringify(input.priority)}) from ${source}`);
    }
    if (typeof input.subject !== 'string' || input.subject.length === 0) {
      throw raError('RA_ERR_CONTRACT', `failure.subject must be a non-empty string (got ${JSON.stringify(input.subject)}) from ${source}`);
    }
    const detectedAt = input.detectedAt ?? Date.now();
    if (input.occurredAt !== undefined && (typeof input.occurredAt !== 'number' || !Number.isFinite(input.occurredAt))) {
      throw raError('RA_ERR_CONTRACT', `failure.occurredAt must be a time in ms since the epoch (got ${JSON.stringify(input.occurredAt)}) from ${source}`);
    }
    const occurredAt = input.occurredAt === undefined ? undefined : Math.min(input.occurredAt, detectedAt);
    const settle = input.settlesWithinMs;
    if (settle !== undefined && (typeof settle !== 'number' || !Number.isFinite(settle) || settle <= 0 || settle > MAX_SETTLE_MS)) {
      throw raError('RA_ERR_CONTRACT', `failure.settlesWithinMs must be a number of ms above 0 and at most ${MAX_SETTLE_MS} (got ${JSON.stringify(settle)}) from ${source}`);
    }
    const failure: Failure = Object.freeze({
      id: `f-${detectedAt.toString(36)}-${(++this.seq).toString(36)}`,
      kind: input.kind,
      priority: input.priority,
      subject: input.subject,
      evidence: Object.freeze({ ...(input.evidence ?? {}) }),
      detectedAt,
      ...(occurredAt !== undefined ? { occurredAt } : {}),
      ...(settle !== undefined ? { settlesWithinMs: settle } : {}),
      source,
      fingerprint: input.fingerprint ?? `${input.kind}|${input.subject}`,
    });
    this.backlog.push(failure);
    if (this.backlog.length > this.backlogSize) this.backlog.shift();
    this.unresolved.set(failure.id, failure);
    if (this.unresolved.size > UNRESOLVED_KEPT) this.unresolved.delete(this.unresolved.keys().next().value!);
    this.log?.info({ failureId: failure.id, kind: failure.kind, priority: failure.priority, subject: failure.subject, source }, 'failure published');
    for (const listener of this.listeners) {
      try {
        listener(failure);
      } catch (err) {
        this.log?.error({ err, failureId: failure.id }, 'failure listener threw');
      }
    }
    return failure;
  }

  /**
   * Closes failure `failureId`, which `source` published, because its condition is over by itself
   * (`reason`). Throws RA_ERR_CONTRACT for a failure the bus does not know (never published,
   * already resolved, or forgotten) or one another source published.
   */
  resolve(source: string, failureId: string, reason: string): FailureResolution {
    const failure = this.unresolved.get(failureId);
    if (!failure) throw raError('RA_ERR_CONTRACT', `no unresolved failure "${failureId}" to resolve (from ${source})`);
    if (failure.source !== source) throw raError('RA_ERR_CONTRACT', `${source} cannot resolve failure ${failureId}: ${failure.source} published it`);
    if (typeof reason !== 'string' || reason.length === 0) throw raError('RA_ERR_CONTRACT', `a resolution needs a reason (from ${source})`);
    this.unresolved.delete(failureId);
    const resolution: FailureResolution = Object.freeze({
      failureId,
      fingerprint: failure.fingerprint,
      kind: failure.kind,
      subject: failure.subject,
      detectedAt: failure.detectedAt,
      reason,
      resolvedAt: Date.now(),
      source,
    });
    this.resolutions.push(resolution);
    if (this.resolutions.length > this.backlogSize) this.resolutions.shift();
    this.log?.info({ failureId, kind: failure.kind, subject: failure.subject, source, reason }, 'failure resolved by its detector');
    for (const listener of this.resolutionListeners) {
      try {
        listener(resolution);
      } catch (err) {
        this.log?.error({ err, failureId }, 'resolution listener threw');
      }
    }
    return resolution;
  }

  /** A sink bound to one source, the form handed to detectors. */
  sinkFor(source: string): FailureSink {
    return { publish: (input) => this.publish(source, input), resolve: (failureId, reason) => this.resolve(source, failureId, reason) };
  }

  /**
   * Subscribes; with `replay`, first delivers the backlog (failures, then resolutions to
   * `onResolve`). Returns the unsubscribe function.
   */
  subscribe(listener: FailureListener, options: { replay?: boolean; onResolve?: ResolutionListener } = {}): () => void {
    const { onResolve } = options;
    if (options.replay) {
      for (const f of this.backlog) listener(f);
      if (onResolve) for (const r of this.resolutions) onResolve(r);
    }
    this.listeners.add(listener);
    if (onResolve) this.resolutionListeners.add(onResolve);
    return () => {
      this.listeners.delete(listener);
      if (onResolve) this.resolutionListeners.delete(onResolve);
    };
  }

  /** The most recent failures, oldest first. */
  recent(limit = this.backlogSize): readonly Failure[] {
    return this.backlog.slice(-limit);
  }
}

/**
 * The failure bus: detectors publish `Failure`s, the orchestrator (and anyone else) subscribes.
 * Delivery is synchronous and isolated: a listener that throws is logged, never propagated to
 * the detector that published. A bounded backlog lets a late subscriber replay what it missed
 * (the orchestrator starts after the detectors it depends on may already have published).
 */
import type { Logger } from 'pino';
import { isPriority, type Failure, type FailureInput, type FailureSink } from './contracts/Failure.js';
import { raError } from './errors.js';

export type FailureListener = (failure: Failure) => void;

export class FailureBus {
  private readonly listeners = new Set<FailureListener>();
  private readonly backlog: Failure[] = [];
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
    const failure: Failure = Object.freeze({
      id: `f-${detectedAt.toString(36)}-${(++this.seq).toString(36)}`,
      kind: input.kind,
      priority: input.priority,
      subject: input.subject,
      evidence: Object.freeze({ ...(input.evidence ?? {}) }),
      detectedAt,
      source,
      fingerprint: input.fingerprint ?? `${input.kind}|${input.subject}`,
    });
    this.backlog.push(failure);
    if (this.backlog.length > this.backlogSize) this.backlog.shift();
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

  /** A sink bound to one source, the form handed to detectors. */
  sinkFor(source: string): FailureSink {
    return { publish: (input) => this.publish(source, input) };
  }

  /** Subscribes; with `replay`, first delivers the backlog. Returns the unsubscribe function. */
  subscribe(listener: FailureListener, options: { replay?: boolean } = {}): () => void {
    if (options.replay) for (const f of this.backlog) listener(f);
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The most recent failures, oldest first. */
  recent(limit = this.backlogSize): readonly Failure[] {
    return this.backlog.slice(-limit);
  }
}

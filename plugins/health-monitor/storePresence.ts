/**
 * Whether each store can be opened, as the store probe finds at every sample. A store its writer
 * process has not created yet is expected for a while after the agent starts (the process makes
 * it on first start); once `health.storeGrace` has passed, a store that is missing (or cannot be
 * opened) is a P1 failure of its own — `store-missing` or `store-unopenable`, subject
 * `store:<id>` — and the failure is resolved on the bus (not recovered) as soon as the store
 * opens. No healing action can create a store: restarting its writer is the supervisor's job, so
 * the failure, which no rule handles, is escalated until then and `/health` says so.
 */
import type { Logger } from 'pino';
import type { Failure, FailureSink } from '../../core/contracts/Failure.js';
import { describeError } from '../../core/errors.js';

export const STORE_MISSING = 'store-missing';
export const STORE_UNOPENABLE = 'store-unopenable';

/** What the probe found: the store opened, or why not. */
export type StoreCondition = { readonly ok: true } | { readonly ok: false; readonly missing: boolean; readonly reason: string };

export interface StorePresenceOptions {
  readonly graceMs: number;
  readonly log: Logger;
  /** The process that writes each store (processes[].store), by store id. */
  readonly writers: ReadonlyMap<string, string>;
  /** The sink, once the detector is started (null before). */
  readonly sink: () => FailureSink | null;
  readonly now?: () => number;
}

export class StorePresence {
  private startedAt: number | null = null;
  /** The failure published for each store, while it is open. */
  private readonly open = new Map<string, Failure>();

  constructor(private readonly o: StorePresenceOptions) {}

  /** The grace period runs from here (the detector's start). */
  start(): void {
    this.startedAt = this.now();
  }

  /** Takes one observation of store `id` at `path`: publishes or resolves its failure as needed. */
  observe(id: string, path: string, condition: StoreCondition): void {
    const sink = this.o.sink();
    if (!sink || this.startedAt === null) return;
    const kind = condition.ok ? null : condition.missing ? STORE_MISSING : STORE_UNOPENABLE;
    const open = this.open.get(id);
    if (open && open.kind !== kind) this.resolve(sink, id, open, condition.ok ? `store ${id} can be opened now` : `store ${id}: ${condition.reason}`);
    if (condition.ok || kind === null || this.open.has(id)) return;
    if (this.now() - this.startedAt < this.o.graceMs) return;
    const writer = this.o.writers.get(id) ?? null;
    const what = kind === STORE_MISSING ? 'missing' : 'cannot be opened';
    this.o.log.warn({ store: id, path, writer, reason: condition.reason }, writer ? `store ${what}: process "${writer}" was expected to create it` : `store ${what}`);
    try {
      const failure = sink.publish({
        kind,
        priority: 'P1',
        subject: `store:${id}`,
        evidence: { store: id, path, reason: condition.reason, expectedWriter: writer, graceSeconds: this.o.graceMs / 1000 },
      });
      this.open.set(id, failure);
    } catch (err) {
      this.o.log.error({ err: describeError(err), store: id, kind }, 'cannot publish failure');
    }
  }

  private resolve(sink: FailureSink, id: string, failure: Failure, reason: string): void {
    this.open.delete(id);
    if (!sink.resolve) return;
    try {
      sink.resolve(failure.id, reason);
    } catch (err) {
      this.o.log.error({ err: describeError(err), store: id, failureId: failure.id }, 'cannot resolve failure');
    }
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }
}

/**
 * The commit fence of a clustered primary (#15, plugins/cluster/DESIGN.md): the owner
 * acknowledges a commit only while the leadership lease its agent holds in etcd is valid, by
 * this host's monotonic clock. The agent grants the owner the lease's deadline through the
 * control socket (`{"op":"lease","epoch":E,"untilNs":"…"}`) after each keepalive that succeeded;
 * the deadline is `process.hrtime.bigint()` nanoseconds — CLOCK_MONOTONIC, one clock for every
 * process of the host — so the owner checks it itself, with no message in the way.
 *
 * Why the owner and not the agent: it is the owner that acknowledges. An agent that is stopped
 * (SIGSTOP), cut off from etcd, or dead cannot tell its owner to stop; a deadline the owner
 * already holds stops it on time, before any other member can be elected (the agent's deadline
 * is shorter than the lease's TTL by a margin). A commit whose record is durable but whose
 * acknowledgement falls after the deadline waits for a new grant; past `maxWaitMs` it fails with
 * RA_ERR_FENCED: its outcome is then unknown to the client (durable here, but this node may no
 * longer be the primary), exactly as for a lost acknowledgement.
 *
 * Enabled by `"fenced": true` in replication.json. Without it (no cluster) `wait()` is free.
 */
import { raError } from '../../core/errors.js';
import './errors.js';

export interface FenceStatus {
  readonly enabled: boolean;
  readonly epoch: number;
  /** Nanoseconds of validity left (negative: lapsed); null before the first grant. */
  readonly remainingNs: string | null;
  /** Commits waiting for a grant now. */
  readonly waiting: number;
  /** Commits refused after waiting `maxWaitMs`. */
  readonly refused: number;
}

export class CommitFence {
  private untilNs = 0n;
  private granted = false;
  private readonly waiters = new Set<{ resolve: () => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  private refused = 0;

  constructor(
    readonly enabled: boolean,
    /** This owner's epoch (replication.json): a grant for another epoch is refused. */
    readonly epoch: number,
    private readonly maxWaitMs = 30_000,
    private readonly now: () => bigint = () => process.hrtime.bigint(),
  ) {}

  /** True while a commit may be acknowledged. */
  valid(): boolean {
    return !this.enabled || (this.granted && this.now() < this.untilNs);
  }

  /**
   * A deadline from the agent. Only ever extends: an older grant arriving late (two control
   * connections racing) cannot shorten a newer one.
   */
  grant(epoch: number, untilNs: bigint): { untilNs: string; remainingNs: string } {
    if (!this.enabled) throw raError('RA_ERR_FENCED', 'this store is not fenced ("fenced": true is not in replication.json): a lease grant means the agent and the owner disagree about the cluster');
    if (epoch !== this.epoch) throw raError('RA_ERR_FENCED', `lease for epoch ${epoch} refused: this owner is the primary of epoch ${this.epoch}`, { details: { epoch, ownEpoch: this.epoch } });
    if (!this.granted || untilNs > this.untilNs) this.untilNs = untilNs;
    this.granted = true;
    if (this.valid()) for (const w of [...this.waiters]) w.resolve();
    return { untilNs: this.untilNs.toString(), remainingNs: (this.untilNs - this.now()).toString() };
  }

  /** Resolves at once while the lease is valid; otherwise when a grant makes it valid; rejects after `maxWaitMs`. */
  wait(): Promise<void> {
    if (this.valid()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const w = {
        resolve: () => {
          clearTimeout(w.timer);
          this.waiters.delete(w);
          resolve();
        },
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(w);
          this.refused++;
          reject(
            raError('RA_ERR_FENCED', `commit not acknowledged: this node's leadership lease (epoch ${this.epoch}) lapsed and was not renewed within ${this.maxWaitMs} ms; the commit is durable here but its outcome is unknown (another member may be the primary now)`, {
              details: { epoch: this.epoch, maxWaitMs: this.maxWaitMs },
            }),
          );
        }, this.maxWaitMs),
      };
      this.waiters.add(w);
    });
  }

  status(): FenceStatus {
    return {
      enabled: this.enabled,
      epoch: this.epoch,
      remainingNs: this.granted ? (this.untilNs - this.now()).toString() : null,
      waiting: this.waiters.size,
      refused: this.refused,
    };
  }

  /** Fails every waiting commit (the store is closing). */
  close(err: Error): void {
    for (const w of [...this.waiters]) {
      clearTimeout(w.timer);
      this.waiters.delete(w);
      w.reject(err);
    }
  }
}

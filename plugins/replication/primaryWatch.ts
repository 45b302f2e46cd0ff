/**
 * The primary's side in the agent: the owner streams (pagestore's sender), the agent only
 * watches. Once a second it asks the store's owner for its status (the engine face's owner
 * channel, the control socket) and keeps its `replication` section: each replica's durable and
 * applied LSN from its acks. Lag per replica: bytes flushed here and not applied there, and in
 * time, how long ago the owner's flushed LSN first passed what the replica has applied (from
 * this watcher's own samples, so to within its poll interval).
 *
 * An owner that is down (restarting, or not started yet) is a state, not an error: the
 * replicas keep their last known positions and the status says `owner: "down"`.
 */
import type { Logger } from 'pino';
import type { LiveOwner, OwnerReplicationStatus, PageEngine } from '../../core/contracts/PageEngine.js';
import { describeError } from '../../core/errors.js';

const kPollMs = 1000;
/** Samples of the flushed LSN kept (one a second). */
const kSamples = 600;

export interface PrimaryReplicaLag {
  id: string;
  address: string;
  state: string;
  durableLsn: number;
  appliedLsn: number;
  lagBytes: number;
  lagMs: number;
  /** Wall-clock ms of its last ack, or null before the first (its applied position is not known yet). */
  lastAckAt: number | null;
  error?: string;
}

export interface PrimaryWatchStatus {
  role: 'primary';
  listen: string;
  mode: 'async' | 'sync';
  owner: 'up' | 'down';
  reason?: string;
  epoch: number | null;
  flushedLsn: number | null;
  syncState: string | null;
  replicas: PrimaryReplicaLag[];
}

export class PrimaryWatch {
  private owner: LiveOwner | null = null;
  private last: OwnerReplicationStatus | null = null;
  private ownerState: 'up' | 'down' = 'down';
  private reason: string | undefined = 'not asked yet';
  private timer: NodeJS.Timeout | null = null;
  private polling = false;
  /** (flushed LSN, local ms when first seen), oldest first. */
  private readonly samples: Array<{ lsn: number; atMs: number }> = [];

  constructor(
    private readonly o: { storeId: string; dir: string; engine: PageEngine; listen: string; mode: 'async' | 'sync'; log: Logger },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.poll(), kPollMs);
    this.timer.unref();
    void this.poll();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.owner?.close();
    this.owner = null;
  }

  /** Asks the owner once; tests and the first status need not wait for the timer. */
  async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      this.owner ??= await this.o.engine.connectOwner(this.o.dir, { timeoutMs: 2000 });
      const st = await this.owner.status();
      this.setOwner('up');
      this.last = st.replication ?? null;
      if (this.last) {
        const at = this.samples.at(-1);
        if (!at || this.last.flushedLsn > at.lsn) this.samples.push({ lsn: this.last.flushedLsn, atMs: Date.now() });
        if (this.samples.length > kSamples) this.samples.shift();
      }
    } catch (err) {
      this.owner?.close();
      this.owner = null;
      this.setOwner('down', describeError(err));
    } finally {
      this.polling = false;
    }
  }

  private setOwner(state: 'up' | 'down', reason?: string): void {
    if (state === this.ownerState && (state === 'up' || reason === this.reason)) return;
    this.ownerState = state;
    this.reason = reason;
    if (state === 'up') this.o.log.info({ store: this.o.storeId }, 'primary: watching the owner\'s replication');
    else this.o.log.info({ store: this.o.storeId, reason }, 'primary: the owner cannot be asked (not running?)');
  }

  status(): PrimaryWatchStatus {
    const r = this.last;
    const now = Date.now();
    return {
      role: 'primary',
      listen: this.o.listen,
      mode: this.o.mode,
      owner: this.ownerState,
      ...(this.reason && this.ownerState === 'down' ? { reason: this.reason } : {}),
      epoch: r?.epoch ?? null,
      flushedLsn: r?.flushedLsn ?? null,
      syncState: r?.syncState ?? null,
      replicas: (r?.replicas ?? []).map((x) => {
        const first = this.samples.find((s) => s.lsn > x.appliedLsn);
        return {
          id: x.id,
          address: x.address,
          state: x.state,
          durableLsn: x.durableLsn,
          appliedLsn: x.appliedLsn,
          lagBytes: Math.max(0, r!.flushedLsn - x.appliedLsn),
          lagMs: first ? now - first.atMs : 0,
          lastAckAt: x.lastAckAt,
          ...(x.error ? { error: x.error } : {}),
        };
      }),
    };
  }
}

/**
 * The replica's side of a store (DESIGN.md, "The replica's side"): holds the replica store open
 * through the engine face (`replica.openReplica`, which takes the store's lock and runs redo
 * only), connects to the primary, says where its log ends (`hello`), appends what arrives and
 * acknowledges it once durable, and applies behind the durable LSN on a short timer or a byte
 * threshold (the redo runs on the agent's worker pool).
 *
 * Connection loss: reconnect with capped exponential backoff, from the durable end (nothing is
 * received twice). The log says so once per state change, not once per attempt. A refusal by the
 * primary (authentication, divergence, epoch, too far behind) is a state of its own with the
 * primary's reason, reported once through `onRefused`; the session keeps trying at the longest
 * backoff, since the operator may fix the other end.
 *
 * Silence: the primary sends a keepalive every `keepaliveMs` (1 s by default) when it has nothing
 * else to send, so a connection that brings no frame for 3× the longest gap seen between
 * keepalives (5 s before two arrived, never less than 1 s) is taken as dead (a partition, a dead
 * host: no FIN or RST comes) and made again; until it streams again the lag is unknown (null),
 * never the 0 of the last keepalive.
 *
 * Failures of the replica store itself (state `failed`, reported once per episode through
 * `onFailed`, and never the agent's failure): a store that cannot be opened, a log that cannot be
 * written (a full disk: the store is closed and opened again with backoff until it can), a page
 * the apply finds damaged (repaired from the primary, `repairPage`, then the apply retried, with
 * backoff). The episode ends when the replica streams and applies again.
 *
 * A replica store that does not exist is made by a base copy from the primary (the engine's
 * `replica.initReplica`) before the first hello: a new replica needs nothing but its config. A
 * base copy that fails once the primary answered is tried again after 25 ms doubling to 5 s (back
 * to 25 ms once one succeeds), not at the pace of a lost connection. A
 * replica the primary calls "too far behind" (it retired the segments the replica needs) is
 * re-initialised only with `autoReinit`: the old store is moved aside (`<dir>.replaced-<time>`,
 * never deleted) and a base copy made; without it the refusal stands for the operator to decide
 * (a whole copy of the store over the network, and the old replica's pages set aside, are not
 * things to do behind an operator's back by default).
 */
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { PageEngine, ReplicaStore } from '../../core/contracts/PageEngine.js';
import { describeError, isRaError, raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import {
  FrameType,
  ackFrame,
  connectChannel,
  helloFrame,
  pageFrame,
  pageRefusedFrame,
  pageRequestFrame,
  parseKeepalive,
  parsePage,
  parsePageRequest,
  parseWal,
  type ReplicationChannel,
} from '../../core/replication/protocol.js';
import { sleep } from '../../core/sleep.js';
import type { WorkerPool } from '../../core/workerPool.js';
import { asidePath, pruneAside } from './asideStores.js';
import { DEFAULT_KEEP_DIVERGED } from './configSection.js';

/** The epoch of a store outside a cluster (DESIGN.md "Epoch"); #15 replaces it with the leader key's revision. */
export const NO_CLUSTER_EPOCH = 1;
const kApplyEveryMs = 100;
const kApplyBytes = 4 * 2 ** 20;
/** Log bytes received and not yet durable past which the session stops reading frames (the socket then pushes back). */
const kMaxInflightBytes = 32 * 2 ** 20;
const kBackoffFirstMs = 100;
const kBackoffMaxMs = 5000;
/**
 * Longest wait between tries after a connection was lost or refused at the TCP level (not a
 * refusal by the primary): 40 tries a second cost nothing (a refused connect returns at once; a
 * dead host's connect takes its own time), and a primary restarted in place or just promoted
 * acknowledges nothing in sync mode until a replica is back, so every wait here is RTO (100 ms
 * was half of it past the owner's open in a restart in place).
 */
const kReconnectMaxMs = 25;
/**
 * Wait before trying again a base copy that failed once the primary answered (it refused the
 * copy, or the copy broke off): doubled at each failure in a row up to the second constant, and
 * back to the first once a copy succeeds. Each try costs the primary a connection, a base-copy
 * session and its log lines; at the reconnect pace above a replica that cannot get a copy made
 * 40 a second.
 */
const kBaseCopyRetryFirstMs = 25;
const kBaseCopyRetryMaxMs = 5000;
/** A disconnected replica logs a new reason at most this often (the tries above come fast). */
const kDisconnectedLogMs = 1000;
/** Receive deadline: no frame for this many times the primary's keepalive gap ends the connection. */
const kSilenceKeepalives = 3;
const kSilenceMinMs = 1000;
/** Receive deadline before the keepalive gap is known (two keepalives seen on the connection). */
const kSilenceDefaultMs = 5000;
/** How long a page request may wait for this replica's log to reach the LSN the primary names. */
const kPageWaitMs = 3000;
/** How long the primary has to answer this replica's request for a page. */
const kPrimaryPageTimeoutMs = 5000;
/**
 * Keepalives remembered for the time lag. They come once a second, and after live batches up to
 * one per 10 ms; past this many the older ones are thinned (every other one dropped, the oldest
 * kept), so a replica far behind still finds a stamp near its oldest unapplied record.
 */
const kKeepalives = 512;

export type ReplicaState = 'initialising' | 'opening' | 'connecting' | 'streaming' | 'disconnected' | 'refused' | 'stopped' | 'failed';

/** The codes with which a primary refuses a replica (as opposed to a connection that broke). */
const kRefusals = new Set(['RA_ERR_REPL_AUTH', 'RA_ERR_REPL_DIVERGED', 'RA_ERR_REPL_EPOCH']);

export interface ReplicaSessionOptions {
  storeId: string;
  dir: string;
  engine: PageEngine;
  host: string;
  port: number;
  secret: string;
  id: string;
  pool?: WorkerPool | undefined;
  log: Logger;
  /**
   * The primary refused this replica (once per refusal state): the failure to publish. `rebuild`
   * when the session answers the refusal itself (rejoinOnDiverged, autoReinit): it moves the store
   * aside and makes it again from a base copy, and `onStreaming` follows once that worked.
   */
  onRefused(code: string, reason: string, rebuild?: { why: 'diverged' | 'replaced' }): void;
  /** It streams from its primary (again): a refusal reported before is over. */
  onStreaming?(): void;
  /**
   * The replica store failed — cannot be opened, its log cannot be written, a damaged page stops
   * its apply — once per episode (the episode ends when it streams and applies again).
   */
  onFailed?(code: string, reason: string): void;
  /** The store's log was cut at a damaged record when opened (the primary streams the rest again). */
  onLogCut?(cut: { lsn: number; reason: string; movedTo: string }): void;
  /** Receive deadline before the primary's keepalive gap is known (default 5 s; tests shorten it). */
  silenceMs?: number;
  /** How long a page request may wait for the log to reach its LSN (default 3 s; tests shorten it). */
  pageWaitMs?: number;
  /** Re-initialise from a base copy when the primary says this replica is too far behind (default false). */
  autoReinit?: boolean | undefined;
  /**
   * A cluster member (#15): refused as diverged — its log holds records the primary's history
   * never had, i.e. it is an old primary whose suffix after the fork no member acknowledged under
   * the new epoch — its store is moved aside (`<dir>.diverged-<time>`, kept for audit) and made
   * again from a base copy, then it follows. Default false: a static replica waits for an operator.
   */
  rejoinOnDiverged?: boolean | undefined;
  /** Diverged stores kept aside after a rebuild, the newest (default DEFAULT_KEEP_DIVERGED); older ones are removed. */
  keepDiverged?: number | undefined;
  /** How the session waits between tries (default: a timer; tests count the waits on a fake clock). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** The wait before the next base copy after `failures` in a row (at least 1) failed once the primary answered. */
export function baseCopyRetryMs(failures: number): number {
  return Math.min(kBaseCopyRetryMaxMs, kBaseCopyRetryFirstMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
}

export interface ReplicaSessionStatus {
  role: 'replica';
  id: string;
  primary: string;
  state: ReplicaState;
  /** Why it is refused, disconnected or failed. */
  reason?: string;
  epoch: number;
  durableLsn: number;
  appliedLsn: number;
  /** The primary's flushed LSN, from its last keepalive (null before one). */
  primaryFlushedLsn: number | null;
  lagBytes: number | null;
  lagMs: number | null;
  /** Log bytes received since this agent started (tests: a restart must not receive the log again). */
  bytesReceived: number;
  connects: number;
  /**
   * Why the last connection that streamed ended, and when (ms since the epoch): kept while the
   * tries to connect again fail for other reasons (every 25 ms), which `reason` shows.
   */
  lastEnded?: { reason: string; at: number };
  /** The base copy under way or last made by this agent, if any. */
  baseCopy: { pagesCopied: number; pagesTotal: number; done: boolean } | null;
  /** Base copies made by this agent (initial and re-initialisations). */
  baseCopies: number;
}

export class ReplicaSession {
  private replica: ReplicaStore | null = null;
  private ch: ReplicationChannel | null = null;
  private state: ReplicaState = 'opening';
  private reason: string | undefined;
  private disconnectedLoggedAt = 0;
  private lastEnded: { reason: string; at: number } | undefined;
  /** The refusal reported last (code and reason without ephemeral ports). */
  private refusedKey = '';
  private running = false;
  private loop: Promise<void> | null = null;
  private applyTimer: NodeJS.Timeout | null = null;
  private applying: Promise<void> | null = null;
  private unappliedBytes = 0;
  private bytesReceived = 0;
  private connects = 0;
  private baseCopy: ReplicaSessionStatus['baseCopy'] = null;
  private baseCopies = 0;
  /** Base copies in a row that failed once the primary answered (baseCopyRetryMs); 0 after one succeeds. */
  private baseCopyFailures = 0;
  /** The loop's current round had such a failure: its next try waits for baseCopyRetryMs. */
  private baseCopyFailedNow = false;
  /** Why the store is to be moved aside and made again (autoReinit, rejoinOnDiverged), or null. */
  private reinit: 'replaced' | 'diverged' | null = null;
  /** Keepalives (primary flushed LSN, primary wall-clock ms), oldest first. */
  private readonly keepalives: Array<{ lsn: number; timeMs: number }> = [];
  private readonly stopping = new AbortController();
  /**
   * Page requests waiting for the log to reach their LSN: woken after each append, and when the
   * connection ends or the session stops. Each removes itself when woken or timed out, so an idle
   * stream (no append to sweep them) keeps none of a request that gave up.
   */
  private readonly appended = new Set<() => void>();
  /** This replica's requests to the primary, by page id, oldest first (answered in order). */
  private readonly asked = new Map<number, Array<(a: { image: Buffer; lsn: number; refused?: string }) => void>>();
  /** Page requests are answered one at a time, in the order asked (the primary matches answers in order). */
  private pages: Promise<void> = Promise.resolve();
  /** Appends received and not yet settled (durable or failed). */
  private readonly inflight = new Set<Promise<void>>();
  /** A failure episode of the store is open (reported once, through onFailed). */
  private failing = false;
  /** The apply failed: not tried again before this time (Date.now() ms), and the next wait. */
  private applyRetryAt = 0;
  private applyBackoffMs = 0;

  constructor(private readonly o: ReplicaSessionOptions) {}

  /** Opens the replica store (redo only), then streams in the background. */
  async start(): Promise<void> {
    // A store that is not there yet is made by a base copy in the connection loop (the primary
    // may not be reachable yet); one that is there is opened now. One that cannot be opened is
    // this store's failure, not the agent's: reported, and tried again by the loop with backoff.
    if (this.o.engine.files.exists(this.o.dir)) {
      try {
        await this.open();
      } catch (err) {
        this.fail(err);
      }
    } else this.setState('initialising');
    this.running = true;
    this.applyTimer = setInterval(() => void this.applySoon(), kApplyEveryMs);
    this.applyTimer.unref();
    this.loop = this.run();
  }

  private async open(): Promise<void> {
    this.replica = await this.o.engine.replica.openReplica(this.o.dir, {
      ...(this.o.pool ? { pool: this.o.pool } : {}),
      log: this.o.log,
      onLogCut: (cut) => this.o.onLogCut?.(cut),
    });
    const p = this.replica.position();
    this.o.log.info({ store: this.o.storeId, durableLsn: p.durableLsn, appliedLsn: p.appliedLsn, epoch: p.epoch }, 'replica store open');
  }

  /**
   * A base copy from the primary into the (absent) store directory, then the store opened. The
   * engine writes it aside and renames it into place whole: a crash here leaves no store, and
   * the next start copies again from scratch.
   */
  private async initialise(): Promise<void> {
    await this.baseCopyInto(this.o.dir);
    await this.open();
  }

  /** A base copy from the primary into `dir` (absent): the engine renames it into place whole. */
  private async baseCopyInto(dir: string): Promise<void> {
    this.setState('initialising');
    const ch = await connectChannel({ host: this.o.host, port: this.o.port, secret: this.o.secret, signal: this.stopping.signal });
    this.ch = ch;
    if (!this.running) return ch.close();
    this.connects++;
    this.baseCopy = { pagesCopied: 0, pagesTotal: 0, done: false };
    let logged = 0;
    try {
      const r = await this.o.engine.replica.initReplica(dir, ch, {
        id: this.o.id,
        epoch: NO_CLUSTER_EPOCH,
        log: this.o.log,
        onProgress: (p) => {
          this.baseCopy = { ...p, done: false };
          if (p.pagesCopied - logged >= Math.max(1024, p.pagesTotal / 10) || p.pagesCopied === p.pagesTotal) {
            logged = p.pagesCopied;
            this.o.log.info({ store: this.o.storeId, pagesCopied: p.pagesCopied, pagesTotal: p.pagesTotal }, 'replica base copy progress');
          }
        },
      });
      this.baseCopy = { pagesCopied: r.pages, pagesTotal: r.pages, done: true };
      this.baseCopies++;
      this.baseCopyFailures = 0;
      this.o.log.info({ store: this.o.storeId, redoLsn: r.redoLsn, consistentLsn: r.consistentLsn, pages: r.pages, epoch: r.epoch }, 'replica initialised from a base copy');
    } catch (err) {
      if (this.running) {
        this.baseCopyFailures++;
        this.baseCopyFailedNow = true;
        this.o.log.warn({ store: this.o.storeId, failures: this.baseCopyFailures, retryInMs: baseCopyRetryMs(this.baseCopyFailures), err: describeError(err) }, 'replica base copy failed; trying again later');
      }
      throw err;
    } finally {
      ch.close();
      this.ch = null;
    }
  }

  /**
   * Makes the store again from a base copy (autoReinit, rejoinOnDiverged): the copy is made beside
   * it (`<dir>.rebuild`), then the old store is moved aside (`<dir>.<why>-<time>`, never deleted)
   * and the copy renamed into its place. The store's path holds a whole store throughout but for
   * the moment between the two renames: a base copy into the emptied path left it without one
   * for the copy's whole length, which the health monitor rightly reported as `store-missing` and
   * escalated (14 of the seed-9 run's 50 primary-cut-etcd trials). A copy that fails leaves the
   * old store where it was, closed; the next round tries again. A crash between the renames
   * leaves no store at the path: the next start makes it by a base copy.
   */
  private async rebuild(why: 'replaced' | 'diverged'): Promise<void> {
    await this.applying;
    const r = this.replica;
    this.replica = null;
    await r?.close();
    const stage = `${this.o.dir}.rebuild`;
    // An earlier attempt's copy (whole or not): never a store anyone opened.
    await rm(stage, { recursive: true, force: true });
    this.o.log.warn(
      { store: this.o.storeId, stage },
      why === 'diverged'
        ? 'this store diverged from the primary (an old primary\'s suffix past the fork): it is made again from a base copy, and the old one kept aside for audit'
        : 'replica too far behind: its store is made again from a base copy, and the old one kept aside (autoReinit)',
    );
    await this.baseCopyInto(stage);
    const aside = asidePath(this.o.dir, why);
    await rename(this.o.dir, aside);
    await rename(stage, this.o.dir);
    await fsyncDir(path.dirname(path.resolve(this.o.dir)));
    this.o.log.warn({ store: this.o.storeId, movedTo: aside }, 'the old store is moved aside and the base copy in its place');
    await this.open();
    // The rebuild worked: diverged stores beyond the newest `keepDiverged` go (asideStores.ts).
    if (why === 'diverged') await pruneAside(this.o.dir, why, this.o.keepDiverged ?? DEFAULT_KEEP_DIVERGED, this.o.log, this.o.storeId);
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    if (this.applyTimer) clearInterval(this.applyTimer);
    this.ch?.close();
    this.wakePageWaits();
    this.failAsked('the replica is stopping');
    await this.loop;
    await this.pages;
    await this.applying;
    await this.replica?.close();
    this.setState('stopped');
  }

  status(): ReplicaSessionStatus {
    const pos = this.replica?.position();
    const latest = this.keepalives.at(-1);
    const applied = pos?.appliedLsn ?? 0;
    // The lag is known only while streaming: a replica cut off from its primary does not know
    // how far behind it is (the last keepalive's 0 would say "in sync" forever).
    const known = latest !== undefined && this.state === 'streaming';
    return {
      role: 'replica',
      id: this.o.id,
      primary: `${this.o.host}:${this.o.port}`,
      state: this.state,
      ...(this.reason ? { reason: this.reason } : {}),
      epoch: pos?.epoch ?? 0,
      durableLsn: pos?.durableLsn ?? 0,
      appliedLsn: applied,
      primaryFlushedLsn: latest?.lsn ?? null,
      lagBytes: known ? Math.max(0, latest.lsn - applied) : null,
      lagMs: known ? this.lagMs(applied) : null,
      bytesReceived: this.bytesReceived,
      connects: this.connects,
      ...(this.lastEnded ? { lastEnded: this.lastEnded } : {}),
      baseCopy: this.baseCopy,
      baseCopies: this.baseCopies,
    };
  }

  /**
   * Time lag: how long ago (on the primary's clock, as its keepalives tell it) the oldest record
   * not yet applied here was flushed there; 0 when everything the primary reported is applied.
   * Clock skew between the hosts adds to it.
   */
  private lagMs(applied: number): number {
    const first = this.keepalives.find((k) => k.lsn > applied);
    return first ? Math.max(0, Date.now() - first.timeMs) : 0;
  }

  /**
   * The store failed: reported once per episode; state `failed` unless it still streams (an apply
   * that fails while the log still grows is reported, the stream goes on).
   */
  private fail(err: unknown, stillStreaming = false): void {
    const code = isRaError(err) ? err.code : 'unknown';
    const reason = describeError(err);
    if (!stillStreaming) this.setState('failed', reason);
    if (this.failing) return;
    this.failing = true;
    this.o.onFailed?.(code, reason);
  }

  /** The store streams and applies again: a failure episode, if any, is over. */
  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.o.log.info({ store: this.o.storeId }, 'replica store working again');
  }

  /** Closes the store after a failure; the loop opens it again (a write error leaves its log broken until then). */
  private async closeFailed(): Promise<void> {
    await this.applying;
    const r = this.replica;
    this.replica = null;
    await r?.close().catch((err: unknown) => this.o.log.warn({ store: this.o.storeId, err: describeError(err) }, 'closing the failed replica store'));
  }

  private setState(state: ReplicaState, reason?: string): void {
    if (state === this.state && reason === this.reason) return;
    const sameState = state === this.state;
    this.state = state;
    this.reason = reason;
    const fields = { store: this.o.storeId, primary: `${this.o.host}:${this.o.port}`, ...(reason ? { reason } : {}) };
    if (state === 'refused' || state === 'failed') this.o.log.error(fields, `replica ${state}`);
    else if (state === 'disconnected') {
      // Tries come every kReconnectMaxMs and their reasons alternate (refused, closed, reset):
      // a new reason is logged at most once a second while the state stays the same.
      const now = Date.now();
      if (sameState && now - this.disconnectedLoggedAt < kDisconnectedLogMs) return;
      this.disconnectedLoggedAt = now;
      this.o.log.warn(fields, 'replica disconnected from its primary; reconnecting');
    } else this.o.log.info(fields, `replica ${state}`);
  }

  private async run(): Promise<void> {
    let backoff = kBackoffFirstMs;
    while (this.running) {
      let streamed = false;
      this.baseCopyFailedNow = false;
      if (this.state !== 'refused' && this.state !== 'disconnected' && this.state !== 'failed') this.setState('connecting');
      try {
        if (this.reinit) {
          // Cleared once it worked: a rebuild that fails is tried again, never the old store reopened.
          await this.rebuild(this.reinit);
          this.reinit = null;
        }
        if (!this.replica) {
          if (this.o.engine.files.exists(this.o.dir)) {
            try {
              await this.open();
            } catch (err) {
              this.fail(err);
              throw err;
            }
          } else await this.initialise();
        }
        if (!this.running) break;
        await this.session(() => {
          backoff = kBackoffFirstMs;
          streamed = true;
          this.o.onStreaming?.();
        });
      } catch (err) {
        if (!this.running) break;
        const code = isRaError(err) ? ((err.details?.peerCode as string | undefined) ?? err.code) : 'unknown';
        const reason = describeError(err);
        if (streamed) this.lastEnded = { reason, at: Date.now() };
        if (kRefusals.has(code) || /too far behind/i.test(reason)) {
          // Once per refusal, not per attempt: the primary's message names this side's ephemeral
          // port, which changes with every connection.
          const key = `${code}:${reason.replace(/ \((?:[\d.]+|\[[0-9a-f:.]+\]):\d+\)/gi, '')}`;
          const rebuild =
            this.o.autoReinit && this.replica && /too far behind/i.test(reason) ? 'replaced'
            : this.o.rejoinOnDiverged && this.replica && code === 'RA_ERR_REPL_DIVERGED' ? 'diverged'
            : null;
          if (this.state !== 'refused' || this.refusedKey !== key) {
            this.o.onRefused(code, reason, rebuild ? { why: rebuild } : undefined);
            this.setState('refused', reason);
          }
          this.refusedKey = key;
          backoff = kBackoffMaxMs;
          if (rebuild) {
            this.reinit = rebuild;
            backoff = kBackoffFirstMs;
          }
        } else if (isRaError(err) && err.code === 'RA_ERR_WAL_WRITE') {
          // The replica's log cannot be written (a full disk, an I/O error): its log is broken
          // until it is opened again, which the next round does, with backoff, until it can.
          this.fail(err);
          await this.closeFailed();
        } else if (this.state !== 'failed' || this.replica) {
          this.setState('disconnected', reason);
        }
      } finally {
        this.ch = null;
        // Requests of the connection that ended: nobody can be answered on it any more.
        this.wakePageWaits();
        this.failAsked('the connection to the primary ended');
      }
      let wait = this.state === 'disconnected' ? Math.min(backoff, kReconnectMaxMs) : backoff;
      // A base copy the primary answered and that failed is not a lost connection: it backs off.
      if (this.baseCopyFailedNow) wait = Math.max(wait, baseCopyRetryMs(this.baseCopyFailures));
      await (this.o.sleep ?? sleep)(wait, this.stopping.signal).catch(() => undefined);
      // A lost connection is tried again within kReconnectMaxMs: its primary is restarting or
      // just promoted, and a sync primary acknowledges nothing until a replica is back (a 5 s
      // backoff was most of a failover's time; 500 ms still most of a restart in place).
      // Refusals and a broken store keep the long one.
      backoff = Math.min(this.state === 'disconnected' ? kReconnectMaxMs : kBackoffMaxMs, backoff * 2);
    }
  }

  /** One connection: hello, then frames until it breaks. */
  private async session(onStreaming: () => void): Promise<void> {
    const replica = this.replica!;
    // The hello names the durable end: every append of the last connection settled first.
    await Promise.allSettled([...this.inflight]);
    const ch = await connectChannel({ host: this.o.host, port: this.o.port, secret: this.o.secret, signal: this.stopping.signal });
    this.ch = ch;
    if (!this.running) return ch.close();
    this.connects++;
    const pos = replica.position();
    const epoch = pos.epoch > 0 ? pos.epoch : NO_CLUSTER_EPOCH;
    ch.epoch = epoch;
    ch.send(helloFrame({ epoch, lsn: pos.durableLsn, rolling: pos.rolling, id: this.o.id }));
    // Appends are not awaited one by one: the frames that arrived together are appended at once
    // and made durable by one fdatasync (the replica log's group commit), and each durable end is
    // acknowledged as soon as it is. The first failure ends the session.
    const inflight = this.inflight;
    let inflightBytes = 0;
    let acked = pos.durableLsn;
    let appendError: Error | null = null;
    let failed!: (err: Error) => void;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    failure.catch(() => undefined);
    const onAppendError = (err: unknown): void => {
      if (appendError) return;
      appendError = err as Error;
      // A run the replica refuses (gap, overlap, bad record, older epoch): nothing of it was
      // written; tell the primary why and start again from the durable end. Records of an
      // older epoch come from a stale primary (another took over): a refusal, like the
      // primary's own epoch check, not a broken connection to retry quietly.
      if (isRaError(err) && err.code === 'RA_ERR_REPLICA_REFUSED') {
        const older = err.details?.reason === 'older-epoch';
        if (older) appendError = raError('RA_ERR_REPL_EPOCH', err.message, { cause: err, details: err.details });
        failed(appendError);
        ch.fail(older ? 'RA_ERR_REPL_EPOCH' : 'RA_ERR_REPL_PROTOCOL', err.message);
        return;
      }
      failed(appendError);
      ch.close();
    };
    // The receive deadline (see the file's comment): the longest gap between keepalives seen on
    // this connection tells the primary's interval (live batches bring them closer, never further).
    let lastKeepaliveAt = 0;
    let keepaliveGapMs = 0;
    for (;;) {
      const silenceMs = keepaliveGapMs > 0 ? Math.max(kSilenceMinMs, kSilenceKeepalives * keepaliveGapMs) : (this.o.silenceMs ?? kSilenceDefaultMs);
      let timer: NodeJS.Timeout | undefined;
      const silent = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(raError('RA_ERR_REPL_PROTOCOL', `no frame from the primary ${ch.peer} for ${silenceMs} ms: the connection is taken as dead`)), silenceMs);
      });
      silent.catch(() => undefined);
      let f;
      try {
        f = await Promise.race([ch.next(), failure, silent]);
      } catch (err) {
        // A refused append already told the primary why (ch.fail) and ended the channel: closing
        // it again here would cut that error frame off before it is sent.
        if (appendError === null) ch.close();
        throw appendError ?? err;
      } finally {
        clearTimeout(timer);
      }
      if (f.type === FrameType.wal) {
        const bytes = parseWal(f);
        inflightBytes += bytes.byteLength;
        const done: Promise<void> = replica.append(bytes, f.startLsn, f.endLsn, f.epoch).then(
          (p) => {
            inflight.delete(done);
            inflightBytes -= bytes.byteLength;
            this.wakePageWaits();
            this.bytesReceived += bytes.byteLength;
            this.unappliedBytes += bytes.byteLength;
            // Runs made durable by one fdatasync resolve together: one ack for all of them.
            if (p.durableLsn > acked) {
              acked = p.durableLsn;
              ch.send(ackFrame(ch.epoch, { durableLsn: p.durableLsn, appliedLsn: p.appliedLsn }));
            }
            if (this.state !== 'streaming') {
              this.setState('streaming');
              onStreaming();
            }
            if (this.applyRetryAt === 0) this.recovered();
            if (this.unappliedBytes >= kApplyBytes) void this.applySoon();
          },
          (err: unknown) => {
            inflight.delete(done);
            onAppendError(err);
          },
        );
        inflight.add(done);
        // Bounded: past kMaxInflightBytes the next frame waits for the disk.
        while (inflightBytes > kMaxInflightBytes && inflight.size > 0 && !appendError) await Promise.race([...inflight]);
      } else if (f.type === FrameType.keepalive) {
        const k = parseKeepalive(f);
        const now = Date.now();
        if (lastKeepaliveAt > 0) keepaliveGapMs = Math.max(keepaliveGapMs, now - lastKeepaliveAt);
        lastKeepaliveAt = now;
        this.keepalives.push({ lsn: k.flushedLsn, timeMs: k.timeMs });
        if (this.keepalives.length > kKeepalives) {
          const kept = this.keepalives.filter((_, i) => i % 2 === 0);
          this.keepalives.splice(0, this.keepalives.length, ...kept);
        }
        if (this.state !== 'streaming') {
          this.setState('streaming');
          onStreaming();
        }
        if (this.applyRetryAt === 0) this.recovered();
      } else if (f.type === FrameType.page) {
        const a = parsePage(f);
        const list = this.asked.get(a.pageId);
        const w = list?.shift();
        if (list?.length === 0) this.asked.delete(a.pageId);
        // An answer to a request that timed out meanwhile is dropped.
        w?.(a);
      } else if (f.type === FrameType.pageRequest) {
        const req = parsePageRequest(f);
        this.pages = this.pages.then(() => this.servePage(ch, req.pageId, req.lsn));
      }
    }
  }

  /**
   * Answers the primary's request for page `pageId` with every record below `lsn` applied
   * (repair of the primary's copy, DESIGN.md "Page repair"): waits a little for the log to get
   * there (the primary names its flushed LSN, which the stream brings a moment later), applies up
   * to it, and sends the page, verified; or says why it cannot (a refusal, the stream goes on).
   * The primary checks the copy again before it is used.
   */
  private async servePage(ch: ReplicationChannel, pageId: number, lsn: number): Promise<void> {
    const replica = this.replica!;
    try {
      const until = Date.now() + (this.o.pageWaitMs ?? kPageWaitMs);
      while (replica.position().durableLsn < lsn && Date.now() < until && !ch.failure && this.running) await this.waitAppend(until - Date.now());
      if (ch.failure || !this.running) return;
      const image = await replica.readPage(pageId, lsn);
      ch.send(pageFrame(ch.epoch, pageId, this.o.engine.pages.lsn(image), image));
    } catch (err) {
      this.o.log.warn({ store: this.o.storeId, pageId, lsn, err: describeError(err) }, 'cannot give the primary a page it asked for');
      ch.send(pageRefusedFrame(ch.epoch, pageId, describeError(err)));
    }
  }

  /** Where this replica's pages come from in a repair: `primary:<address>`. */
  get primarySource(): string {
    return `primary:${this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host}:${this.o.port}`;
  }

  /**
   * Repairs this replica's page `pageId` from the primary (DESIGN.md, "Page repair", the replica's
   * side): asks it over the stream (`page-request`), and installs the answer only once it verifies
   * and is made consistent with this replica's log (ReplicaStore.installPage: the image's LSN at
   * most the durable LSN — waiting up to 3 s for the stream to get there —, then the page's
   * records up to the applied LSN redone on it). Fails saying why: not streaming, refused by the
   * primary, no answer in time, or a copy that does not verify.
   */
  /** Reads page `pageId` as applied here; RA_ERR_PAGE_CORRUPT when it does not verify (the healing action's verify). */
  async checkPage(pageId: number): Promise<void> {
    if (!this.replica) throw raError('RA_ERR_REPLICA_PAGE', `the replica store is not open (${this.state})`, { details: { pageId } });
    await this.replica.readPage(pageId, 0);
  }

  async repairPage(pageId: number): Promise<{ source: string; lsn: number; recordsRedone: number }> {
    const replica = this.replica;
    const ch = this.ch;
    if (!replica || !ch || ch.failure || this.state !== 'streaming') throw raError('RA_ERR_REPLICA_PAGE', `the replica is not streaming from its primary (${this.state}${this.reason ? `: ${this.reason}` : ''}): page ${pageId} cannot be asked for`, { details: { pageId } });
    const a = await this.askPrimary(ch, pageId, replica.position().durableLsn);
    if (a.refused !== undefined) throw raError('RA_ERR_REPLICA_PAGE', `the primary gave no copy of page ${pageId}: ${a.refused}`, { details: { pageId } });
    if (this.o.engine.pages.lsn(a.image) !== a.lsn) throw raError('RA_ERR_REPLICA_PAGE', `the primary's answer for page ${pageId} says LSN ${a.lsn}, its page ${this.o.engine.pages.lsn(a.image)}`, { details: { pageId } });
    const until = Date.now() + (this.o.pageWaitMs ?? kPageWaitMs);
    for (;;) {
      try {
        const r = await replica.installPage(pageId, a.image);
        this.o.log.info({ store: this.o.storeId, pageId, lsn: r.lsn, recordsRedone: r.recordsRedone, source: this.primarySource }, 'replica page repaired from the primary');
        return { source: this.primarySource, ...r };
      } catch (err) {
        // The copy is ahead of this replica's log: the stream brings the records a moment later.
        if (!isRaError(err, 'RA_ERR_REPLICA_BEHIND') || Date.now() >= until || !this.running) throw err;
        await this.waitAppend(until - Date.now());
      }
    }
  }

  private askPrimary(ch: ReplicationChannel, pageId: number, lsn: number): Promise<{ image: Buffer; lsn: number; refused?: string }> {
    return new Promise((resolve) => {
      const list = this.asked.get(pageId) ?? [];
      this.asked.set(pageId, list);
      const timer = setTimeout(() => {
        // Left in place (answers come in order) but answered now: the late answer is dropped.
        const i = list.indexOf(done);
        if (i >= 0) list[i] = () => undefined;
        resolve({ image: Buffer.alloc(0), lsn: 0, refused: `no answer within ${kPrimaryPageTimeoutMs} ms` });
      }, kPrimaryPageTimeoutMs);
      const done = (a: { image: Buffer; lsn: number; refused?: string }) => {
        clearTimeout(timer);
        resolve(a);
      };
      list.push(done);
      if (!ch.send(pageRequestFrame(ch.epoch, pageId, lsn)) && ch.failure) done({ image: Buffer.alloc(0), lsn: 0, refused: 'the connection to the primary failed' });
    });
  }

  private failAsked(why: string): void {
    for (const list of this.asked.values()) for (const w of list.splice(0)) w({ image: Buffer.alloc(0), lsn: 0, refused: why });
    this.asked.clear();
  }

  /** Page requests waiting for the log to grow (tests: none is left behind by one that gave up). */
  get pendingPageWaits(): number {
    return this.appended.size;
  }

  /** Resolves after the next append, when the connection ends or the session stops, or after `ms`. */
  private waitAppend(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(t);
        this.appended.delete(wake);
        resolve();
      };
      const t = setTimeout(wake, Math.max(1, ms));
      this.appended.add(wake);
    });
  }

  private wakePageWaits(): void {
    for (const w of [...this.appended]) w();
  }

  /**
   * Applies what is durable and not applied yet, one apply at a time; acks the new applied LSN.
   * A failed apply is tried again with backoff (100 ms doubling to 5 s), reported once per
   * episode; one that stops at a damaged page (RA_ERR_PAGE_CORRUPT: a page the log has no full
   * image of fails its check) first has the page repaired from the primary.
   */
  private applySoon(): Promise<void> {
    if (this.applying || !this.replica) return this.applying ?? Promise.resolve();
    if (Date.now() < this.applyRetryAt) return Promise.resolve();
    const replica = this.replica;
    const pos = replica.position();
    if (pos.appliedLsn >= pos.durableLsn) return Promise.resolve();
    this.unappliedBytes = 0;
    this.applying = replica
      .apply()
      .then((r) => {
        // Drop the keepalives everything of which is applied, but the newest.
        while (this.keepalives.length > 1 && this.keepalives[0]!.lsn <= r.position.appliedLsn) this.keepalives.shift();
        this.ch?.send(ackFrame(this.ch.epoch, { durableLsn: r.position.durableLsn, appliedLsn: r.position.appliedLsn }));
        if (this.applyRetryAt !== 0) {
          this.applyRetryAt = 0;
          this.applyBackoffMs = 0;
          this.o.log.info({ store: this.o.storeId, appliedLsn: r.position.appliedLsn }, 'replica apply working again');
          this.recovered();
        }
      })
      .catch((err: unknown) => this.applyFailed(err))
      .finally(() => {
        this.applying = null;
      });
    return this.applying;
  }

  /** A failed apply: the page repaired if that is what stops it; the next try after the backoff. */
  private async applyFailed(err: unknown): Promise<void> {
    if (!this.running) return;
    this.applyBackoffMs = this.applyBackoffMs === 0 ? kBackoffFirstMs : Math.min(kBackoffMaxMs, this.applyBackoffMs * 2);
    this.applyRetryAt = Date.now() + this.applyBackoffMs;
    if (!this.failing) this.o.log.error({ store: this.o.storeId, err: describeError(err) }, 'replica apply failed');
    const pageIds = isRaError(err, 'RA_ERR_PAGE_CORRUPT') ? corruptPages(err.details) : [];
    if (pageIds.length === 0) {
      this.fail(err, true);
      return;
    }
    // A damaged page of this replica: the primary's copy, made consistent with this log, takes
    // its place (repairPage); the apply then goes on from where it stopped.
    for (const pageId of pageIds) {
      try {
        await this.repairPage(pageId);
        this.applyRetryAt = 0;
      } catch (repairErr) {
        if (!this.failing) this.o.log.warn({ store: this.o.storeId, pageId, err: describeError(repairErr) }, 'cannot repair the replica page that stops the apply; trying again later');
        this.fail(err, true);
        return;
      }
    }
  }
}

/** The page ids an RA_ERR_PAGE_CORRUPT names (`details.pageId`, or `details.pages[].pageId`). */
function corruptPages(details: Record<string, unknown> | undefined): number[] {
  if (!details) return [];
  if (typeof details.pageId === 'number') return [details.pageId];
  const pages = details.pages;
  if (!Array.isArray(pages)) return [];
  return pages.map((p: unknown) => (p as { pageId?: unknown }).pageId).filter((id): id is number => typeof id === 'number');
}

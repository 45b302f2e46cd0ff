/**
 * The owner's replication sender (plugins/replication/DESIGN.md, "The owner's side"): a TCP
 * listener in the process that writes the log, started by `PageStore.open` when the store's
 * replication.json names it a primary. Per replica: the handshake (core/replication/protocol.ts),
 * its `hello` checked against this log (same epoch, or an older one whose log ends at or below
 * the fork of the next (epochHistory.ts); R equal at its LSN; else refused by name),
 * catch-up from the segment files, then the live tail: each batch the WAL writer makes durable
 * goes out right after its fdatasync (`WalWriter.onFlushed`). Replicas ack what they have
 * durable and applied; in sync mode a commit is acknowledged once the local flush is done and
 * the k-th highest durable ack has reached its end (`waitDurable`).
 *
 * A replica that falls more than `kMaxQueuedBytes` behind on its socket leaves the live tail and
 * catches up from the files again, so a slow replica never holds the owner's memory.
 */
import net from 'node:net';
import type { Logger } from 'pino';
import { describeError, isRaError, raError } from '../../core/errors.js';
import {
  FrameType,
  keepaliveFrame,
  openChannel,
  parseAck,
  pageRequestFrame,
  parseHello,
  pageFrame,
  pageRefusedFrame,
  parsePage,
  parsePageRequest,
  walFrame,
  type Frame,
  type Hello,
  type ReplicationChannel,
} from '../../core/replication/protocol.js';
import { pageLsn } from './format.js';
import { parseBaseRequest } from '../../core/replication/baseFrames.js';
import { sendBaseCopy, type BaseSource } from './baseCopy.js';
import type { PrimaryReplicationConfig } from './replicationConfig.js';
import { UNSTAMPED_EPOCH, epochAt, epochHistory, forkAfter, type EpochStart } from './epochHistory.js';
import { foldRecords, rollingAt } from './walRolling.js';
import { SEGMENT_HEADER_SIZE, segmentStartOf } from './walSegments.js';
import { checkSegmentTail, kCatchUpChunk, readRecords } from './walCatchUp.js';
import type { Pending, WalWriter } from './walWriter.js';

/** Bytes queued on a live replica's socket past which it drops back to catch-up. */
const kMaxQueuedBytes = 64 * 1024 * 1024;
/** Time a replica has to send its hello after the handshake. */
const kHelloTimeoutMs = 5000;
/** Time a replica has to answer a page request (it may first wait for and apply its log). */
const kPageTimeoutMs = 5000;
/** Connections still in their handshake at once; more are closed at once (a stranger's idle sockets). */
const kMaxPendingHandshakes = 16;
/** Connections of any kind the listener holds (replicas are a handful). */
const kMaxConnections = 64;
/**
 * How long the log from a base copy's consistency LSN is kept for its replica to come back with a
 * hello from there (it opens the copy first: redo from the copy's redo point); its hello ends it.
 */
const kBaseRetainMs = 120_000;
/** Time an unauthenticated peer has to finish the handshake. */
const kHandshakeTimeoutMs = 2000;
/**
 * A keepalive (flushed LSN, wall-clock ms) follows a live batch when the last one is older than
 * this: the replica's lag in time is measured against these stamps, so with only the periodic
 * keepalive (`keepaliveMs`, 1 s) it could be no finer than a second.
 */
const kLagStampMs = 10;
/**
 * Least time a replica that owes an ack (it was sent log it has not acknowledged durable) may stay
 * silent before its session is taken as dead and closed (the bound is 3 × keepaliveMs, at least
 * this). A path that dies without a FIN or RST (a partition, a dead host) otherwise leaves a
 * session that looks streaming forever, its frozen position in the status and its lag. A replica
 * with nothing to acknowledge (an idle log) is silent by design and is not closed.
 */
const kMinAckSilenceMs = 5000;
/** Idle time before the kernel's TCP keepalive probes start: a second net under the ack deadline. */
const kTcpKeepaliveMs = 10_000;

/** A page a replica gave for a repair (`requestPage`). */
export interface ReplicaPage {
  image: Buffer;
  /** Its page LSN. */
  lsn: number;
  /** The replica's id (its hello). */
  replica: string;
}

/** `base-copy`: a new replica being sent a base copy (baseCopy.ts); it reconnects with a hello after it. */
export type ReplicaState = 'handshake' | 'base-copy' | 'catching-up' | 'streaming' | 'gone';

/** One replica as the primary sees it (the control socket's `status.replication.replicas`). */
export interface ReplicaStatus {
  id: string;
  address: string;
  state: ReplicaState;
  /** Every record below it is durable on the replica. */
  durableLsn: number;
  /** Every record below it is applied to the replica's pages. */
  appliedLsn: number;
  /** Bytes of log flushed here and not yet applied there (the lag the agent and its metrics report). */
  lagBytes: number;
  /** Wall-clock ms of its last ack, or null before the first. */
  lastAckAt: number | null;
  /** Why it went, when it is gone. */
  error?: string;
}

export interface ReplicationStatus {
  role: 'primary';
  epoch: number;
  listen: string;
  mode: 'async' | 'sync';
  flushedLsn: number;
  /** Sync mode: `sync` (enough replicas), `waiting` (commits wait, not timed out yet), `blocked` (timed out, commits wait), `degraded` (timed out, acknowledged after the local flush); `async` otherwise. */
  syncState: 'async' | 'sync' | 'waiting' | 'blocked' | 'degraded';
  syncReplicas?: number;
  /** Sync: the LSN below which enough replicas have everything durable. */
  syncDurableLsn?: number;
  /** Connections closed unheard because too many handshakes were pending (a flood, or a scan). */
  refusedConnections: number;
  replicas: ReplicaStatus[];
}

interface Session {
  id: string;
  address: string;
  ch: ReplicationChannel | null;
  state: ReplicaState;
  /** The LSN the next frame starts at. */
  sentLsn: number;
  durableLsn: number;
  appliedLsn: number;
  lastAckAt: number | null;
  /**
   * Wall-clock ms of its last sign of life: a frame from it (its hello at first), or bytes of a
   * backlog of ours its connection took (a slow link drains; a dead path does not, once the
   * kernel's buffer is full). Keepalives alone, taken into the kernel's buffer, are no sign.
   */
  lastHeardAt: number;
  /** Bytes of ours handed to the kernel, and whether some waited in the socket, at the last look (expireSilent). */
  wroteOut: number;
  backlogged: boolean;
  sock: net.Socket;
  /** Since when (a tick's view) it owes an ack: it was sent log beyond what it acknowledged durable; null when it owes none. */
  owedSince: number | null;
  error?: string;
  /** Page requests sent and not answered yet, by page id, oldest first (answers come in order). */
  pageWaiters: Map<number, Array<(a: { image: Buffer; lsn: number; refused?: string }) => void>>;
  /** The replica's own page requests, answered one at a time in the order asked. */
  answering: Promise<void>;
}

interface SyncWaiter {
  end: number;
  since: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class ReplicationSender {
  private readonly sessions = new Set<Session>();
  /** Sessions that left, newest last, for status (a few). */
  private readonly gone: Session[] = [];
  private readonly live = new Set<Session>();
  private waiters: SyncWaiter[] = [];
  private degraded = false;
  private timedOut = false;
  private closed = false;
  /** Connections closed unheard because too many handshakes were pending. */
  private refusedConnections = 0;
  private readonly timer: NodeJS.Timeout;
  /** When the last keepalive went to the live replicas. */
  private lastKeepaliveAt = 0;
  /**
   * A page a replica asks for to repair its copy (the owner's cache or store, verified, with the
   * log durable up to its LSN so the stream brings the replica there); set by the owner. Without
   * it, requests are refused.
   */
  servePage: ((pageId: number) => Promise<Buffer>) | null = null;
  /** Base copies under way: the LSN each needs the log kept from. */
  private readonly baseRetain = new Map<object, number>();
  /** Copies sent, by replica id: their retention key, until the replica's hello (or kBaseRetainMs). */
  private readonly baseSent = new Map<string, { key: object; timer: NodeJS.Timeout }>();
  /** What base copies are taken from (the owner's store); without it a base request is refused. */
  base: BaseSource | null = null;

  private constructor(
    private readonly cfg: PrimaryReplicationConfig,
    private readonly wal: WalWriter,
    private readonly walDir: string,
    private readonly storeId: Uint8Array,
    private readonly server: net.Server,
    private readonly log?: Logger,
  ) {
    wal.onFlushed = (batch) => {
      // Runs inside the WAL writer's flush loop: a throw there would break the log.
      try {
        this.onFlushed(batch);
      } catch (err) {
        log?.error({ err: describeError(err) }, 'replication live tail failed; replicas will catch up from the files');
        for (const s of this.live) s.ch?.fail('RA_ERR_REPL_PROTOCOL', `the primary's live tail failed: ${describeError(err)}`);
        this.live.clear();
      }
    };
    const tick = Math.max(10, Math.min(cfg.keepaliveMs, cfg.mode === 'sync' ? Math.ceil(cfg.syncTimeoutMs / 4) : cfg.keepaliveMs));
    this.timer = setInterval(() => this.tick(), tick);
    this.timer.unref();
  }

  /** Binds `cfg.host:cfg.port` and serves replicas; fails with RA_ERR_REPL_CONFIG when it cannot bind. */
  static async start(cfg: PrimaryReplicationConfig, wal: WalWriter, walDir: string, storeId: Uint8Array, log?: Logger): Promise<ReplicationSender> {
    // Everything that awaits comes before the listen: from the listen on, a replica may connect,
    // and one that connected before the 'connection' handler was there was never greeted (it
    // waited out its 5 s handshake limit: a restart in place of a sync primary took 5.8 s).
    const forkLsn = currentFork(await epochHistory(walDir), Math.max(wal.epoch, cfg.epoch));
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(cfg.port, cfg.host, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((err: Error) => {
      throw raError('RA_ERR_REPL_CONFIG', `cannot listen for replicas on ${cfg.host}:${cfg.port}: ${describeError(err)}`, { cause: err });
    });
    // No await from here to the handler (none may come between the listen and it).
    if (wal.epoch < cfg.epoch) wal.epoch = cfg.epoch;
    const sender = new ReplicationSender(cfg, wal, walDir, storeId, server, log);
    sender.forkLsn = forkLsn;
    // A bound on every connection, authenticated or not (replicas are a handful).
    server.maxConnections = kMaxConnections;
    server.on('connection', (sock) => void sender.serve(sock));
    server.on('error', (err) => log?.warn({ err: describeError(err) }, 'replication listener error'));
    return sender;
  }

  /** Where replicas connect (the bound port, when the config said 0). */
  get address(): { host: string; port: number } {
    const a = this.server.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  /** True when commits must wait for replicas (`waitDurable`). */
  get sync(): boolean {
    return this.cfg.mode === 'sync';
  }

  /**
   * Resolves once `syncReplicas` replicas have every record below `end` durable, or at once when
   * the sender is degraded (sync timed out with `onSyncTimeout: degrade`). Called after the
   * local flush of a commit.
   */
  waitDurable(end: number): Promise<void> {
    if (!this.sync || this.degraded || this.quorumLsn() >= end) return Promise.resolve();
    if (this.closed) return Promise.reject(raError('RA_ERR_STORE_CLOSED', 'the store closed before enough replicas had the commit durable'));
    return new Promise((resolve, reject) => this.waiters.push({ end, since: Date.now(), resolve, reject }));
  }

  /** Where this primary's epoch forked the log, when it did (epochHistory.ts), else null. */
  private forkLsn: number | null = null;

  /**
   * The lowest LSN a connected replica still needs (what it has durable: where it resumes), for
   * checkpoints to keep its segments; replicas more than `maxRetainBytes` behind are not waited
   * for (they will be told they are too far behind). After a fork, the last `maxRetainBytes` of
   * the old epoch's log are kept as well, connected or not: the old primary's replicas come to
   * follow this one after the failover, from where they were (PostgreSQL's wal_keep_size, for the
   * previous timeline). Undefined when no replica needs anything.
   */
  retainFrom(): number | undefined {
    const flushed = this.wal.flushedLsn;
    let low: number | undefined = this.forkLsn === null ? undefined : Math.max(0, this.forkLsn - this.cfg.maxRetainBytes);
    for (const lsn of this.baseRetain.values()) low = Math.min(low ?? Infinity, lsn);
    for (const s of this.sessions) {
      if (s.state !== 'streaming' && s.state !== 'catching-up') continue;
      if (flushed - s.durableLsn > this.cfg.maxRetainBytes) continue;
      low = Math.min(low ?? Infinity, s.durableLsn);
    }
    return low;
  }

  status(): ReplicationStatus {
    const flushed = this.wal.flushedLsn;
    const a = this.address;
    const replicas = [...this.sessions, ...this.gone].map((s) => ({
      id: s.id,
      address: s.address,
      state: s.state,
      durableLsn: s.durableLsn,
      appliedLsn: s.appliedLsn,
      lagBytes: Math.max(0, flushed - s.appliedLsn),
      lastAckAt: s.lastAckAt,
      ...(s.error ? { error: s.error } : {}),
    }));
    return {
      role: 'primary',
      epoch: this.wal.epoch,
      listen: a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`,
      mode: this.cfg.mode,
      flushedLsn: flushed,
      syncState: this.syncState(),
      ...(this.sync ? { syncReplicas: this.cfg.syncReplicas, syncDurableLsn: this.quorumLsn() } : {}),
      refusedConnections: this.refusedConnections,
      replicas,
    };
  }

  /** Stops listening, closes every replica, and fails the commits still waiting for replicas. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.wal.onFlushed = null;
    for (const s of this.sessions) s.ch?.close();
    const err = raError('RA_ERR_STORE_CLOSED', 'the store closed before enough replicas had the commit durable');
    for (const w of this.waiters.splice(0)) w.reject(err);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  // ---- one replica

  private async serve(sock: net.Socket): Promise<void> {
    const address = sock.remoteAddress ? `${sock.remoteAddress}:${sock.remotePort}` : 'unknown';
    if (this.closed) {
      sock.destroy();
      return;
    }
    // Connections not yet authenticated are few and short-lived: the listener runs inside the
    // application, and a stranger's idle sockets must not use up the descriptors its log needs.
    let pending = 0;
    for (const x of this.sessions) if (x.state === 'handshake') pending++;
    if (pending >= kMaxPendingHandshakes) {
      sock.destroy();
      this.refusedConnections++;
      return;
    }
    const s: Session = { id: address, address, ch: null, state: 'handshake', sentLsn: 0, durableLsn: 0, appliedLsn: 0, lastAckAt: null, lastHeardAt: Date.now(), wroteOut: 0, backlogged: false, sock, owedSince: null, pageWaiters: new Map(), answering: Promise.resolve() };
    this.sessions.add(s);
    // A second net under the ack deadline (expireSilent): the kernel probes an idle connection.
    sock.setKeepAlive(true, kTcpKeepaliveMs);
    try {
      s.ch = await openChannel(sock, { role: 'primary', secret: this.cfg.secret, epoch: this.cfg.epoch, timeoutMs: kHandshakeTimeoutMs });
      const first = await this.readFirst(s.ch);
      if (first.type === FrameType.baseRequest) {
        await this.serveBase(s, parseBaseRequest(first).id);
        return;
      }
      if (first.type !== FrameType.hello) throw raError('RA_ERR_REPL_PROTOCOL', `expected a hello or a base request from ${s.ch.peer} first`);
      const hello = parseHello(first);
      s.id = hello.id || address;
      s.durableLsn = hello.lsn;
      s.appliedLsn = 0;
      await this.checkHello(s.ch, hello);
      s.lastHeardAt = Date.now();
      this.replaceOlder(s);
      // Back after a base copy: its own position keeps its log from now on.
      this.releaseBase(s.id);
      s.sentLsn = hello.lsn;
      this.log?.info({ replica: s.id, address, lsn: hello.lsn }, 'replica connected');
      void this.catchUp(s);
      await this.readAcks(s);
    } catch (err) {
      // Kept when set already: why the session was closed from here (replaced, silent, damaged log).
      s.error ??= describeError(err);
      if (s.ch) s.ch.fail(isRaError(err) ? err.code : 'RA_ERR_REPL_PROTOCOL', (err as Error).message, isRaError(err) ? err.details : undefined);
      else sock.destroy();
      this.log?.warn({ replica: s.id, address, err: s.error }, 'replica refused or gone');
    } finally {
      this.leave(s);
    }
  }

  /** A base copy for a new or far-behind replica (baseCopy.ts), then the connection closes: the replica reconnects with a hello. */
  private async serveBase(s: Session, id: string): Promise<void> {
    s.id = id || s.address;
    const ch = s.ch!;
    if (!this.base) throw raError('RA_ERR_REPL_PROTOCOL', 'this primary does not serve base copies');
    // Not a replica yet for retention and sync quorums: the copy keeps its own log (baseRetain).
    s.state = 'base-copy';
    const key = {};
    this.releaseBase(s.id);
    this.log?.info({ replica: s.id, address: s.address }, 'base copy requested');
    await sendBaseCopy(ch, this.base, {
      epoch: this.cfg.epoch,
      replica: s.id,
      log: this.log,
      retain: (lsn) => (lsn === null ? this.baseRetain.delete(key) : this.baseRetain.set(key, lsn)),
    });
    const timer = setTimeout(() => this.releaseBase(s.id), kBaseRetainMs);
    timer.unref();
    this.baseSent.set(s.id, { key, timer });
    // The replica closes once it has everything (it acknowledges nothing); wait for that.
    await ch.closed;
  }

  private releaseBase(id: string): void {
    const b = this.baseSent.get(id);
    if (!b) return;
    clearTimeout(b.timer);
    this.baseRetain.delete(b.key);
    this.baseSent.delete(id);
  }

  private async readFirst(ch: ReplicationChannel): Promise<Frame> {
    let timer: NodeJS.Timeout | undefined;
    const f = await Promise.race([
      ch.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(raError('RA_ERR_REPL_PROTOCOL', `no hello from ${ch.peer} within ${kHelloTimeoutMs} ms`)), kHelloTimeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
    return f;
  }

  /**
   * Refuses a replica whose log is not a prefix of ours. A replica of an older epoch e is on our
   * history when its LSN is at most the fork LSN of the first epoch after e (epochHistory.ts) and
   * R equal there; it then streams the old epoch's records and ours. Past that fork it has records
   * we never had: diverged, with the fork in `details` (a rejoin keys on it). A replica of a newer
   * epoch than ours means this primary is stale.
   */
  private async checkHello(ch: ReplicationChannel, h: Hello): Promise<void> {
    const ours = this.wal.epoch;
    let fork: { epoch: number; startLsn: number } | null = null;
    if (h.epoch > ours) {
      throw raError('RA_ERR_REPL_EPOCH', `replica ${h.id} (${ch.peer}) is at epoch ${h.epoch}, newer than this primary's ${ours}: this primary is stale`);
    }
    if (h.epoch < ours) {
      // Epoch 0 is no epoch: such a replica never took one from a primary, and is on no history.
      fork = h.epoch >= UNSTAMPED_EPOCH ? forkAfter(await epochHistory(this.walDir), h.epoch) : null;
      if (!fork) {
        // The log was never forked since that epoch (it adopted a configured one): no history says
        // where epoch h.epoch ended.
        throw raError('RA_ERR_REPL_EPOCH', `replica ${h.id} (${ch.peer}) is at epoch ${h.epoch}, older than this primary's ${ours}, and this primary's log has no fork after it`);
      }
      if (h.lsn > fork.startLsn) {
        throw raError('RA_ERR_REPL_DIVERGED', `replica ${h.id} diverged at ${h.lsn}: its epoch ${h.epoch} log goes past LSN ${fork.startLsn}, where this primary's epoch ${fork.epoch} began`, {
          details: { lsn: h.lsn, epoch: h.epoch, forkLsn: fork.startLsn, forkEpoch: fork.epoch },
        });
      }
    }
    try {
      await this.checkPrefix(h);
    } catch (err) {
      if (fork && isRaError(err, 'RA_ERR_REPL_DIVERGED')) {
        // Below the fork but not our records there: name the fork as well.
        throw raError('RA_ERR_REPL_DIVERGED', `${err.message} (its epoch ${h.epoch} log must end at or below LSN ${fork.startLsn}, where this primary's epoch ${fork.epoch} began, on this primary's records)`, {
          cause: err.cause,
          details: { lsn: h.lsn, epoch: h.epoch, forkLsn: fork.startLsn, forkEpoch: fork.epoch },
        });
      }
      throw err;
    }
  }

  /** Refuses a replica whose log is not a prefix of ours: its LSN past our flushed end, not a record boundary of ours, or R unequal. */
  private async checkPrefix(h: Hello): Promise<void> {
    const flushed = this.wal.flushedLsn;
    if (h.lsn > flushed) {
      throw raError('RA_ERR_REPL_DIVERGED', `replica ${h.id} diverged at ${h.lsn}: its log goes past this primary's flushed end ${flushed}`, { details: { lsn: h.lsn } });
    }
    let ours: bigint;
    try {
      ours = (await rollingAt(this.walDir, this.storeId, this.wal.segmentSize, h.lsn)).rolling;
    } catch (err) {
      if (isRaError(err, 'RA_ERR_WAL_CORRUPT') && /missing/.test(err.message)) {
        throw raError('RA_ERR_REPL_PROTOCOL', `replica ${h.id} is too far behind: this primary no longer has the log at ${h.lsn}; rebuild it from a snapshot and the archive`, { cause: err });
      }
      throw raError('RA_ERR_REPL_DIVERGED', `replica ${h.id} diverged at ${h.lsn}: no record of this primary's log ends there (${describeError(err)})`, { cause: err, details: { lsn: h.lsn } });
    }
    if (ours !== h.rolling) {
      throw raError('RA_ERR_REPL_DIVERGED', `replica ${h.id} diverged at ${h.lsn}: its rolling checksum is ${h.rolling.toString(16)}, this primary's is ${ours.toString(16)}`, { details: { lsn: h.lsn } });
    }
  }

  /** Feeds the replica from the segment files up to the flushed end, then joins it to the live tail. */
  private async catchUp(s: Session): Promise<void> {
    s.state = 'catching-up';
    const ch = s.ch!;
    const seg = this.wal.segmentSize;
    // Each frame carries the epoch that wrote its records: a replica behind a fork takes the old
    // epoch's records, then ours. Forks happen only at open, so the history read now stays true.
    let history: EpochStart[] | undefined;
    // R at sentLsn (walRolling.ts), folded over the runs sent, for checkSegmentTail's check; null
    // until the first segment boundary (whose check reads its segment to learn it).
    let rolling: bigint | null = null;
    try {
      for (;;) {
        if (ch.failure) return;
        const target = this.wal.flushedLsn;
        if (s.sentLsn >= target) {
          // Synchronous from the check on: the next onFlushed sends what comes after `target`.
          s.state = 'streaming';
          this.live.add(s);
          return;
        }
        const start = segmentStartOf(s.sentLsn, seg);
        if (s.sentLsn - start < SEGMENT_HEADER_SIZE) s.sentLsn = start + SEGMENT_HEADER_SIZE;
        const bytes = await readRecords(this.walDir, start, s.sentLsn, Math.min(target, start + seg));
        if (bytes.byteLength === 0) {
          // No valid record at sentLsn: either the rest of this segment is its unused tail, or a
          // record here is damaged. Never skip past the latter (the replica would miss commits).
          if (target <= start + seg) throw raError('RA_ERR_WAL_CORRUPT', `no valid record at LSN ${s.sentLsn} below the flushed end ${target}: the log is damaged there`, { details: { lsn: s.sentLsn } });
          rolling = target > start + seg + SEGMENT_HEADER_SIZE ? await checkSegmentTail(this.walDir, this.storeId, seg, start, s.sentLsn, rolling) : null;
          s.sentLsn = start + seg + SEGMENT_HEADER_SIZE;
          continue;
        }
        history ??= await epochHistory(this.walDir);
        ch.send(walFrame(epochAt(history, start) ?? this.wal.epoch, s.sentLsn, bytes));
        s.sentLsn += bytes.byteLength;
        // Valid records (readRecords checked each): folded as sent, not read again at the boundary.
        if (rolling !== null) rolling = foldRecords(rolling, bytes, 0, bytes.byteLength);
        await ch.drained();
      }
    } catch (err) {
      if (isRaError(err, 'RA_ERR_WAL_CORRUPT')) {
        s.error = describeError(err);
        this.log?.error({ replica: s.id, lsn: s.sentLsn, err: s.error }, 'catch-up stopped at a damaged record of this primary\'s log');
      }
      ch.fail(isRaError(err) ? err.code : 'RA_ERR_REPL_PROTOCOL', `catch-up failed: ${describeError(err)}`);
    }
  }

  private async readAcks(s: Session): Promise<void> {
    const ch = s.ch!;
    for (;;) {
      const f = await ch.next();
      s.lastHeardAt = Date.now();
      if (f.type === FrameType.page) {
        const a = parsePage(f);
        const w = s.pageWaiters.get(a.pageId)?.shift();
        if (!w) throw raError('RA_ERR_REPL_PROTOCOL', `replica ${s.id} sent page ${a.pageId}, which was not asked for`);
        w(a);
        continue;
      }
      if (f.type === FrameType.pageRequest) {
        const req = parsePageRequest(f);
        s.answering = s.answering.then(() => this.answerPage(s, req.pageId));
        continue;
      }
      if (f.type !== FrameType.ack) throw raError('RA_ERR_REPL_PROTOCOL', `unexpected frame type ${f.type} from replica ${s.id}`);
      const a = parseAck(f);
      if (a.durableLsn > s.sentLsn) throw raError('RA_ERR_REPL_PROTOCOL', `replica ${s.id} acknowledges LSN ${a.durableLsn}, past what it was sent (${s.sentLsn})`);
      s.durableLsn = Math.max(s.durableLsn, a.durableLsn);
      s.appliedLsn = Math.max(s.appliedLsn, a.appliedLsn);
      s.lastAckAt = Date.now();
      if (s.durableLsn >= s.sentLsn) s.owedSince = null;
      this.settle();
    }
  }

  /** Ends a session (its connection closed or was closed from here); once only. */
  private leave(s: Session): void {
    if (s.state === 'gone') return;
    for (const ws of s.pageWaiters.values()) for (const w of ws.splice(0)) w({ image: Buffer.alloc(0), lsn: 0, refused: `the replica went (${s.error ?? 'connection closed'})` });
    s.state = 'gone';
    this.live.delete(s);
    this.sessions.delete(s);
    this.gone.push(s);
    if (this.gone.length > 16) this.gone.shift();
  }

  // ---- page repair from a replica

  /** Answers a replica's request for a page (its copy is damaged): `page`, or `page` refused saying why. */
  private async answerPage(s: Session, pageId: number): Promise<void> {
    const ch = s.ch;
    if (!ch || ch.failure) return;
    try {
      if (!this.servePage) throw raError('RA_ERR_REPLICA_PAGE', 'this primary serves no pages to its replicas');
      const image = await this.servePage(pageId);
      ch.send(pageFrame(this.cfg.epoch, pageId, pageLsn(image), image));
    } catch (err) {
      this.log?.warn({ replica: s.id, pageId, err: describeError(err) }, 'cannot give a replica the page it asked for');
      ch.send(pageRefusedFrame(this.cfg.epoch, pageId, describeError(err)));
    }
  }

  /**
   * Page `pageId` from the streaming replicas, lowest lag first (bytes flushed here and not
   * applied there): each is asked for the page with every record below `lsn` applied (SQL
   * Server's rule: the replica first replays its log up to the LSN the primary names) and its
   * answer checked by `verify` (null: good; else why not). The first good one is returned; when
   * none is, RA_ERR_REPLICA_PAGE says what each answered.
   */
  async requestPage(pageId: number, lsn: number, verify: (image: Buffer, lsn: number) => Promise<string | null>, timeoutMs = kPageTimeoutMs): Promise<ReplicaPage> {
    const flushed = this.wal.flushedLsn;
    const candidates = [...this.live].filter((s) => s.state === 'streaming' && s.ch && !s.ch.failure).sort((a, b) => (flushed - a.appliedLsn) - (flushed - b.appliedLsn));
    if (candidates.length === 0) throw raError('RA_ERR_REPLICA_PAGE', `no replica is streaming from this primary to ask for page ${pageId}`, { details: { pageId, replicas: [] } });
    const answers: Array<{ replica: string; error: string }> = [];
    for (const s of candidates) {
      const a = await this.askReplica(s, pageId, lsn, timeoutMs);
      const why = a.refused ?? (await verify(a.image, a.lsn));
      if (why === null) return { image: Buffer.from(a.image), lsn: a.lsn, replica: s.id };
      answers.push({ replica: s.id, error: why });
      this.log?.warn({ replica: s.id, pageId, reason: why }, 'a replica\'s copy of a page was refused for a repair');
    }
    throw raError('RA_ERR_REPLICA_PAGE', `no replica gave a verified copy of page ${pageId} (${answers.map((x) => `${x.replica}: ${x.error}`).join('; ')})`, { details: { pageId, replicas: answers } });
  }

  private askReplica(s: Session, pageId: number, lsn: number, timeoutMs: number): Promise<{ image: Buffer; lsn: number; refused?: string }> {
    return new Promise((resolve) => {
      const list = s.pageWaiters.get(pageId) ?? [];
      s.pageWaiters.set(pageId, list);
      const timer = setTimeout(() => {
        const i = list.indexOf(done);
        // Left in place (answers come in order) but answered now; the late frame is dropped.
        if (i >= 0) list[i] = () => undefined;
        resolve({ image: Buffer.alloc(0), lsn: 0, refused: `no answer within ${timeoutMs} ms` });
      }, timeoutMs);
      const done = (a: { image: Buffer; lsn: number; refused?: string }) => {
        clearTimeout(timer);
        resolve(a);
      };
      list.push(done);
      if (!s.ch!.send(pageRequestFrame(this.wal.epoch, pageId, lsn)) && s.ch!.failure) done({ image: Buffer.alloc(0), lsn: 0, refused: 'its connection failed' });
    });
  }

  // ---- the live tail

  /** A batch just made durable: to every live replica, one frame per segment run (split past kCatchUpChunk). */
  private onFlushed(batch: readonly Pending[]): void {
    if (this.live.size === 0) return;
    const runs: Array<{ lsn: number; bytes: Buffer }> = [];
    const seg = this.wal.segmentSize;
    for (let i = 0; i < batch.length; ) {
      const start = segmentStartOf(batch[i]!.lsn, seg);
      // One frame per segment run, and at most about kCatchUpChunk bytes each: a group commit's
      // batch has no bound, and the replica refuses frames over its payload bound.
      let j = i;
      let bytes = 0;
      while (j < batch.length && segmentStartOf(batch[j]!.lsn, seg) === start && (j === i || bytes + batch[j]!.buf.byteLength <= kCatchUpChunk)) bytes += batch[j++]!.buf.byteLength;
      runs.push({ lsn: batch[i]!.lsn, bytes: j - i === 1 ? batch[i]!.buf : Buffer.concat(batch.slice(i, j).map((p) => p.buf)) });
      i = j;
    }
    for (const s of this.live) {
      const ch = s.ch!;
      if (ch.failure) {
        this.live.delete(s);
        continue;
      }
      if (ch.queuedBytes > kMaxQueuedBytes) {
        // Too slow for the live tail: back to the files, from what it was sent.
        this.live.delete(s);
        void this.catchUp(s);
        continue;
      }
      for (const r of runs) ch.send(walFrame(this.wal.epoch, r.lsn, r.bytes));
      const last = runs[runs.length - 1]!;
      s.sentLsn = last.lsn + last.bytes.byteLength;
    }
    if (Date.now() - this.lastKeepaliveAt >= kLagStampMs) this.keepalive();
  }

  private tick(): void {
    this.expireSilent();
    this.keepalive();
    this.settle();
  }

  /**
   * The newest connection of a replica wins: a hello from an id that already has a session
   * closes the older one. A path that died half-open (the replica saw it close, this end saw
   * nothing) leaves the older session looking alive, and two sessions of one replica would count
   * it twice towards a sync quorum.
   */
  private replaceOlder(s: Session): void {
    for (const o of this.sessions) {
      if (o === s || o.id !== s.id || (o.state !== 'streaming' && o.state !== 'catching-up')) continue;
      this.closeSession(o, `replaced by a newer connection of replica ${s.id} (from ${s.address})`);
    }
  }

  /**
   * Closes the sessions that owe an ack and sent nothing for the bound (3 × keepaliveMs, at
   * least kMinAckSilenceMs) while no backlog of ours drained either: a replica that is alive
   * acknowledges what it received within a few fdatasyncs, and a slow link still drains, so such
   * a session's connection is taken as dead (a partition, a dead host). The cost of a false
   * verdict is a reconnect, from what the replica has durable.
   */
  private expireSilent(): void {
    const now = Date.now();
    const bound = Math.max(3 * this.cfg.keepaliveMs, kMinAckSilenceMs);
    for (const s of this.sessions) {
      if (s.state !== 'streaming' && s.state !== 'catching-up') continue;
      if (s.sentLsn <= s.durableLsn) {
        s.owedSince = null;
        continue;
      }
      s.owedSince ??= now;
      const out = s.sock.bytesWritten - s.sock.writableLength;
      if (out !== s.wroteOut && (s.backlogged || s.sock.writableLength > 0)) s.lastHeardAt = now;
      s.wroteOut = out;
      s.backlogged = s.sock.writableLength > 0;
      const silent = now - Math.max(s.owedSince, s.lastHeardAt);
      if (silent >= bound) this.closeSession(s, `replica ${s.id} sent nothing for ${silent} ms while it owed an acknowledgement (sent up to ${s.sentLsn}, durable ${s.durableLsn}): its connection is taken as dead`);
    }
  }

  /** Closes a session from this end, saying why (the replica, if it still hears us, reconnects). */
  private closeSession(s: Session, why: string): void {
    s.error = why;
    this.log?.warn({ replica: s.id, address: s.address, reason: why }, 'replica session closed');
    s.ch?.fail('RA_ERR_REPL_PROTOCOL', why);
    this.leave(s);
    this.settle();
  }

  private keepalive(): void {
    this.lastKeepaliveAt = Date.now();
    const k = keepaliveFrame(this.wal.epoch, { flushedLsn: this.wal.flushedLsn, timeMs: this.lastKeepaliveAt });
    for (const s of this.live) s.ch?.send(k);
  }

  // ---- sync mode

  /**
   * The LSN below which `syncReplicas` distinct replicas have everything durable (0 when fewer
   * are known). Over replica ids, not sessions: one replica is never counted twice (its newest
   * session's position stands for it).
   */
  private quorumLsn(): number {
    const byId = new Map<string, number>();
    for (const s of this.sessions) if (s.state === 'streaming' || s.state === 'catching-up') byId.set(s.id, s.durableLsn);
    const durable = [...byId.values()].sort((a, b) => b - a);
    return durable[this.cfg.syncReplicas - 1] ?? 0;
  }

  /** Distinct replicas on the live tail. */
  private streamingCount(): number {
    const ids = new Set<string>();
    for (const s of this.live) if (s.state === 'streaming') ids.add(s.id);
    return ids.size;
  }

  /** Resolves the commits enough replicas have; applies `onSyncTimeout` to those waiting too long. */
  private settle(): void {
    if (!this.sync) return;
    const q = this.quorumLsn();
    if (this.degraded && this.streamingCount() >= this.cfg.syncReplicas && q >= this.wal.flushedLsn) {
      this.degraded = false;
      this.timedOut = false;
      this.log?.info({ replicas: this.streamingCount() }, 'enough sync replicas are back: commits wait for them again');
    }
    if (this.waiters.length === 0) {
      if (!this.degraded) this.timedOut = false;
      return;
    }
    const still: SyncWaiter[] = [];
    for (const w of this.waiters) {
      if (w.end <= q) w.resolve();
      else still.push(w);
    }
    this.waiters = still;
    const oldest = still[0];
    if (oldest && Date.now() - oldest.since >= this.cfg.syncTimeoutMs) {
      if (!this.timedOut) {
        this.timedOut = true;
        this.log?.warn({ waitingMs: Date.now() - oldest.since, replicas: this.streamingCount(), syncReplicas: this.cfg.syncReplicas, onSyncTimeout: this.cfg.onSyncTimeout }, 'sync replicas gone past syncTimeoutMs');
      }
      if (this.cfg.onSyncTimeout === 'degrade') {
        this.degraded = true;
        for (const w of this.waiters.splice(0)) w.resolve();
      }
    } else if (still.length === 0 && !this.degraded) {
      this.timedOut = false;
    }
  }

  private syncState(): ReplicationStatus['syncState'] {
    if (!this.sync) return 'async';
    if (this.degraded) return 'degraded';
    if (this.timedOut) return 'blocked';
    if (this.waiters.length > 0) return 'waiting';
    return 'sync';
  }
}

/** The fork LSN of `epoch` when the log forked into it from an older epoch (not a log's first, adopted epoch), else null. */
function currentFork(history: readonly EpochStart[], epoch: number): number | null {
  const cur = history[history.length - 1];
  if (!cur || cur.epoch !== epoch) return null;
  return history.length > 1 || cur.epoch > UNSTAMPED_EPOCH ? cur.startLsn : null;
}

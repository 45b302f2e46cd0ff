/**
 * The reference page store: the library API applications use.
 *
 *   const store = await PageStore.open(dir, { create: true, pageCount: 1024 });
 *   const tx = store.begin();
 *   await tx.write(7, 0, Buffer.from('hello'));
 *   await tx.commit();          // durable when it resolves
 *   await store.close();
 *
 * Opening takes the store's lock (one writer per store) and runs crash recovery, so a store
 * that was killed mid-write opens consistent. See README.md for the format.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { raError } from '../../core/errors.js';
import { serialQueue } from '../../core/serial.js';
import { completeCheckpoint, writePages, type ArchivePolicy, type AttEntry, type PageImage } from './checkpoint.js';
import { PAGE_HEADER_SIZE, headerTorn, pageLsn, readPageAt, sameButLsn, sealPage, setPageLsn, verifyPage, type PageFault } from './format.js';
import { serveControl, type ControlServer } from './controlSocket.js';
import { AppActions, type AppActionOptions, type AppActionPhase } from './appActions.js';
import { LockManager } from './lockManager.js';
import { PageCache, type Frame } from './pageCache.js';
import { recoverLocked, type RecoveryStats } from './recovery.js';
import { acquireStoreLock, type StoreLock } from './storeLock.js';
import { createStore, storeExists, superblockProblem, tightenStore, walDirOf, type StoreGeometry } from './storeFiles.js';
import { settleSwap } from './storeSwap.js';
import { faultPoint } from './faults.js';
import { newestLoggedLsns } from './pageLogLsn.js';
import { readReplicationConfig } from './replicationConfig.js';
import type { ReplicationSender } from './replicationSender.js';
import { CommitFence } from './commitFence.js';
import { Transaction, type TxHost } from './transaction.js';
import { RecordType, commitTimeAt, kRecType } from './walRecord.js';
import { scanRecords } from './walPages.js';
import { SEGMENT_HEADER_SIZE, listSegments, segmentPath, writtenBytes } from './walSegments.js';
import type { WalWriter } from './walWriter.js';

import { eachPage, installBatch } from './pageBatch.js';
import type { CheckpointStats, DropCachesResult, PageBatchAnswer, PageRepair, PageState, PageStoreOptions, ReplicaPageCopy, StoreStatus, BrokenStatus } from './storeTypes.js';

export type { CheckpointStats, DropCachesResult, PageRepair, PageStoreOptions, StoreStatus } from './storeTypes.js';

export class PageStore {
  readonly pageSize: number;
  readonly pageCount: number;
  /** Bytes usable per page after the header. */
  readonly payloadSize: number;
  private readonly cache: PageCache;
  private readonly locks = new LockManager();
  private readonly active = new Map<number, Transaction>();
  private nextTxId: number;
  private redoLsn: number;
  private checkpointing: Promise<CheckpointStats> | null = null;
  /** The checkpoint asked for while one ran (checkpoint()). */
  private nextCheckpoint: Promise<CheckpointStats> | null = null;
  private readonly timer: NodeJS.Timeout | null;
  private closed = false;
  private broken: Error | null = null;
  /** The time the last commit record carries: commit times never go backwards in one process's log. */
  private lastCommitTime = 0;
  /**
   * Writes of pages to the data file, one at a time. Each writer copies its images when its turn
   * comes (a checkpoint copies earlier, which only means a newer copy is written later), so a
   * page's copies reach the disk in the order they were taken.
   */
  private readonly serialWrite = serialQueue();
  private controlServer: ControlServer | null = null;
  /** Actions the application registers for the agent to run (appActions.ts). */
  readonly control = new AppActions();
  /** The replication sender, when replication.json makes this store a primary. */
  private sender: ReplicationSender | null = null;
  /** A clustered primary's commit fence (commitFence.ts); disabled otherwise. */
  private fence = new CommitFence(false, 0);
  /**
   * The newest LSN at which the live WAL changed each page, read once at the first repair
   * (`newestLogged`); the changes made after it go through the cache, whose `knownLsn` keeps them.
   */
  private loggedLsns: Promise<Map<number, number>> | null = null;
  /**
   * The next checkpoint retires no WAL segment: a primary's end-of-recovery checkpoint, deferred
   * to the open store, keeps what recovery's own kept (recovery.ts `epoch`): replicas that
   * followed it before the crash have not reconnected yet, so its sender cannot say what they need.
   */
  private retainAllOnce = false;
  /** Counters for metrics and benchmarks. */
  readonly counters = { commits: 0, aborts: 0, checkpoints: 0 };

  private constructor(
    readonly dir: string,
    readonly geometry: StoreGeometry,
    private readonly wal: WalWriter,
    private readonly data: FileHandle,
    private readonly storeLock: StoreLock,
    /** What recovery did when the store was opened. */
    readonly recovery: RecoveryStats,
    nextTxId: number,
    private readonly options: PageStoreOptions,
    /** How checkpoints retire WAL (recovery.ts archivePolicy). */
    private readonly archive: ArchivePolicy,
  ) {
    this.pageSize = geometry.pageSize;
    this.pageCount = geometry.pageCount;
    this.payloadSize = geometry.pageSize - PAGE_HEADER_SIZE;
    this.host = this.makeHost();
    this.nextTxId = nextTxId;
    this.redoLsn = wal.endLsn;
    const maxFrames = Math.max(16, Math.floor((options.cacheBytes ?? 64 * 1024 * 1024) / geometry.pageSize));
    this.cache = new PageCache(data, geometry.pageSize, maxFrames, options.onCorruptPage);
    const every = options.checkpointIntervalMs ?? 5 * 60_000;
    this.timer = every > 0 ? setInterval(() => this.backgroundCheckpoint(), every) : null;
    this.timer?.unref();
  }

  /**
   * Opens (or creates) a store: takes its lock, removes group and other access from its files
   * (a store made by an older version followed the umask), runs recovery, and is ready for
   * transactions.
   */
  static async open(dir: string, options: PageStoreOptions = {}): Promise<PageStore> {
    // A restore interrupted between its renames is finished, never papered over by a new store.
    await settleSwap(dir);
    if (!storeExists(dir)) {
      if (!options.create) throw raError('RA_ERR_STORE_NOT_FOUND', `${dir} holds no page store (pass create: true to make one)`);
      if (options.pageCount === undefined) throw raError('RA_ERR_STORE_OPTIONS', 'pageCount is required to create a store');
      await createStore(dir, { pageCount: options.pageCount, pageSize: options.pageSize, segmentSize: options.segmentSize });
    }
    const lock = await acquireStoreLock(dir);
    try {
      await tightenStore(dir, options.log);
      // Read before recovery: a bad file fails the open before anything is written.
      const replication = await readReplicationConfig(dir);
      // A primary at a newer epoch than its log (a promoted replica) forks the log at its end.
      // The end-of-recovery checkpoint is not waited for: the store opens once redo and undo are
      // done, undo's pages dirty in its cache, and checkpoints in the background below (a crash
      // before that completes recovers again from the old redo point; recovery.ts).
      const r = await recoverLocked(dir, { pool: options.pool, archiver: options.archiver, log: options.log, deferCheckpoint: true, ...(replication?.role === 'primary' ? { epoch: replication.epoch } : {}) });
      const store = new PageStore(dir, r.geometry, r.wal, r.data, lock, r.stats, r.nextTxId, options, r.archive);
      if (r.deferred) {
        store.redoLsn = r.deferred.redoLsn;
        store.retainAllOnce = replication?.role === 'primary';
        for (const [pageId, p] of r.deferred.pages) store.cache.adoptDirty(pageId, p.image, p.recLsn);
      }
      // Commit times never go backwards across a restart either (a clock stepped back meanwhile).
      store.lastCommitTime = r.lastCommitTime ?? (await lastLoggedCommitTime(walDirOf(dir)));
      if (replication?.role === 'primary') {
        store.fence = new CommitFence(replication.fenced, replication.epoch, replication.fenceWaitMs);
        try {
          // Loaded only for a primary: its modules (the replication protocol, base copies) are a
          // fifth of the store's, and every other open would load them for nothing.
          const { ReplicationSender } = await import('./replicationSender.js');
          store.sender = await ReplicationSender.start(replication, r.wal, walDirOf(dir), r.geometry.storeId, options.log);
          store.sender.servePage = (pageId) => store.pageForReplica(pageId);
          store.sender.base = store;
        } catch (err) {
          await store.close().catch(() => undefined);
          throw err;
        }
      }
      if (options.controlSocket ?? true) store.controlServer = await serveControl(store, dir, options.log);
      if (r.deferred) {
        faultPoint('open-before-checkpoint');
        store.backgroundCheckpoint();
      }
      return store;
    } catch (err) {
      await lock.release();
      throw err;
    }
  }

  /** Starts a transaction. */
  begin(): Transaction {
    this.checkOpen();
    const tx = new Transaction(this.nextTxId++, this.host);
    this.active.set(tx.id, tx);
    return tx;
  }

  /** Where replicas connect, when this store is a replication primary (null otherwise). */
  get replicationAddress(): { host: string; port: number } | null {
    return this.sender?.address ?? null;
  }

  /** The end of the log: the LSN the next record gets. */
  get endLsn(): number {
    return this.wal.endLsn;
  }

  /** WAL bytes written since the current redo point. */
  get walSinceCheckpoint(): number {
    return this.wal.endLsn - this.redoLsn;
  }

  get walStats(): Readonly<WalWriter['stats']> {
    return this.wal.stats;
  }

  /** Reads of the whole live WAL made for repairs' staleness checks (one per process: `newestLogged`). */
  readonly repairStats = { walReads: 0 };

  get lockStats(): { deadlocks: number } {
    return { deadlocks: this.locks.deadlocks };
  }

  /**
   * A fuzzy checkpoint: transactions go on while it runs. Dirty pages are copied, the WAL is
   * flushed, the copies written and synced, then a checkpoint record (active transactions and
   * dirty pages) is logged and the control file switched to it. A call made while one runs gets
   * the next one (the running one may have copied the dirty pages before the caller's changes —
   * the end-of-recovery checkpoint runs in the background from the open); calls made meanwhile
   * share that next run.
   */
  checkpoint(): Promise<CheckpointStats> {
    this.checkOpen();
    if (!this.checkpointing) return this.startCheckpoint();
    this.nextCheckpoint ??= this.checkpointing
      .catch(() => undefined)
      .then(() => {
        this.nextCheckpoint = null;
        this.checkOpen();
        return this.checkpointing ?? this.startCheckpoint();
      });
    return this.nextCheckpoint;
  }

  private startCheckpoint(): Promise<CheckpointStats> {
    const run = this.runCheckpoint().finally(() => {
      if (this.checkpointing === run) this.checkpointing = null;
    });
    this.checkpointing = run;
    return run;
  }

  /** The store's state, as the control socket reports it. */
  status(): StoreStatus {
    const c = this.cache.stats;
    return {
      pid: process.pid,
      storeId: Buffer.from(this.geometry.storeId).toString('hex'),
      pageSize: this.pageSize,
      pageCount: this.pageCount,
      endLsn: this.wal.endLsn,
      flushedLsn: this.wal.flushedLsn,
      redoLsn: this.redoLsn,
      activeTransactions: this.active.size,
      lockWaits: this.locks.waiting,
      ...this.counters,
      cache: { pages: this.cache.size, dirty: this.cache.dirtyCount, bytes: this.cache.size * this.pageSize, loads: c.loads, hits: c.hits, evictions: c.evictions, corrupt: c.corrupt },
      ...(this.sender ? { replication: this.sender.status() } : {}),
      ...(this.fence.enabled ? { fence: this.fence.status() } : {}),
      ...(this.brokenBy() ? { broken: brokenStatus(this.brokenBy()!) } : {}),
    };
  }

  /** The error that broke the store's log, if one did (the WAL writer's failure counts before a commit trips on it). */
  private brokenBy(): Error | null {
    return this.broken ?? this.wal.failure ?? null;
  }

  /**
   * Lets go of the memory the store can do without: every clean, unpinned cached page (read
   * again from disk on demand). Dirty pages stay until a checkpoint. Asks V8 for a collection
   * when the process runs with --expose-gc, so the RSS falls now rather than at the next one.
   */
  dropCaches(): DropCachesResult {
    const before = this.cache.size;
    const dropped = this.cache.dropClean();
    (globalThis as { gc?: () => void }).gc?.();
    return { pagesDropped: dropped.pages, bytesReleased: dropped.bytes, pagesBefore: before, pagesAfter: this.cache.size };
  }

  /** The control socket's `actions` and `app-action` (appActions.ts). */
  appActions(): Array<{ name: string; description: string | null }> {
    return this.control.list();
  }

  runAppAction(name: string, phase: AppActionPhase, options: AppActionOptions, timeoutMs?: number): Promise<unknown> {
    return this.control.run(name, phase, options, timeoutMs);
  }

  /**
   * A page as the store sees it: its cached copy (sealed, so it verifies) when in memory, else
   * the bytes on disk with what is wrong with them, if anything.
   */
  async readPage(pageId: number): Promise<{ image: Buffer; cached: boolean; fault: PageFault | 'short-read' | null }> {
    this.checkOpen();
    this.checkPageId(pageId);
    const f = this.cache.peek(pageId);
    if (f) {
      const image = Buffer.from(f.page);
      sealPage(image);
      return { image, cached: true, fault: null };
    }
    return { ...(await readPageAt(this.data, pageId, this.pageSize)), cached: false };
  }

  /**
   * Pages `[first, first + count)` for a base copy (baseCopy.ts), each whole and sealed: the cached
   * copy when in memory, else the data file's. The file is read inside the page-write queue, so
   * no checkpoint or repair writes it meanwhile (no torn read); the cached copies are laid over
   * it in the same step as the read returns, so a page not in memory then is clean and the file
   * holds its newest version (a dirty page never leaves memory before a checkpoint writes it, and
   * that write waits for this read).
   */
  async copyPages(first: number, count: number): Promise<Buffer> {
    this.checkOpen();
    this.checkPageId(first);
    this.checkPageId(first + count - 1);
    const ps = this.pageSize;
    const out = Buffer.alloc(count * ps);
    await this.serialWrite(async () => {
      const { bytesRead } = await this.data.read(out, 0, out.byteLength, first * ps);
      if (bytesRead !== out.byteLength) throw raError('RA_ERR_STORE_INVALID', `${this.dir}'s data file ends inside page ${first + Math.floor(bytesRead / ps)}`);
      for (let i = 0; i < count; i++) {
        const page = out.subarray(i * ps, (i + 1) * ps);
        const f = this.cache.peek(first + i);
        if (f) {
          page.set(f.page);
          sealPage(page);
        }
      }
    });
    for (let i = 0; i < count; i++) {
      const fault = verifyPage(out.subarray(i * ps, (i + 1) * ps), first + i);
      if (fault) throw raError('RA_ERR_PAGE_CORRUPT', `page ${first + i} fails its ${fault} check: a base copy cannot include it (repair it first)`, { details: { pageId: first + i, reason: fault } });
    }
    return out;
  }

  /** Flushes the whole log; resolves with its flushed end (a base copy's consistency point). */
  async flushAll(): Promise<number> {
    this.checkOpen();
    await this.wal.flush();
    return this.wal.flushedLsn;
  }

  /**
   * Repairs a page whose copy on disk is bad.
   *
   * In memory, the page is the truth: that copy is written (WAL first), whatever `image` says.
   * Otherwise `image` is written and cached, once it verifies as page `pageId`, its LSN is
   * neither past the end of the log nor older than the newest version of the page this store
   * has held, the copy on disk is bad, and (page 0) it is this store's superblock. It must be
   * the page as of the end of the log (a snapshot's image with every later WAL record for the
   * page applied): a page not in memory cannot have changed since it was last written, since
   * changing it needs it in memory, loading it from disk fails while the disk copy is bad, and
   * a page leaves memory only when clean. `write` puts the checked image on disk, synced: alone by
   * default, or with the rest of a batch (`repairPages`, one sync).
   *
   * The bad copy's header LSN (when only its checksum fails) bounds the image from below, except
   * when the header is torn (`headerTorn`: two of its magic, version and page id wrong, as a torn
   * write leaves it; verifyPage reports `checksum` first whatever the header holds) and the image
   * is offered as of a durable LSN (`asOfLsn`, refused when past this store's durable end or below
   * the image's own LSN). Such a header's LSN is garbage (often ~1e19) and refused every rebuild
   * (the chaos suite's page-torn); an image as of `asOfLsn` holds every record for the page below
   * it, none missing (the page source took the LSN from this owner and replayed up to it), and the
   * page was bad on disk and out of memory when the LSN was taken, so no record for it lies past
   * it; the cache's and the live WAL's bounds still hold. A header with its identity intact (a
   * flipped bit, a tear of the second half) keeps its LSN as a bound, even one past the end of the
   * log: a WAL damaged and cut by recovery can leave real pages with LSNs past its end. An image
   * without `asOfLsn` makes no claim, so a torn header still refuses it. Nor is the bad copy's
   * LSN held against an image holding the very bytes the bad copy holds but for checksum and
   * LSN (`sameButLsn`: a flipped bit of the LSN field, page-bitflip's 2^38 on a page never
   * written): writing it changes no byte of the page's contents, so no change can be lost by it.
   *
   * History: not trusting the bad header for an `asOfLsn` image was first tried in session 8, and
   * a chaos run then lost an acknowledged commit written to the page just after its repair (seed
   * 17 trial 10). The cause was the cache, not this rule (PageCache.install): a transaction whose
   * pin waited on the install got a frame the cache had evicted, so no checkpoint wrote its change.
   */
  async repairPage(pageId: number, image?: Uint8Array, asOfLsn?: number, write = (id: number, img: Buffer) => this.serialWrite(() => writePages(this.data, this.pageSize, [{ pageId: id, image: img }]))): Promise<PageRepair> {
    this.checkOpen();
    this.checkPageId(pageId);
    let img: Buffer | null = null;
    if (image) {
      img = Buffer.from(image);
      const refuse = (reason: string, message: string) => raError('RA_ERR_REPAIR_REFUSED', `refusing to write page ${pageId}: ${message}`, { details: { pageId, reason } });
      const fault = img.byteLength !== this.pageSize ? `size ${img.byteLength}, not ${this.pageSize}` : verifyPage(img, pageId);
      if (fault) throw raError('RA_ERR_PAGE_CORRUPT', `refusing to write page ${pageId}: the image offered fails its ${fault} check`, { details: { pageId, reason: fault } });
      const lsn = pageLsn(img);
      if (lsn > this.wal.endLsn) throw raError('RA_ERR_PAGE_CORRUPT', `refusing to write page ${pageId}: its LSN ${lsn} is past the end of this store's log (${this.wal.endLsn})`, { details: { pageId, reason: 'lsn' } });
      if (asOfLsn !== undefined && (asOfLsn > this.wal.flushedLsn || asOfLsn < lsn)) throw refuse('as-of', `the image is offered as of LSN ${asOfLsn}, which is ${asOfLsn < lsn ? `below its own LSN ${lsn}` : `past this store's durable end (${this.wal.flushedLsn})`}`);
      const problem = pageId === 0 ? superblockProblem(img, this.geometry) : null;
      if (problem) throw refuse('superblock', `the image offered is not this store's superblock: ${problem}`);
      const installed = await this.cache.install(pageId, img, async () => {
        // Checked where nothing else can load or install the page meanwhile.
        const onDisk = await readPageAt(this.data, pageId, this.pageSize);
        if (onDisk.fault === null) throw refuse('valid', `its copy on disk verifies (LSN ${pageLsn(onDisk.image)}); only a bad page is replaced`);
        // The newest version the store can know of: the one it last held (since it opened), the
        // newest change to the page its live WAL holds (what survives a reopen), and the bad
        // copy's own LSN when only its checksum fails, unless its header is torn and the image is
        // as of a durable LSN, or the image holds the bad copy's bytes but for that LSN (above).
        const trusted = onDisk.fault === 'checksum' && !(asOfLsn !== undefined && headerTorn(onDisk.image, pageId)) && !sameButLsn(onDisk.image, img!);
        const badLsn = trusted ? pageLsn(onDisk.image) : 0;
        const known = Math.max(this.cache.knownLsn(pageId), badLsn, await this.newestLogged(pageId));
        if (lsn < known) throw refuse('stale', `the image offered has LSN ${lsn}, older than the version this store knows (LSN ${known})`);
        await write(pageId, Buffer.from(img!));
      });
      if (installed) return { pageId, source: 'image', lsn };
    }
    const lsn = await this.serialWrite(async () => {
      const f = this.cache.peek(pageId);
      if (!f) throw raError('RA_ERR_REPAIR_NO_SOURCE', `page ${pageId} is not in memory and no image was given to write`, { details: { pageId } });
      const copy = Buffer.from(f.page); // copied as the write begins: a later change is written later
      const at = pageLsn(copy);
      await this.wal.flush(); // the record at the page's LSN, and all before it, durable first
      await writePages(this.data, this.pageSize, [{ pageId, image: copy }]);
      return at;
    });
    return { pageId, source: 'cache', lsn };
  }

  /** `repairPage` for many pages, each checked as alone, the images written with one sync (pageBatch.ts). */
  repairPages(pages: ReadonlyArray<{ pageId: number; image?: Uint8Array; asOfLsn?: number }>): Promise<Array<PageBatchAnswer<PageRepair>>> {
    return installBatch(pages, (id, img, write, asOfLsn) => this.repairPage(id, img, asOfLsn, write), (images) => this.serialWrite(() => writePages(this.data, this.pageSize, images)));
  }

  /** `replicaPage` for many pages: their requests in flight together to the replica, in order. */
  replicaPages(pageIds: readonly number[]): Promise<Array<PageBatchAnswer<ReplicaPageCopy>>> {
    return eachPage(pageIds, (id) => this.replicaPage(id));
  }

  /** `readPage` for many pages, without their images: what a batch repair needs to know first. */
  pageStates(pageIds: readonly number[]): Promise<Array<PageBatchAnswer<PageState>>> {
    return eachPage(pageIds, async (id) => {
      const r = await this.readPage(id);
      return { pageId: id, cached: r.cached, fault: r.fault, lsn: r.fault === 'short-read' ? 0 : pageLsn(r.image) };
    });
  }

  /**
   * A copy of page `pageId` from this primary's replicas (plugins/replication/DESIGN.md, "Page
   * repair"), to repair it with: the streaming replica with the lowest lag is asked for the page
   * with every record below this store's flushed LSN applied; an answer is taken only when it
   * verifies as page `pageId` (checksum, id, this store's superblock for page 0), its LSN is not
   * past the end of the log, and not older than the newest version of the page this store knows
   * (its cache's memory, the newest change its live WAL holds): a valid-looking stale copy is a
   * lost write, not a repair. Otherwise the next replica is asked. Nothing is written here: the
   * repairer installs the copy through `repairPage`, which checks it again.
   */
  /** The agent's grant of its leadership lease, until `untilNs` of `process.hrtime.bigint()` (commitFence.ts). */
  grantLease(epoch: number, untilNs: bigint): { untilNs: string; remainingNs: string } {
    this.checkOpen();
    return this.fence.grant(epoch, untilNs);
  }

  async replicaPage(pageId: number): Promise<ReplicaPageCopy> {
    this.checkOpen();
    this.checkPageId(pageId);
    if (!this.sender) throw raError('RA_ERR_REPLICA_PAGE', `store ${this.dir} is not a replication primary: it has no replicas to ask for page ${pageId}`, { details: { pageId, replicas: [] } });
    const verify = async (img: Buffer, lsn: number): Promise<string | null> => {
      const fault = img.byteLength !== this.pageSize ? `size ${img.byteLength}, not ${this.pageSize}` : verifyPage(img, pageId);
      if (fault) return `its copy fails its ${fault} check`;
      if (pageLsn(img) !== lsn) return `the frame says LSN ${lsn}, the page ${pageLsn(img)}`;
      if (lsn > this.wal.endLsn) return `its LSN ${lsn} is past the end of this store's log (${this.wal.endLsn})`;
      const problem = pageId === 0 ? superblockProblem(img, this.geometry) : null;
      if (problem) return `not this store's superblock: ${problem}`;
      const known = Math.max(this.cache.knownLsn(pageId), await this.newestLogged(pageId));
      if (lsn < known) return `stale: its LSN ${lsn} is older than the newest change this store logged or held for the page (LSN ${known})`;
      return null;
    };
    const got = await this.sender.requestPage(pageId, this.wal.flushedLsn, verify);
    return { pageId, ...got };
  }

  /**
   * The newest change to `pageId` the live WAL held at the store's first repair (one read of the
   * WAL per process, not two per repair). Every change made since went through the cache, whose
   * `knownLsn` remembers it, evicted or not: with it, the same bound a read of the WAL now gives,
   * or a higher one (a change whose segment a checkpoint retired since).
   */
  private async newestLogged(pageId: number): Promise<number> {
    if (!this.loggedLsns) {
      this.repairStats.walReads++;
      this.loggedLsns = newestLoggedLsns(this.dir);
    }
    const p = this.loggedLsns;
    p.catch(() => {
      if (this.loggedLsns === p) this.loggedLsns = null; // read again next time
    });
    return (await p).get(pageId) ?? 0;
  }

  /**
   * Page `pageId` for a replica whose copy is damaged (plugins/replication/DESIGN.md, "Page
   * repair"): the cached copy, or the one on disk when it verifies; the log durable up to its LSN
   * first (WAL before the page leaves), so the stream brings the replica there. The replica makes
   * it consistent with its own log before installing it.
   */
  async pageForReplica(pageId: number): Promise<Buffer> {
    const seen = await this.readPage(pageId);
    if (seen.fault) throw raError('RA_ERR_PAGE_CORRUPT', `this primary's copy of page ${pageId} fails its ${seen.fault} check too`, { details: { pageId, reason: seen.fault } });
    await this.wal.flush();
    return seen.image;
  }

  /** Aborts open transactions, checkpoints, and releases the lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.controlServer?.close();
    this.controlServer = null;
    for (const tx of [...this.active.values()]) if (tx.state === 'active') await tx.abort().catch(() => undefined);
    if (!this.broken) await (this.checkpointing ?? this.checkpoint()).catch(() => undefined);
    if (this.checkpointing) await this.checkpointing.catch(() => undefined);
    if (!this.broken && this.walSinceCheckpoint > 0) await this.checkpoint().catch(() => undefined);
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.locks.close();
    // After the last checkpoint: its records reach the replicas too.
    this.fence.close(raError('RA_ERR_FENCED', `store ${this.dir} closed while the commit waited for a lease grant; its outcome is unknown`));
    await this.sender?.close();
    await this.wal.close().catch(() => undefined);
    await this.data.close();
    await this.storeLock.release();
  }

  /** What transactions call back into; kept off the public surface of the store. */
  private readonly host: TxHost;

  private makeHost(): TxHost {
    return {
      pageCount: this.pageCount,
      payloadSize: this.payloadSize,
      lock: (tx, pageId, mode) => this.locks.acquire(tx.id, pageId, mode),
      pin: (pageId) => {
        this.checkOpen();
        return this.cache.pin(pageId);
      },
      unpin: (frame) => this.cache.unpin(frame),
      logChange: (tx, frame, pageOffset, after, before, undoNextLsn) => this.logChange(tx, frame, pageOffset, after, before, undoNextLsn),
      logEnd: (tx, commit) => {
        // A commit's time is taken as it is issued, in the same step that gives its record an
        // LSN and before the group flush that makes it durable; so, within a process, times
        // grow with LSNs (a wall clock stepped back repeats the last time rather than go back).
        const commitTime = commit ? (this.lastCommitTime = Math.max(this.lastCommitTime, Date.now())) : undefined;
        const r = this.wal.append({ type: commit ? RecordType.Commit : RecordType.Abort, txId: tx.id, prevLsn: tx.lastLsn, ...(commitTime !== undefined ? { commitTime } : {}) });
        tx.lastLsn = r.lsn;
        return r;
      },
      flush: (upto) => {
        const local = this.wal.flush(upto).catch((err: Error) => {
          this.fail(err);
          throw err;
        });
        // Sync replication: acknowledged once enough replicas have it durable too. Without a
        // sender this is the local flush alone.
        // A clustered primary then acknowledges only under a valid lease (commitFence.ts).
        const sender = this.sender;
        const durable = sender?.sync ? local.then(() => sender.waitDurable(upto)) : local;
        return this.fence.enabled ? durable.then(() => this.fence.wait()) : durable;
      },
      ended: (tx) => this.ended(tx),
    };
  }

  private logChange(tx: Transaction, frame: Frame, pageOffset: number, after: Uint8Array, before: Uint8Array | null, undoNextLsn: number): number {
    this.checkOpen();
    const saved = Buffer.from(frame.page.subarray(pageOffset, pageOffset + after.byteLength));
    frame.page.set(after, pageOffset);
    // A page clean since the redo point gets a full image: it is what repairs a torn write.
    const fullPage = frame.dirty ? undefined : frame.page;
    let lsn: number;
    try {
      ({ lsn } = this.wal.append({
        type: before ? RecordType.Update : RecordType.Clr,
        txId: tx.id,
        prevLsn: tx.lastLsn,
        pageId: frame.pageId,
        offset: pageOffset,
        ...(before ? { before } : {}),
        after,
        undoNextLsn,
        ...(fullPage ? { fullPage } : {}),
      }));
    } catch (err) {
      frame.page.set(saved, pageOffset);
      throw err;
    }
    setPageLsn(frame.page, lsn);
    if (!frame.dirty) {
      frame.dirty = true;
      frame.recLsn = lsn;
    }
    if (tx.firstLsn === 0) tx.firstLsn = lsn;
    tx.lastLsn = lsn;
    return lsn;
  }

  private ended(tx: Transaction): void {
    this.active.delete(tx.id);
    this.locks.releaseAll(tx.id);
    if (tx.state === 'committed') this.counters.commits++;
    else this.counters.aborts++;
    if (this.walSinceCheckpoint > (this.options.checkpointWalBytes ?? 64 * 1024 * 1024)) this.backgroundCheckpoint();
  }

  // ---- internals

  private backgroundCheckpoint(): void {
    if (this.closed || this.broken || this.checkpointing) return;
    this.checkpoint().catch((err: unknown) => this.options.log?.error({ err }, 'background checkpoint failed'));
  }

  private async runCheckpoint(): Promise<CheckpointStats> {
    const t0 = performance.now();
    // A live segment cut under the writer is sealed first: the new redo point starts a whole one.
    if (await this.wal.sealIfCut()) this.options.log?.warn({ dir: this.dir }, 'the live WAL segment was cut short under the writer: the log goes on in a new segment from this checkpoint');
    const redoLsn = this.wal.endLsn;
    // Synchronous, so no change slips between the copies and the new redo point.
    const images: PageImage[] = [];
    // Pinned until their images are on disk: a frame evicted before that would be read back stale.
    const pinned: Frame[] = [];
    for (const f of this.cache.all()) {
      if (!f.dirty) continue;
      images.push({ pageId: f.pageId, image: Buffer.from(f.page) });
      f.dirty = false;
      f.pins++;
      pinned.push(f);
    }
    this.redoLsn = redoLsn;
    try {
      try {
        await this.wal.flush();
        await this.serialWrite(() => writePages(this.data, this.pageSize, images));
      } finally {
        for (const f of pinned) this.cache.unpin(f);
      }
      // Frames dirty past the cache's size are clean now: let the cache shrink back.
      this.cache.trim();
      const att: AttEntry[] = [...this.active.values()].filter((t) => t.firstLsn > 0).map((t) => [t.id, t.firstLsn, t.lastLsn]);
      const dpt: Array<[number, number]> = [...this.cache.all()].filter((f) => f.dirty).map((f) => [f.pageId, f.recLsn]);
      const out = await completeCheckpoint(this.dir, this.wal, this.geometry, { redoLsn, nextTxId: this.nextTxId, att, dpt }, this.archive, this.retainAllOnce ? 0 : this.sender?.retainFrom());
      this.retainAllOnce = false;
      if (out.archiveError) this.options.log?.warn({ err: out.archiveError }, 'WAL segments not archived; kept for the next checkpoint');
      this.counters.checkpoints++;
      return { lsn: out.lsn, redoLsn, pagesWritten: images.length, segmentsRecycled: out.recycled, durationMs: performance.now() - t0 };
    } catch (err) {
      // Pages may be half-written and the kernel may have dropped what failed: only recovery
      // can say what is on disk now.
      this.fail(raError('RA_ERR_STORE_CLOSED', `checkpoint failed; reopen the store to recover: ${(err as Error).message}`, { cause: err }));
      throw this.broken!;
    }
  }

  private checkPageId(pageId: number): void {
    if (!Number.isInteger(pageId) || pageId < 0 || pageId >= this.pageCount) {
      throw raError('RA_ERR_PAGE_RANGE', `page ${pageId} is outside the store (pages 0..${this.pageCount - 1})`, { details: { pageId } });
    }
  }

  /**
   * The store's log cannot be written: nothing more can be acknowledged, so nothing more may
   * start. Transactions waiting for locks held by ones whose commit failed get the error instead
   * of waiting forever; reopening the store (recovery) is the way back.
   */
  private fail(err: Error): void {
    this.broken ??= err;
    this.locks.failAll(this.broken);
  }

  private checkOpen(): void {
    if (!this.broken && this.wal.failure) this.fail(this.wal.failure);
    if (this.broken) throw this.broken;
    if (this.closed) throw raError('RA_ERR_STORE_CLOSED', `store ${this.dir} is closed`);
  }
}

/**
 * The latest time a commit record in the log on disk carries (0: none in the segments kept):
 * what a reopened store's commit times must not go below, so that a point-in-time restore, which
 * stops before the first commit later than its target, sees times that grow with LSNs. Read
 * after recovery, from the newest segment back to the first holding a commit (usually just the
 * newest, still in the page cache from recovery).
 */
async function lastLoggedCommitTime(walDir: string): Promise<number> {
  const starts = await listSegments(walDir);
  for (let i = starts.length - 1; i >= 0; i--) {
    const start = starts[i]!;
    const buf = await readWritten(segmentPath(walDir, start));
    let latest = 0;
    scanRecords(buf, SEGMENT_HEADER_SIZE, buf.byteLength, start + SEGMENT_HEADER_SIZE, (at) => {
      if (buf[at + kRecType] === RecordType.Commit) latest = Math.max(latest, commitTimeAt(buf, at) ?? 0);
    });
    if (latest > 0) return latest;
  }
  return 0;
}

/**
 * A segment file's bytes as far as the filesystem holds data for them: a segment made at full
 * size is sparse past its records, and reading its zeros into fresh memory cost ~40 ms per open
 * on this VM. The allocated size (st_blocks) is a hint, rounded up to 64 KiB: here an undercount
 * (a compressing filesystem) only makes the commit-time floor older, never loses a record.
 */
async function readWritten(file: string): Promise<Buffer> {
  const h = await open(file, 'r');
  try {
    const st = await h.stat();
    const written = writtenBytes(st, 0);
    const want = written < st.size ? Math.min(st.size, Math.ceil(written / 65536) * 65536) : st.size;
    const buf = Buffer.alloc(want);
    let got = 0;
    for (let n; got < want && (n = (await h.read(buf, got, want - got, got)).bytesRead) > 0; ) got += n;
    return buf.subarray(0, got);
  } finally {
    await h.close();
  }
}

/**
 * A broken store's error for its status: the code, the system error under it (the cause chain's
 * first `E…` code) and the message — how the agent tells a failed disk (EIO) from a full one.
 */
function brokenStatus(err: Error): BrokenStatus {
  let errno: string | null = null;
  let cur: unknown = err;
  for (let depth = 0; cur instanceof Error && depth < 8 && errno === null; depth++, cur = cur.cause) {
    const code = (cur as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) errno = code;
  }
  return { code: (err as { code?: string }).code ?? 'RA_ERR_WAL_WRITE', errno, message: err.message };
}

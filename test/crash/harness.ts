/**
 * The crash harness: proves RPO = 0 for the page store by killing real processes.
 *
 * One store directory lives for the whole run. Each iteration starts a writer process
 * (test/fixtures/crashWriter.ts) on it, kills it with SIGKILL (at a random time, or by a fault
 * point making it kill itself: plugins/pagestore/faults.ts), sometimes runs recovery in a child
 * process that a fault kills part-way (test/fixtures/crashRecover.ts), then recovers in this
 * process and checks every page of the data file against the model:
 *
 *   - every page passes verifyPage (checksum, magic, version, page id), and its LSN is below
 *     the checkpoint recovery just wrote; the WAL was recycled down to at most two segments,
 *     each with a sound header, and the checkpoint record the control file names is readable;
 *   - every payload is the initial zeros or exactly one transaction's whole pattern;
 *   - every page holds the stamp of its last committed writer.
 *
 * The model. The writer tells us, in order, `commit-req` (sent before commit() is called) and
 * `ack` (sent after commit() resolved). Strict two-phase locking makes the order of commit-reqs
 * among the writers of one page the order in which their versions replaced each other, and
 * locks are released only once a commit is durable. After a kill, a stamp is committed if
 *
 *   - it was acknowledged, or
 *   - it is in doubt (commit-req, no ack) and visible on some page, or
 *   - it is in doubt and a later commit-req names one of its pages: that later transaction
 *     could only lock the page after this one's commit was durable.
 *
 * Every page must then hold the last committed stamp among its writers (this run's in commit-req
 * order, else what the previous iterations left). So an acknowledged commit can't be lost, a
 * stamp that never requested commit (aborted, or in flight at the kill) is never visible, and an
 * in-doubt transaction is all or nothing. The verdicts carry over: the next writer continues on
 * the recovered store, and recovery of recovered stores is exercised.
 *
 * I/O faults (options.ioFaults, ioFaults.ts): some writers run under an LD_PRELOAD library that
 * makes a seeded write or sync under the store fail (a short write then ENOSPC, ENOSPC, EIO on
 * a write, EIO on an fsync). The writer reports each failed store operation (`store-error`) and
 * keeps trying; the harness kills it shortly after the first, recovers without the library and
 * checks the same model. Also checked: no commit is acknowledged after the WAL failed, the store
 * fails only when the fault fired, and a fault that fired is not swallowed.
 *
 * The native addon's files must not change during a run: a build copied over the loaded file
 * crashes every process that loaded it (SIGSEGV), which would pass for a bug of the code under
 * test. A change stops the run with a violation that says so (addonWatch.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import { describeError } from '../../core/errors.js';
import { readControl } from '../../plugins/pagestore/control.js';
import { PAGE_HEADER_SIZE, pageLsn, verifyPage, type PageFault } from '../../plugins/pagestore/format.js';
import { PageStore } from '../../plugins/pagestore/pageStore.js';
import { recover, type RecoveryStats } from '../../plugins/pagestore/recovery.js';
import { dataFileOf, walDirOf } from '../../plugins/pagestore/storeFiles.js';
import { readRecordFromDisk } from '../../plugins/pagestore/walScan.js';
import { SEGMENT_HEADER_SIZE, checkSegmentHeader, listSegments, segmentName, segmentPath } from '../../plugins/pagestore/walSegments.js';
import { fixture } from '../helpers/paths.js';
import { AddonWatch } from './addonWatch.js';
import { IO_FAULT_KINDS, describeIoFault, faultLibrary, ioFaultEnv, needsCheckpoints, pickIoFault, readFiredFault, storeRealPath, type IoFault, type IoFaultKind } from './ioFaults.js';
import { Prng, decodePayload, describeSegments, stampName, stampRun, type WriterMessage } from './pattern.js';

export const FAULT_POINTS = ['wal-before-sync', 'page-write-torn', 'checkpoint-before-control', 'recovery-redo', 'recovery-undo'] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number];

export const PAGE_SIZE = 4096;
export const SEGMENT_SIZE = 64 * 1024;

// ---------------------------------------------------------------------------------------------
// Observing a store

export interface PageObservation {
  pageId: number;
  /** verifyPage's verdict on the raw page. */
  fault: PageFault | null;
  lsn: number;
  /** The one stamp the payload holds (0: zeros), or null when it is mixed or garbage. */
  stamp: number | null;
  /** The decoded payload, for messages. */
  detail: string;
}

export interface StoreObservation {
  pageSize: number;
  pageCount: number;
  checkpointLsn: number;
  fileBytes: number;
  walSegments: number;
  /** Damage the next recovery would trip over. */
  walProblems: string[];
  /** Index = page id; [0] is the superblock (its payload is not decoded). */
  pages: PageObservation[];
}

/** Reads the data file, control file and WAL directory of a store nobody has open. */
export async function observeStore(dir: string): Promise<StoreObservation> {
  const control = await readControl(dir);
  const { pageSize, pageCount } = control;
  const file = await readFile(dataFileOf(dir));
  const pages: PageObservation[] = [];
  for (let p = 0; p < pageCount && (p + 1) * pageSize <= file.byteLength; p++) {
    const page = file.subarray(p * pageSize, (p + 1) * pageSize);
    const fault = verifyPage(page, p);
    if (p === 0) {
      pages.push({ pageId: 0, fault, lsn: pageLsn(page), stamp: 0, detail: 'superblock' });
      continue;
    }
    const d = decodePayload(page.subarray(PAGE_HEADER_SIZE), p);
    pages.push({ pageId: p, fault, lsn: pageLsn(page), stamp: d.stamp, detail: describeSegments(d.segments) });
  }
  // What the next recovery will need: segments with sound headers, a readable checkpoint record.
  const walDir = walDirOf(dir);
  const segments = await listSegments(walDir);
  const walProblems: string[] = [];
  for (const start of segments) {
    const h = await open(segmentPath(walDir, start), 'r');
    try {
      const header = Buffer.alloc(SEGMENT_HEADER_SIZE);
      await h.read(header, 0, SEGMENT_HEADER_SIZE, 0);
      const problem = checkSegmentHeader(header, control.storeId, start, control.segmentSize);
      if (problem) walProblems.push(`WAL segment ${segmentName(start)}: ${problem}`);
    } finally {
      await h.close();
    }
  }
  try {
    await readRecordFromDisk(walDir, control.storeId, control.segmentSize, control.checkpointLsn);
  } catch (err) {
    walProblems.push(`the checkpoint record the control file points at (LSN ${control.checkpointLsn}) cannot be read: ${describeError(err)}`);
  }
  return { pageSize, pageCount, checkpointLsn: control.checkpointLsn, fileBytes: file.byteLength, walSegments: segments.length, walProblems, pages };
}

// ---------------------------------------------------------------------------------------------
// The model

type Status = 'pending' | 'committed' | 'rolled-back';

interface StampInfo {
  readonly stamp: number;
  readonly pages: readonly number[];
  /** Position among all commit-reqs ever received: the commit order per page. */
  readonly seq: number;
  acked: boolean;
  status: Status;
  /** How an unacknowledged stamp was judged committed. */
  provenBy?: 'visible' | 'successor';
}

export interface CheckResult {
  violations: string[];
  /** Per page, the stamp it must hold. */
  expected: number[];
  /** Pending stamps judged committed / rolled back, and how. */
  committed: Set<number>;
  acked: number;
  inDoubtVisible: number;
  inDoubtProvenBySuccessor: number;
  inDoubtRolledBack: number;
}

export class CrashModel {
  /** Per page, the stamp it holds after the last checked recovery (0: never written). */
  readonly lastCommitted: number[];
  private readonly stamps = new Map<number, StampInfo>();
  private pending: StampInfo[] = [];
  private readonly aborted = new Set<number>();
  private seq = 0;
  /** Run id of each settled in-doubt stamp's verdict, for messages. */
  private readonly settledIn = new Map<number, number>();

  constructor(readonly pageCount: number) {
    this.lastCommitted = new Array<number>(pageCount).fill(0);
  }

  /** Feeds one writer message, in the order received. Returns a protocol problem, or null. */
  onMessage(msg: WriterMessage): string | null {
    switch (msg.t) {
      case 'commit-req': {
        if (this.stamps.has(msg.stamp)) return `commit-req for ${stampName(msg.stamp)} received twice`;
        const bad = msg.pages.find((p) => !Number.isInteger(p) || p < 1 || p >= this.pageCount);
        if (bad !== undefined || msg.pages.length === 0 || new Set(msg.pages).size !== msg.pages.length) return `commit-req for ${stampName(msg.stamp)} names pages ${JSON.stringify(msg.pages)}`;
        const info: StampInfo = { stamp: msg.stamp, pages: [...msg.pages], seq: this.seq++, acked: false, status: 'pending' };
        this.stamps.set(msg.stamp, info);
        this.pending.push(info);
        return null;
      }
      case 'ack': {
        const info = this.stamps.get(msg.stamp);
        if (!info || info.status !== 'pending') return `ack for ${stampName(msg.stamp)}, which has no open commit-req`;
        info.acked = true;
        return null;
      }
      case 'abort':
        if (this.stamps.has(msg.stamp)) return `abort for ${stampName(msg.stamp)} after its commit-req`;
        this.aborted.add(msg.stamp);
        return null;
      default:
        return null;
    }
  }

  /** Stamps whose commit was requested since the last settle, in order. */
  get pendingCount(): number {
    return this.pending.length;
  }

  /** The latest pending acknowledged stamp that is some page's expected value, if any (for tests). */
  lastAckedWriter(): { stamp: number; pageId: number } | null {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const s = this.pending[i]!;
      if (!s.acked) continue;
      const later = this.pending.slice(i + 1);
      const page = s.pages.find((p) => !later.some((l) => l.pages.includes(p)));
      if (page !== undefined) return { stamp: s.stamp, pageId: page };
    }
    return null;
  }

  /** Test hook: forget a stamp's messages, as if they had never arrived. */
  forget(stamp: number): void {
    const info = this.stamps.get(stamp);
    this.stamps.delete(stamp);
    if (info) this.pending = this.pending.filter((s) => s !== info);
  }

  /** Judges a recovered store against the model; does not change the model (see settle). */
  check(obs: StoreObservation): CheckResult {
    const violations: string[] = [];
    if (obs.pageCount !== this.pageCount) violations.push(`the store has ${obs.pageCount} pages; the model ${this.pageCount}`);
    if (obs.fileBytes !== obs.pageCount * obs.pageSize) violations.push(`the data file is ${obs.fileBytes} bytes, not ${obs.pageCount} pages of ${obs.pageSize}`);
    for (const w of obs.walProblems) violations.push(`after recovery, ${w}: the next recovery will fail`);
    if (obs.walSegments > 2) violations.push(`${obs.walSegments} WAL segments remain after recovery's checkpoint (expected at most 2: segments are not recycled)`);
    for (const o of obs.pages) {
      if (o.fault) violations.push(`page ${o.pageId}: fails its ${o.fault} check after recovery (LSN ${o.lsn}; payload ${o.detail})`);
      if (o.lsn >= obs.checkpointLsn) violations.push(`page ${o.pageId}: page LSN ${o.lsn} is not below the LSN of recovery's checkpoint ${obs.checkpointLsn}`);
      if (o.pageId > 0 && o.stamp === null) violations.push(`page ${o.pageId}: payload is not one transaction's whole pattern (torn or half-applied): ${o.detail}`);
    }

    // Which pending stamps committed.
    const visibleOn = new Map<number, number[]>();
    for (const o of obs.pages) {
      if (o.pageId === 0 || o.stamp === null || o.stamp === 0) continue;
      visibleOn.set(o.stamp, [...(visibleOn.get(o.stamp) ?? []), o.pageId]);
    }
    const successorOf = new Map<number, number>();
    const lastOnPage = new Map<number, StampInfo>();
    for (const s of this.pending) {
      for (const p of s.pages) {
        const prev = lastOnPage.get(p);
        if (prev && !successorOf.has(prev.stamp)) successorOf.set(prev.stamp, s.stamp);
        lastOnPage.set(p, s);
      }
    }
    const committed = new Set<number>();
    let acked = 0;
    let inDoubtVisible = 0;
    let inDoubtProvenBySuccessor = 0;
    let inDoubtRolledBack = 0;
    for (const s of this.pending) {
      if (s.acked) acked++;
      else if (visibleOn.has(s.stamp)) inDoubtVisible++;
      else if (successorOf.has(s.stamp)) inDoubtProvenBySuccessor++;
      else {
        inDoubtRolledBack++;
        continue;
      }
      committed.add(s.stamp);
    }

    const expected = [...this.lastCommitted];
    const writer = new Map<number, StampInfo>();
    for (const s of this.pending) {
      if (!committed.has(s.stamp)) continue;
      for (const p of s.pages) {
        expected[p] = s.stamp;
        writer.set(p, s);
      }
    }

    const describe = (stamp: number): string => {
      if (stamp === 0) return 'the initial zeros';
      const s = this.stamps.get(stamp);
      let status: string;
      if (!s) {
        if (this.aborted.has(stamp)) status = 'aborted';
        else if (stampRun(stamp) > 0) status = 'its commit was never requested (in flight at the kill, or aborted)';
        else status = 'not a stamp any writer made';
      } else if (s.status === 'committed') status = `committed, verdict of run ${this.settledIn.get(stamp) ?? '?'}`;
      else if (s.status === 'rolled-back') status = `in doubt in run ${stampRun(stamp)} and invisible after that run's recovery (judged rolled back)`;
      else if (s.acked) status = 'commit acknowledged';
      else if (committed.has(stamp)) status = `in doubt (commit requested, no ack), judged committed: ${visibleOn.has(stamp) ? `visible on page(s) ${visibleOn.get(stamp)!.join(', ')}` : `${stampName(successorOf.get(stamp)!)} locked one of its pages after it`}`;
      else status = 'in doubt (commit requested, no ack) and visible nowhere: judged rolled back';
      return `${stampName(stamp)} [${status}]`;
    };

    for (let p = 1; p < Math.min(obs.pages.length, this.pageCount); p++) {
      const got = obs.pages[p]!.stamp;
      if (got === null) continue; // reported above
      const want = expected[p]!;
      if (got === want) continue;
      const w = writer.get(p);
      const g = got === 0 ? null : this.stamps.get(got);
      const gotCommitted = got === 0 || g?.status === 'committed' || committed.has(got);
      const why: string[] = [];
      if (w?.acked) why.push('an acknowledged commit is lost');
      else if (w && visibleOn.has(w.stamp)) why.push(`in-doubt ${stampName(w.stamp)} is visible on page(s) ${visibleOn.get(w.stamp)!.join(', ')} but not here: not all-or-nothing`);
      else if (w) why.push(`in-doubt ${stampName(w.stamp)} was durable (a later transaction locked one of its pages) but is lost here`);
      if (!gotCommitted) why.push('data of a transaction that never committed is visible');
      if (why.length === 0) why.push('the page does not hold its last committed version');
      violations.push(`page ${p}: holds ${describe(got)}; expected ${describe(want)}: ${why.join('; ')}`);
    }
    return { violations, expected, committed, acked, inDoubtVisible, inDoubtProvenBySuccessor, inDoubtRolledBack };
  }

  /**
   * Makes a check's verdicts final: pending stamps become committed or rolled back, and each
   * page's expected stamp carries over. Where the check found a page wrong, what it holds is
   * taken as the new baseline so that one fault is reported once.
   */
  settle(result: CheckResult, obs: StoreObservation, runId: number): void {
    for (const s of this.pending) {
      s.status = result.committed.has(s.stamp) ? 'committed' : 'rolled-back';
      this.settledIn.set(s.stamp, runId);
    }
    this.pending = [];
    for (let p = 1; p < this.pageCount; p++) {
      const got = obs.pages[p]?.stamp;
      this.lastCommitted[p] = got !== null && got !== undefined && got !== result.expected[p] ? got : result.expected[p]!;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

export interface WriterParams {
  concurrency: number;
  checkpointEveryMs: number;
  checkpointWalBytes: number;
  cachePages: number;
}

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  killedByUs: boolean;
  stderr: string;
  stdout: string;
}

function tail(s: string, n = 2000): string {
  return s.length > n ? `…${s.slice(-n)}` : s;
}

function childEnv(fault: string | null, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.RA_FAULT;
  if (fault) env.RA_FAULT = fault;
  return { ...env, ...extra };
}

/** Collects a child's stdout/stderr and resolves when it has exited and its pipes closed. */
function watch(child: ChildProcess, state: { killedByUs: boolean }): Promise<ChildOutcome> {
  let stderr = '';
  let stdout = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (stderr = tail(stderr + c, 8000)));
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (stdout = tail(stdout + c, 8000)));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, killedByUs: state.killedByUs, stderr, stdout }));
  });
}

/**
 * A child that died loading its modules, before it touched the store: what happens when dist/
 * is rebuilt under a running harness. Store failures look different (a `fatal` message from the
 * writer, exit code 2 from the recovery child).
 */
function failedToLoad(o: ChildOutcome): boolean {
  return o.code === 1 && /SyntaxError|ERR_MODULE_NOT_FOUND|Cannot find module|does not provide an export/.test(o.stderr);
}

function killer(child: ChildProcess, state: { killedByUs: boolean }): () => void {
  return () => {
    if (child.exitCode === null && child.signalCode === null) {
      state.killedByUs = true;
      child.kill('SIGKILL');
    }
  };
}

// ---------------------------------------------------------------------------------------------
// The run

export interface HarnessOptions {
  seed: number;
  /** Store directory (created); a fresh temporary one by default, removed at the end unless `keep`. */
  dir?: string;
  keep?: boolean;
  /** Run exactly this many iterations… */
  iterations?: number;
  /** …or until this many kills and every fault point has fired (capped by maxIterations). */
  minKills?: number;
  maxIterations?: number;
  /** Start no new iteration after this long. */
  timeLimitMs?: number;
  pageCount?: number;
  /** Progress and summary lines. */
  log?: (line: string) => void;
  /** Log a progress line every n iterations (0: never). */
  progressEvery?: number;
  /** Fix writer parameters the harness otherwise picks at random. */
  writer?: Partial<WriterParams>;
  /**
   * I/O fault trials (ioFaults.ts): `mixed` adds one of each kind to every block of iterations,
   * `only` runs nothing else. Off by default.
   */
  ioFaults?: 'mixed' | 'only';
}

export interface CrashSummary {
  seed: number;
  dir: string;
  iterations: number;
  elapsedMs: number;
  kills: number;
  /** SIGKILLs sent by the harness at a random time. */
  randomKills: number;
  faultsTried: Record<FaultPoint, number>;
  faultsFired: Record<FaultPoint, number>;
  /** Fault kills by where they fired: in a writer or in a recovery child. */
  faultsFiredInWriter: Record<FaultPoint, number>;
  faultsFiredInRecovery: Record<FaultPoint, number>;
  /** I/O fault trials by kind, those whose fault fired, and writers killed after one. */
  ioFaultsTried: Record<IoFaultKind, number>;
  ioFaultsFired: Record<IoFaultKind, number>;
  ioFaultKills: number;
  /** short-enospc faults whose write took some but not all of its bytes. */
  ioShortWrites: number;
  /** Store operations that failed under I/O faults (writers report the first ten each). */
  ioStoreErrors: number;
  commitRequests: number;
  commitsAcked: number;
  inDoubtCommitted: number;
  inDoubtRolledBack: number;
  aborts: number;
  deadlockVictims: number;
  /** Completed recoveries: in this process, in recovery children, and on the writers' open. */
  recoveries: number;
  recoveriesInProcess: number;
  recoveriesKilled: number;
  maxRecoveryMs: number;
  totalRecordsRedone: number;
  totalRecordsUndone: number;
  totalLosersRolledBack: number;
  tornTails: number;
  /** Times a writer made the log end exactly at a WAL segment boundary. */
  segmentBoundaryEnds: number;
  /** Children restarted because they failed to load their modules (see failedToLoad). */
  loadRetries: number;
  /** The first 500 violations; `violationCount` counts them all. */
  violations: string[];
  violationCount: number;
}

type Kind = 'random' | `writer:${FaultPoint}` | 'recovery:recovery-redo' | 'recovery:recovery-undo' | 'recovery:other' | `io:${IoFaultKind}`;

const BLOCK: Kind[] = ['random', 'random', 'random', 'random', 'writer:wal-before-sync', 'writer:page-write-torn', 'writer:checkpoint-before-control', 'recovery:recovery-redo', 'recovery:recovery-undo', 'recovery:other'];
const IO_BLOCK: Kind[] = IO_FAULT_KINDS.map((k) => `io:${k}` as const);

/** An I/O fault trial: the fault, when to kill after the first store error, the library's report file. */
interface IoTrial {
  fault: IoFault;
  killAfterErrorMs: number;
  report: string;
}

/** What a writer run produced. */
interface WriterRun {
  outcome: ChildOutcome;
  messages: number;
  commitReqs: number;
  fatal: string | null;
  /** `store-error` messages, and the first one's text. */
  storeErrors: number;
  firstStoreError: string | null;
  /** Wall-clock time the writer had ended (ms since the epoch). */
  endedAt: number;
}

/** What `crash` hands `check`. */
export interface Crashed {
  runId: number;
  stats: RecoveryStats;
  /** A progress line describing the iteration. */
  line: string;
}

const zeroCounts = (): Record<FaultPoint, number> => Object.fromEntries(FAULT_POINTS.map((p) => [p, 0])) as Record<FaultPoint, number>;
const zeroIoCounts = (): Record<IoFaultKind, number> => Object.fromEntries(IO_FAULT_KINDS.map((k) => [k, 0])) as Record<IoFaultKind, number>;

export class CrashHarness {
  readonly rng: Prng;
  readonly model: CrashModel;
  readonly summary: CrashSummary;
  private schedule: Kind[] = [];
  private readonly t0 = performance.now();
  private runId = 0;
  private readonly log: (line: string) => void;
  /** The native addon's files as the run began: a child's SIGSEGV after they changed is the bench's (addonWatch.ts). */
  private readonly addon = AddonWatch.start();

  private constructor(
    readonly dir: string,
    readonly pageCount: number,
    private readonly options: HarnessOptions,
  ) {
    this.rng = new Prng(options.seed);
    this.model = new CrashModel(pageCount);
    this.log = options.log ?? (() => undefined);
    this.summary = {
      seed: options.seed,
      dir,
      iterations: 0,
      elapsedMs: 0,
      kills: 0,
      randomKills: 0,
      faultsTried: zeroCounts(),
      faultsFired: zeroCounts(),
      faultsFiredInWriter: zeroCounts(),
      faultsFiredInRecovery: zeroCounts(),
      ioFaultsTried: zeroIoCounts(),
      ioFaultsFired: zeroIoCounts(),
      ioFaultKills: 0,
      ioShortWrites: 0,
      ioStoreErrors: 0,
      commitRequests: 0,
      commitsAcked: 0,
      inDoubtCommitted: 0,
      inDoubtRolledBack: 0,
      aborts: 0,
      deadlockVictims: 0,
      recoveries: 0,
      recoveriesInProcess: 0,
      recoveriesKilled: 0,
      maxRecoveryMs: 0,
      totalRecordsRedone: 0,
      totalRecordsUndone: 0,
      totalLosersRolledBack: 0,
      tornTails: 0,
      segmentBoundaryEnds: 0,
      loadRetries: 0,
      violations: [],
      violationCount: 0,
    };
  }

  /** Creates the store (all pages zero) and a harness for it. */
  static async create(options: HarnessOptions): Promise<CrashHarness> {
    if (process.env.RA_FAULT) throw new Error('RA_FAULT is set in the harness process: its own recoveries would kill it');
    const dir = options.dir ?? (await mkdtemp(path.join(os.tmpdir(), 'ra-crash-')));
    const pageCount = options.pageCount ?? 96;
    const store = await PageStore.open(dir, { create: true, pageCount, pageSize: PAGE_SIZE, segmentSize: SEGMENT_SIZE, checkpointIntervalMs: 0 });
    await store.close();
    return new CrashHarness(dir, pageCount, options);
  }

  get violations(): readonly string[] {
    return this.summary.violations;
  }

  private violation(text: string): void {
    const s = this.summary;
    s.violationCount++;
    // One broken invariant can produce thousands: keep and print the first few hundred.
    if (s.violations.length < 500) s.violations.push(`iteration ${this.runId}: ${text}`);
    if (s.violationCount <= 100) this.log(`VIOLATION iteration ${this.runId}: ${text}`);
    else if (s.violationCount === 101) this.log('VIOLATION … further violations are counted, not printed');
  }

  /**
   * True, with a violation, when the native addon's files changed since the run began: this
   * process and its children would run changed code (a SIGSEGV of the bench, addonWatch.ts), or
   * another build. Checked as each iteration begins and before the recovery in this process.
   */
  private addonChanged(): boolean {
    const changed = this.addon.changes();
    if (changed === null) return false;
    this.violation(`${changed}; the run stops here`);
    return true;
  }

  /** Runs iterations as the options say; returns the summary. Removes a temporary store unless `keep`. */
  async run(): Promise<CrashSummary> {
    const o = this.options;
    const firedAll = () =>
      (o.ioFaults === 'only' || FAULT_POINTS.every((p) => this.summary.faultsFired[p] > 0)) && (o.ioFaults === undefined || IO_FAULT_KINDS.every((k) => this.summary.ioFaultsFired[k] > 0));
    try {
      for (;;) {
        const n = this.summary.iterations;
        if (o.iterations !== undefined && n >= o.iterations) break;
        if (o.iterations === undefined && o.minKills !== undefined && this.summary.kills >= o.minKills && firedAll()) break;
        if (o.maxIterations !== undefined && n >= o.maxIterations) break;
        if (o.timeLimitMs !== undefined && performance.now() - this.t0 > o.timeLimitMs) break;
        if (!(await this.iteration())) break;
      }
    } finally {
      this.summary.elapsedMs = Math.round(performance.now() - this.t0);
      if (!o.keep && !o.dir && this.summary.violations.length === 0) await rm(this.dir, { recursive: true, force: true });
    }
    return this.summary;
  }

  /** One iteration: write, kill, (crash recovery,) recover, check. False when the store is unusable. */
  async iteration(): Promise<boolean> {
    const crashed = await this.crash();
    return crashed !== null && (await this.check(crashed));
  }

  /**
   * The first half of an iteration: a writer killed, maybe recoveries killed, then recovery in
   * this process. Null when the store is unusable. The model then holds this run's messages,
   * unchecked until `check`.
   */
  async crash(): Promise<Crashed | null> {
    if (this.addonChanged()) return null;
    if (this.schedule.length === 0) {
      const io = this.options.ioFaults;
      this.schedule = this.rng.shuffle(io === 'only' ? [...IO_BLOCK] : io === 'mixed' ? [...BLOCK, ...IO_BLOCK] : [...BLOCK]);
    }
    const kind = this.schedule.shift()!;
    const runId = ++this.runId;
    const rng = this.rng;
    const s = this.summary;
    const params: WriterParams = {
      concurrency: rng.pick([1, 2, 4, 4, 6, 8]),
      checkpointEveryMs: rng.pick([0, 10, 30, 60, 150]),
      checkpointWalBytes: rng.pick([256 << 10, 1 << 20, 8 << 20]),
      cachePages: rng.pick([0, 0, 16, 24]),
    };
    const fixed = this.options.writer ?? {};
    let killAfterMs: number | null = rng.int(20, 300);
    let fault: string | null = null;
    let point: FaultPoint | null = null;
    if (kind.startsWith('writer:')) {
      point = kind.slice('writer:'.length) as FaultPoint;
      killAfterMs = null;
      if (point === 'wal-before-sync') fault = `${point}:${rng.int(1, 60)}`;
      else if (point === 'page-write-torn') fault = `${point}:${rng.int(1, 40)}`;
      else fault = `${point}:${rng.int(1, 6)}`;
      if (point !== 'wal-before-sync' && params.checkpointEveryMs === 0) params.checkpointEveryMs = rng.pick([10, 30, 60]);
    } else if (kind.startsWith('recovery:')) {
      // Leave work for recovery: many transactions in flight, WAL since the last checkpoint.
      params.concurrency = rng.pick([4, 6, 8]);
      params.checkpointEveryMs = rng.pick([0, 150]);
      params.checkpointWalBytes = 8 << 20;
      killAfterMs = rng.int(60, 300);
    }
    let io: IoTrial | null = null;
    if (kind.startsWith('io:')) {
      const f = pickIoFault(rng, kind.slice('io:'.length) as IoFaultKind);
      // Killed this long after the first store error (the writer goes on trying meanwhile), or
      // 1.5 s after it is ready if the fault never fires.
      io = { fault: f, killAfterErrorMs: rng.int(20, 200), report: path.join(path.dirname(this.dir), `${path.basename(this.dir)}.faultfs.${runId}`) };
      killAfterMs = 1500;
      if (needsCheckpoints(f) && params.checkpointEveryMs === 0) params.checkpointEveryMs = rng.pick([10, 30, 60]);
    }

    Object.assign(params, fixed);

    // ---- the writer
    let w = await this.runWriter(runId, params, fault, killAfterMs, io);
    for (let retry = 0; retry < 2 && w.messages === 0 && failedToLoad(w.outcome); retry++) {
      s.loadRetries++;
      this.log(`note: iteration ${runId}: the writer failed to load its modules (dist/ rebuilt under it?); retrying`);
      await sleep(1000);
      w = await this.runWriter(runId, params, fault, killAfterMs, io);
    }
    let ioHow = '';
    if (io) ioHow = await this.judgeIoTrial(io, w);
    if (w.outcome.signal === 'SIGKILL') {
      s.kills++;
      if (io && w.outcome.killedByUs) s.ioFaultKills++;
      else if (w.outcome.killedByUs) s.randomKills++;
      else if (point) {
        s.faultsFired[point]++;
        s.faultsFiredInWriter[point]++;
      } else this.violation(`writer killed by a SIGKILL the harness did not send (RA_FAULT ${fault ?? 'unset'})`);
    } else {
      this.violation(`writer ended with ${w.outcome.code !== null ? `exit code ${w.outcome.code}` : `signal ${w.outcome.signal}`}, not SIGKILL: ${w.fatal ?? tail(w.outcome.stderr)}${this.addon.noteFor(w.outcome.signal)}`);
    }
    if (point) s.faultsTried[point]++;

    // ---- crashing recoveries
    if (kind.startsWith('recovery:')) {
      const chain: string[] = [];
      const other = () => rng.pick(['wal-before-sync:1', 'wal-before-sync:2', 'page-write-torn:1', 'checkpoint-before-control:1']);
      chain.push(kind === 'recovery:other' ? other() : `${kind.slice('recovery:'.length)}:1`);
      if (rng.chance(0.35)) chain.push(rng.pick(['recovery-redo:1', 'recovery-undo:1', other()]));
      for (const f of chain) {
        const fp = f.slice(0, f.indexOf(':')) as FaultPoint;
        s.faultsTried[fp]++;
        let r = await this.runRecoverChild(f);
        for (let retry = 0; retry < 2 && failedToLoad(r); retry++) {
          s.loadRetries++;
          this.log(`note: iteration ${runId}: the recovery child failed to load its modules (dist/ rebuilt under it?); retrying`);
          await sleep(1000);
          r = await this.runRecoverChild(f);
        }
        if (r.signal === 'SIGKILL' && !r.killedByUs) {
          s.kills++;
          s.recoveriesKilled++;
          s.faultsFired[fp]++;
          s.faultsFiredInRecovery[fp]++;
        } else if (r.code === 0) {
          s.recoveries++;
        } else {
          this.violation(`recovery child (RA_FAULT=${f}) ended with ${r.code !== null ? `exit code ${r.code}` : `signal ${r.signal}`}: ${tail(r.stderr)}${this.addon.noteFor(r.signal)}`);
          if (r.killedByUs) return null;
        }
      }
    }

    // ---- recover here
    if (this.addonChanged()) return null;
    const t = performance.now();
    let stats: RecoveryStats;
    try {
      stats = await recover(this.dir);
    } catch (err) {
      this.violation(`recovery failed: ${describeError(err)}`);
      return null;
    }
    const wallMs = performance.now() - t;
    s.recoveries++;
    s.recoveriesInProcess++;
    s.maxRecoveryMs = Math.max(s.maxRecoveryMs, Math.round(wallMs * 10) / 10);
    s.totalRecordsRedone += stats.recordsRedone;
    s.totalRecordsUndone += stats.recordsUndone;
    s.totalLosersRolledBack += stats.transactionsRolledBack;
    if (stats.tornTail) s.tornTails++;
    const how = io ? ioHow : w.outcome.killedByUs ? `killed at ${killAfterMs} ms` : w.outcome.signal === 'SIGKILL' ? `fault ${fault}` : 'no kill';
    return {
      runId,
      stats,
      line: `${kind.padEnd(32)} ${how.padEnd(34)} c=${params.concurrency} ckpt=${params.checkpointEveryMs}ms cache=${params.cachePages || 'dflt'} commits ${w.commitReqs} | recovery ${wallMs.toFixed(0)} ms redo ${stats.recordsRedone} undo ${stats.recordsUndone} losers ${stats.transactionsRolledBack}`,
    };
  }

  /** The second half: reads the recovered store and checks it against the model, then settles the model. */
  async check(crashed: Crashed): Promise<boolean> {
    const s = this.summary;
    let obs: StoreObservation;
    try {
      obs = await observeStore(this.dir);
    } catch (err) {
      this.violation(`cannot read the recovered store: ${describeError(err)}`);
      return false;
    }
    const result = this.model.check(obs);
    for (const v of result.violations) this.violation(v);
    this.model.settle(result, obs, crashed.runId);
    s.commitsAcked += result.acked;
    s.inDoubtCommitted += result.inDoubtVisible + result.inDoubtProvenBySuccessor;
    s.inDoubtRolledBack += result.inDoubtRolledBack;
    s.iterations++;
    const every = this.options.progressEvery ?? 0;
    if (every > 0 && s.iterations % every === 0) {
      this.log(`[${s.iterations}] ${crashed.line} | acked ${result.acked} in-doubt +${result.inDoubtVisible + result.inDoubtProvenBySuccessor}/-${result.inDoubtRolledBack} | kills ${s.kills} violations ${s.violationCount}`);
    }
    return true;
  }

  /** Counts an I/O fault trial and checks what only it can show; returns a progress text. */
  private async judgeIoTrial(io: IoTrial, w: WriterRun): Promise<string> {
    const s = this.summary;
    const f = io.fault;
    s.ioFaultsTried[f.kind]++;
    const fired = await readFiredFault(io.report);
    await rm(io.report, { force: true });
    const what = `${describeIoFault(f)}, seed ${f.seed}`;
    if (fired) s.ioFaultsFired[f.kind]++;
    if (fired?.short) s.ioShortWrites++;
    if (w.storeErrors > 0 && !fired) this.violation(`the store failed though the I/O fault (${what}) never fired: ${w.firstStoreError}`);
    if (fired && w.storeErrors === 0 && w.endedAt - fired.atMs > 1000) {
      this.violation(`the I/O fault fired ${w.endedAt - fired.atMs} ms before the writer was killed, but no store operation failed (an error swallowed?): ${fired.line}`);
    }
    return `${what}: ${fired ? `fired, ${w.storeErrors} store errors` : 'never fired'}`;
  }

  private async runWriter(runId: number, params: WriterParams, fault: string | null, killAfterMs: number | null, io: IoTrial | null = null): Promise<WriterRun> {
    const args = [
      fixture('crashWriter.js'),
      ...['--store', this.dir, '--seed', String(this.rng.seed()), '--run-id', String(runId)],
      ...['--concurrency', String(params.concurrency), '--checkpoint-every-ms', String(params.checkpointEveryMs)],
      ...['--checkpoint-wal-bytes', String(params.checkpointWalBytes), '--cache-pages', String(params.cachePages), '--page-count', String(this.pageCount)],
      ...(io ? ['--tolerate-store-errors'] : []),
    ];
    const s = this.summary;
    const extraEnv = io ? ioFaultEnv(await faultLibrary(), await storeRealPath(this.dir), io.fault, io.report) : {};
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], env: childEnv(fault, extraEnv) });
    const state = { killedByUs: false };
    const kill = killer(child, state);
    const done = watch(child, state);
    let messages = 0;
    let commitReqs = 0;
    let fatal: string | null = null;
    let storeErrors = 0;
    let firstStoreError: string | null = null;
    /** The first failure of the WAL the writer reported: no commit may be acknowledged after it. */
    let walFailure: string | null = null;
    let pendingLine = '';
    const timers: NodeJS.Timeout[] = [];
    // A writer that is never ready, or whose fault point is never reached, is killed anyway.
    timers.push(
      setTimeout(() => {
        this.violation('writer not ready after 20 s');
        kill();
      }, 20_000),
    );
    const onLine = (line: string): void => {
      let msg: WriterMessage;
      try {
        msg = JSON.parse(line) as WriterMessage;
      } catch {
        this.violation(`unparsable message from the writer: ${JSON.stringify(line.slice(0, 200))}`);
        return;
      }
      messages++;
      const problem = this.model.onMessage(msg);
      if (problem) this.violation(problem);
      switch (msg.t) {
        case 'ready':
          clearTimeout(timers[0]);
          if (msg.recovery.redone > 0 || msg.recovery.rolledBack > 0) {
            this.violation(`the writer's open found work after a complete recovery: ${msg.recovery.redone} records to redo, ${msg.recovery.rolledBack} transactions to roll back`);
          }
          s.recoveries++;
          timers.push(setTimeout(kill, killAfterMs ?? 2_500));
          break;
        case 'commit-req':
          commitReqs++;
          s.commitRequests++;
          break;
        case 'ack':
          if (walFailure) this.violation(`${stampName(msg.stamp)} acknowledged after the WAL failed (${walFailure})`);
          break;
        case 'store-error':
          storeErrors++;
          s.ioStoreErrors++;
          if (msg.wal) walFailure ??= msg.error;
          if (firstStoreError === null) {
            firstStoreError = `${msg.phase}: ${msg.error}`;
            clearTimeout(timers[0]); // an open that failed sends no ready
            timers.push(setTimeout(kill, io?.killAfterErrorMs ?? 0));
          }
          break;
        case 'abort':
          s.aborts++;
          if (msg.deadlock) s.deadlockVictims++;
          break;
        case 'boundary':
          s.segmentBoundaryEnds++;
          break;
        case 'bad-read':
          this.violation(`writer: ${msg.detail}`);
          break;
        case 'fatal':
          fatal = msg.error;
          this.violation(`writer failed: ${msg.error}`);
          break;
      }
    };
    const fd3 = child.stdio[3] as Readable;
    fd3.setEncoding('utf8');
    fd3.on('data', (chunk: string) => {
      pendingLine += chunk;
      for (let nl = pendingLine.indexOf('\n'); nl >= 0; nl = pendingLine.indexOf('\n')) {
        const line = pendingLine.slice(0, nl);
        pendingLine = pendingLine.slice(nl + 1);
        onLine(line);
      }
    });
    try {
      const outcome = await done;
      // A line cut short by the kill was never wholly written: writeSync had not returned.
      return { outcome, messages, commitReqs, fatal, storeErrors, firstStoreError, endedAt: Date.now() };
    } finally {
      for (const t of timers) clearTimeout(t);
    }
  }

  private async runRecoverChild(fault: string): Promise<ChildOutcome> {
    const child = spawn(process.execPath, [fixture('crashRecover.js'), this.dir], { stdio: ['ignore', 'pipe', 'pipe'], env: childEnv(fault) });
    const state = { killedByUs: false };
    const kill = killer(child, state);
    const timer = setTimeout(() => {
      this.violation(`recovery child (RA_FAULT=${fault}) still running after 60 s`);
      kill();
    }, 60_000);
    try {
      return await watch(child, state);
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Runs the harness to completion. */
export async function runCrashHarness(options: HarnessOptions): Promise<CrashSummary> {
  const h = await CrashHarness.create(options);
  return h.run();
}

export function formatSummary(s: CrashSummary): string {
  const pts = (r: Record<FaultPoint, number>) => FAULT_POINTS.map((p) => `${p} ${r[p]}`).join(', ');
  const ioTrials = IO_FAULT_KINDS.reduce((n, k) => n + s.ioFaultsTried[k], 0);
  return [
    `crash harness: seed ${s.seed}, ${s.iterations} iterations in ${(s.elapsedMs / 1000).toFixed(1)} s (store ${s.dir})`,
    `  kills: ${s.kills} (${s.randomKills} random SIGKILLs, ${s.kills - s.randomKills - s.ioFaultKills} by fault points${ioTrials > 0 ? `, ${s.ioFaultKills} after I/O faults` : ''})`,
    `  faults fired / tried: ${FAULT_POINTS.map((p) => `${p} ${s.faultsFired[p]}/${s.faultsTried[p]}`).join(', ')}`,
    ...(ioTrials > 0
      ? [`  I/O faults fired / tried: ${IO_FAULT_KINDS.map((k) => `${k} ${s.ioFaultsFired[k]}/${s.ioFaultsTried[k]}`).join(', ')}; ${s.ioShortWrites} short writes; ${s.ioStoreErrors} store operations failed`]
      : []),
    `    in writers: ${pts(s.faultsFiredInWriter)}`,
    `    in recovery: ${pts(s.faultsFiredInRecovery)}`,
    `  commits: ${s.commitRequests} requested, ${s.commitsAcked} acknowledged; in doubt: ${s.inDoubtCommitted} resolved committed, ${s.inDoubtRolledBack} rolled back; ${s.aborts} aborts (${s.deadlockVictims} deadlock victims)`,
    `  recoveries: ${s.recoveries} completed (${s.recoveriesInProcess} checked here), ${s.recoveriesKilled} killed part-way; max ${s.maxRecoveryMs} ms; ${s.totalRecordsRedone} records redone, ${s.totalRecordsUndone} undone, ${s.totalLosersRolledBack} losers, ${s.tornTails} torn WAL tails; the log ended on a segment boundary ${s.segmentBoundaryEnds} times`,
    ...(s.loadRetries > 0 ? [`  children restarted after failing to load their modules: ${s.loadRetries}`] : []),
    `  violations: ${s.violationCount}`,
    ...s.violations.slice(0, 20).map((v) => `    ${v}`),
    ...(s.violationCount > 20 ? [`    … ${s.violationCount - 20} more`] : []),
  ].join('\n');
}

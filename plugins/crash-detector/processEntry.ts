/**
 * What the supervisor knows about one configured process. Mutated only by the supervisor, on
 * the main thread; `status()` is the snapshot everyone else sees.
 */
import type { Logger } from 'pino';
import type { SpawnedChild } from './childProcess.js';
import type { HangWatch } from './heartbeat.js';
import type { PidFileContent } from './pidFile.js';
import type { ProbeLoop } from './probes.js';
import type { WorkWatch } from './workWatch.js';
import { performance } from 'node:perf_hooks';
import { CpuMeter, readProcStat, readRssBytes } from './procStats.js';
import { RestartPolicy } from './restartPolicy.js';
import type { ProcessConfig, ProcessExit, ProcessMode, ProcessState, ProcessStatus } from './types.js';

export class ProcessEntry {
  readonly id: string;
  readonly mode: ProcessMode;
  readonly log: Logger;
  readonly policy: RestartPolicy;
  readonly cpu = new CpuMeter();

  state: ProcessState = 'stopped';
  /** Why a process gate holds it now (null: none does). */
  heldBy: string | null = null;
  /** The current instance: its pid and its start time in /proc (which tells a reused pid apart). */
  pid: number | null = null;
  startTime: string | null = null;
  startedAt: number | null = null;
  /** performance.now() at start, for uptimes that do not jump with the wall clock. */
  startedMono = 0;
  child: SpawnedChild | null = null;
  /** Set when the agent itself ends the instance (stop, restart, shutdown): its exit is no crash. */
  expectExit = false;
  /** The token the current instance's datagrams carry. */
  token: string | null = null;

  restarts = 0;
  crashes = 0;
  hangs = 0;
  lastExit: ProcessExit | null = null;
  lastHeartbeatAt: number | null = null;
  nextStartAt: number | null = null;
  cpuPercent: number | null = null;
  rssBytes: number | null = null;
  threads: number | null = null;

  hang: HangWatch | null = null;
  /** The work probe of a store's writer (workWatch.ts); `workHung` while it says the work is stuck. */
  work: WorkWatch | null = null;
  workHung = false;
  probes: ProbeLoop | null = null;
  pendingRestart: Promise<{ pid: number }> | null = null;
  /** Aborted by stop(id) and shutdown, to end a restart that is waiting out its backoff. */
  cancel = new AbortController();

  /** Attached: false once stop(id) said to stop watching. */
  watching = true;
  /** Attached: the instance last declared dead, so that a pid file still naming it is reported once. */
  reported: PidFileContent | null = null;
  /** Attached: a pid file without a pid was logged already. */
  invalidPidFileLogged = false;

  constructor(
    readonly cfg: ProcessConfig,
    parentLog: Logger,
  ) {
    this.id = cfg.id;
    this.mode = cfg.pidFile !== undefined ? 'attached' : 'supervised';
    this.log = parentLog.child({ process: cfg.id });
    const { backoff, limit } = cfg.restart;
    this.policy = new RestartPolicy({ initialMs: backoff.initial, maxMs: backoff.max, resetAfterMs: backoff.resetAfter, burst: limit.burst, withinMs: limit.within });
  }

  /** Forgets the current instance's resources (it exited or was detached). */
  /** CPU %, threads and RSS of the current instance from /proc (nothing when it is gone or not ours). */
  sampleResources(): void {
    if (this.pid === null) return;
    const st = readProcStat(this.pid);
    if (st === null || st.startTime !== this.startTime) return;
    this.cpuPercent = this.cpu.sample(st.cpuTicks, performance.now()) ?? this.cpuPercent;
    this.threads = st.threads;
    this.rssBytes = readRssBytes(this.pid) ?? this.rssBytes;
  }

  clearInstance(): void {
    this.pid = null;
    this.startTime = null;
    this.child = null;
    this.token = null;
    this.cpuPercent = null;
    this.rssBytes = null;
    this.threads = null;
    this.cpu.reset();
  }

  status(): ProcessStatus {
    return {
      id: this.id,
      mode: this.mode,
      state: this.state,
      pid: this.pid,
      startedAt: this.startedAt,
      restarts: this.restarts,
      crashes: this.crashes,
      hangs: this.hangs,
      lastExit: this.lastExit,
      lastHeartbeatAt: this.lastHeartbeatAt,
      nextStartAt: this.nextStartAt,
      cpuPercent: this.cpuPercent,
      rssBytes: this.rssBytes,
      threads: this.threads,
      store: this.cfg.store,
      adopted: this.child?.adopted ?? false,
      heldBy: this.heldBy,
    };
  }
}

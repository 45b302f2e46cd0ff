/**
 * The process supervisor: starts the configured processes (or attaches to them by pid file),
 * sees them exit or fall silent, publishes `process-crash` / `process-hang`, restarts them when
 * asked, under the restart policy, and samples their CPU, memory and threads.
 *
 * Everything runs on the main thread's event loop; a supervised child's exit is handled in its
 * 'exit' event, so the failure is published within the same turn that Node learns of the exit.
 *
 * What it starts is recorded under `dataDir` (processRecords.ts): after the agent's own crash, a
 * new agent adopts the instances that still run instead of starting duplicates that would only
 * crash-loop on their store's lock; an adopted instance's end is seen by polling (README.md).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import type { FailureSink } from '../../core/contracts/Failure.js';
import type { ProcessGate } from '../../core/contracts/ProcessGate.js';
import { describeError, raError } from '../../core/errors.js';
import { adoptChild, spawnChild, stopChild } from './childProcess.js';
import { findOrphan } from './orphans.js';
import { HangWatch, UdpHeartbeats } from './heartbeat.js';
import { readPidFile, sameInstance } from './pidFile.js';
import { ProbeLoop } from './probes.js';
import { WorkWatch, type WorkReading, type WorkStall } from './workWatch.js';
import { readProcStat, startedAtFromTicks } from './procStats.js';
import { ProcessEntry } from './processEntry.js';
import { InstanceRecords, checkRecord, processesDir } from './processRecords.js';
import {
  DATA_DIR_ENV,
  HEARTBEAT_ENV,
  PROCESS_CRASH,
  PROCESS_HANG,
  PROCESS_ID_ENV,
  processSubject,
  type ProcessConfig,
  type ProcessCrashEvidence,
  type ProcessHangEvidence,
  type ProcessStatus,
  type ProcessSupervisor,
  type StopOptions,
  type SupervisorTiming,
  logFields,
} from './types.js';
import { sleep } from '../../core/sleep.js';
import { STORE_PATH_ENV } from '../../core/contracts/StorePaths.js';

const DEFAULT_TIMING: SupervisorTiming = { attachPollMs: 100, sampleMs: 1000 };

export class Supervisor implements ProcessSupervisor {
  private readonly entries = new Map<string, ProcessEntry>();
  private readonly udp: UdpHeartbeats;
  private sink: FailureSink | null = null;
  private stopping = false;
  private readonly timers: NodeJS.Timeout[] = [];
  /** `<dataDir>/processes`: the started instances' records and their output files. */
  private readonly dir: string;
  private readonly records: InstanceRecords;
  /** Gate changes are applied one at a time, in order. */
  private gating: Promise<void> = Promise.resolve();
  private readonly unsubscribe: Array<() => void> = [];

  /** `dataDir`: the agent's, where what it started is recorded for a restarted agent to adopt. */
  constructor(
    processes: readonly ProcessConfig[],
    private readonly log: Logger,
    private readonly dataDir: string,
    private readonly timing: SupervisorTiming = DEFAULT_TIMING,
    private readonly gates: readonly ProcessGate[] = [],
    /** A store's current path (core StorePaths: a store moved off a failed disk is at its spare), handed to its process. */
    private readonly storePath: (storeId: string) => string | undefined = () => undefined,
    /** Reads the work counters of a store's owner (workWatch.ts); none: no work probe. */
    private readonly readWork: ((storeId: string, timeoutMs: number) => Promise<WorkReading>) | null = null,
  ) {
    for (const cfg of processes) this.entries.set(cfg.id, new ProcessEntry(cfg, log));
    this.udp = new UdpHeartbeats(log);
    this.dir = processesDir(dataDir);
    this.records = new InstanceRecords(this.dir);
    if (this.records.loadError !== null) log.warn({ note: this.records.loadError }, 'process records ignored: nothing will be adopted');
  }

  /**
   * Binds the heartbeat sockets, then starts the supervised processes — or adopts those an
   * earlier agent started and that still run — and attaches to the others. A socket that cannot
   * be bound fails the start (and nothing is left running); a command that cannot be started is
   * a crash of that process, not of the others.
   */
  async start(sink: FailureSink): Promise<void> {
    if (this.sink !== null || this.stopping) return;
    try {
      for (const e of this.entries.values()) if (e.cfg.heartbeat?.udp !== undefined) await this.udp.bind(e.cfg.heartbeat.udp, e.id);
    } catch (err) {
      await this.udp.close();
      throw err;
    }
    this.sink = sink;
    for (const e of this.entries.values()) {
      if (e.mode === 'attached') {
        this.pollAttached(e);
        continue;
      }
      try {
        if (await this.adoptInstance(e)) continue;
        e.heldBy = this.heldReason(e);
        if (e.heldBy !== null) {
          e.log.info({ heldBy: e.heldBy }, 'process not started: a gate holds it on this host');
          continue;
        }
        await this.spawnInstance(e);
      } catch (err) {
        this.publishCrash(e, { processId: e.id, mode: e.mode, pid: null, exitCode: null, signal: null, uptimeMs: null, lastHeartbeatAt: null, store: e.cfg.store, reason: 'spawn-failed', spawnError: describeError(err) });
      }
    }
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    for (const g of this.gates) this.unsubscribe.push(g.subscribe(() => this.gatesChanged()));
    if ([...this.entries.values()].some((e) => e.mode === 'attached')) every(this.timing.attachPollMs, () => this.pollAllAttached());
    every(this.timing.sampleMs, () => this.sampleAll());
  }

  /** Stops every supervised child (SIGTERM, SIGKILL after its grace), closes sockets and timers. Exits now are no crashes. */
  async shutdown(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    for (const u of this.unsubscribe.splice(0)) u();
    await this.gating;
    for (const t of this.timers.splice(0)) clearInterval(t);
    for (const e of this.entries.values()) e.cancel.abort();
    await Promise.all([...this.entries.values()].map((e) => (e.mode === 'supervised' ? this.terminate(e, e.cfg.stopGrace) : this.detach(e))));
    for (const e of this.entries.values()) {
      this.unwatchHeartbeats(e);
      if (e.state !== 'given-up') e.state = 'stopped';
    }
    await this.udp.close();
  }

  list(): ProcessStatus[] {
    return [...this.entries.values()].map((e) => e.status());
  }

  get(id: string): ProcessStatus | undefined {
    return this.entries.get(id)?.status();
  }

  restart(id: string, reason: string): Promise<{ pid: number }> {
    const e = this.require(id);
    if (e.mode === 'attached') {
      return Promise.reject(raError('RA_ERR_PROCESS_STATE', `process "${id}" is attached (pidFile ${e.cfg.pidFile}): the agent did not start it and cannot restart it`, { details: { processId: id } }));
    }
    if (this.sink === null || this.stopping) {
      return Promise.reject(raError('RA_ERR_PROCESS_STATE', `cannot restart process "${id}": the crash detector is ${this.stopping ? 'stopping' : 'not started'}`, { details: { processId: id } }));
    }
    const held = this.heldReason(e);
    if (held !== null) {
      return Promise.reject(raError('RA_ERR_PROCESS_STATE', `process "${id}" may not run on this host now: ${held}`, { details: { processId: id, heldBy: held } }));
    }
    e.pendingRestart ??= this.restartNow(e, reason).finally(() => {
      e.pendingRestart = null;
    });
    return e.pendingRestart;
  }

  async stop(id: string, options: StopOptions = {}): Promise<void> {
    const e = this.require(id);
    e.cancel.abort();
    e.cancel = new AbortController();
    if (e.mode === 'attached') {
      e.watching = false;
      this.detach(e);
      e.state = 'stopped';
      return;
    }
    await this.terminate(e, options.graceMs ?? e.cfg.stopGrace);
    if (e.child === null) e.state = 'stopped';
  }

  // ---- process gates (core/contracts/ProcessGate.ts) ----------------------------------------

  /** The first gate's reason to hold `e`, or null. A gate that throws holds it (and says why). */
  private heldReason(e: ProcessEntry): string | null {
    for (const g of this.gates) {
      try {
        const r = g.hold({ id: e.id, store: e.cfg.store });
        if (r !== null) return `${g.id}: ${r}`;
      } catch (err) {
        return `${g.id}: the gate failed (${describeError(err)})`;
      }
    }
    return null;
  }

  /** A gate's answer may have changed: stop what is now held, start what is no longer held. */
  private gatesChanged(): void {
    this.gating = this.gating.then(async () => {
      for (const e of this.entries.values()) {
        if (e.mode !== 'supervised' || this.stopping) continue;
        const was = e.heldBy;
        e.heldBy = this.heldReason(e);
        if (e.heldBy !== null && e.child !== null) {
          e.log.info({ heldBy: e.heldBy, processPid: e.pid }, 'a gate holds this process on this host now: stopping it');
          e.cancel.abort();
          e.cancel = new AbortController();
          await this.terminate(e, e.cfg.stopGrace);
        } else if (e.heldBy === null && was !== null && e.child === null && e.state !== 'given-up') {
          e.log.info({ was }, 'no gate holds this process any more: starting it');
          try {
            await this.spawnInstance(e);
          } catch (err) {
            this.publishCrash(e, { processId: e.id, mode: e.mode, pid: null, exitCode: null, signal: null, uptimeMs: null, lastHeartbeatAt: null, store: e.cfg.store, reason: 'spawn-failed', spawnError: describeError(err) });
          }
        }
      }
    }).catch((err: unknown) => this.log.error({ err: describeError(err) }, 'applying a process gate change failed'));
  }

  // ---- supervised processes ----------------------------------------------------------------

  private async restartNow(e: ProcessEntry, reason: string): Promise<{ pid: number }> {
    const signal = e.cancel.signal;
    const now = Date.now();
    const running = e.child !== null;
    const lastUptime = running && e.startedAt !== null ? now - e.startedAt : (e.lastExit?.uptimeMs ?? null);
    const plan = e.policy.plan(now, lastUptime);
    if (!plan.allowed) {
      const { burst, within } = e.cfg.restart.limit;
      if (!running) e.state = 'given-up';
      const details = { processId: e.id, startsInWindow: plan.startsInWindow, burst, withinMs: within, reason };
      e.log.error(details, 'started too often: giving up on restarting it (escalate)');
      throw raError(
        'RA_ERR_PROCESS_GIVEN_UP',
        `process "${e.id}" was started ${plan.startsInWindow} times within ${within} ms (restart.limit allows ${burst}); the agent gives up restarting it`,
        { details },
      );
    }
    if (running) await this.terminate(e, e.cfg.stopGrace);
    const waitMs = Math.max(0, (e.lastExit?.at ?? Date.now()) + plan.delayMs - Date.now());
    e.nextStartAt = Date.now() + waitMs;
    try {
      await sleep(waitMs, signal);
    } finally {
      e.nextStartAt = null;
    }
    if (signal.aborted || this.stopping) {
      throw raError('RA_ERR_PROCESS_STATE', `restart of process "${e.id}" cancelled: it was stopped meanwhile`, { details: { processId: e.id } });
    }
    const pid = await this.spawnInstance(e);
    e.restarts++;
    e.log.info({ processPid: pid, reason, backoffMs: plan.delayMs, waitedMs: Math.round(waitMs) }, 'process restarted');
    return { pid };
  }

  /** Spawns the command; the new instance is watched (exit, heartbeats, resources) from here on. */
  private async spawnInstance(e: ProcessEntry): Promise<number> {
    const hb = e.cfg.heartbeat;
    // A fresh token per start: datagrams from an earlier instance (or anything else) never count.
    const token = hb?.udp !== undefined ? (hb.token ?? randomBytes(16).toString('hex')) : null;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...e.cfg.env,
      [PROCESS_ID_ENV]: e.id,
      [DATA_DIR_ENV]: this.dataDir,
      [HEARTBEAT_ENV]: token !== null ? this.udp.url(hb!.udp!, token) : undefined,
      [STORE_PATH_ENV]: e.cfg.store !== undefined ? this.storePath(e.cfg.store) : undefined,
    };
    e.policy.recordStart(Date.now());
    let spawned;
    try {
      spawned = await spawnChild(e.cfg, env, e.log, this.dir, (pid, code, signal) => this.onExit(e, pid, code, signal));
    } catch (err) {
      e.state = 'exited';
      e.crashes++;
      e.lastExit = { pid: null, code: null, signal: null, at: Date.now(), uptimeMs: null };
      e.log.error({ err: describeError(err) }, 'process could not be started');
      throw err;
    }
    e.child = spawned;
    e.pid = spawned.pid;
    e.startTime = readProcStat(spawned.pid)?.startTime ?? null;
    if (e.startTime !== null) {
      this.saveRecord(e.id, { pid: spawned.pid, startTime: e.startTime, argv: [e.cfg.command!, ...e.cfg.args], cwd: e.cfg.cwd!, token: hb?.token === undefined ? token : null });
    }
    e.startedAt = Date.now();
    e.startedMono = performance.now();
    e.expectExit = false;
    e.token = token;
    e.lastHeartbeatAt = null;
    e.state = 'running';
    this.watchHeartbeats(e);
    e.sampleResources();
    e.log.info({ processPid: spawned.pid, command: e.cfg.command, args: e.cfg.args }, 'process started');
    return spawned.pid;
  }

  /**
   * Adopts the instance an earlier agent of this dataDir started, when its record names a
   * process that still runs (same pid, start time and command line): it keeps its pid, and is
   * watched (by polling, heartbeats, resources) from here on. One started with another command
   * line or cwd than the config now says is adopted only to be stopped. False when there is
   * nothing to adopt.
   */
  private async adoptInstance(e: ProcessEntry): Promise<boolean> {
    let rec = this.records.get(e.id);
    if (rec === undefined) {
      // No record (the file was lost): the orphan an earlier agent of this dataDir started, found
      // by the environment it gave it (orphans.ts), else nothing to adopt.
      rec = findOrphan({ id: e.id, dataDir: this.dataDir, argv: [e.cfg.command!, ...e.cfg.args], cwd: e.cfg.cwd!, exclude: new Set([process.pid]) }) ?? undefined;
      if (rec === undefined) return false;
      e.log.info({ processPid: rec.pid }, 'no record of this process, but an earlier agent of this dataDir started the live process found: adopting it');
      this.saveRecord(e.id, rec);
    }
    const found = checkRecord(rec);
    if (found !== 'alive') {
      e.log.info({ processPid: rec.pid, found }, found === 'gone' ? 'the instance an earlier agent started is gone' : 'the recorded pid runs another command now; leaving it alone');
      this.deleteRecord(e.id);
      return false;
    }
    const now = Date.now();
    e.child = adoptChild(e.cfg, rec.pid, rec.startTime, e.log, this.dir, this.timing.attachPollMs, (pid, code, signal) => this.onExit(e, pid, code, signal));
    e.pid = rec.pid;
    e.startTime = rec.startTime;
    e.startedAt = startedAtFromTicks(rec.startTime, now) ?? now;
    e.startedMono = performance.now() - (now - e.startedAt);
    e.expectExit = false;
    e.token = e.cfg.heartbeat?.token ?? rec.token;
    e.lastHeartbeatAt = null;
    e.state = 'running';
    this.watchHeartbeats(e);
    e.sampleResources();
    e.log.info({ processPid: rec.pid, startedAt: new Date(e.startedAt).toISOString() }, 'adopted the process an earlier agent started');
    const argv = [e.cfg.command!, ...e.cfg.args];
    if (rec.cwd === e.cfg.cwd && rec.argv.length === argv.length && rec.argv.every((a, i) => a === argv[i])) return true;
    e.log.warn({ processPid: rec.pid, was: rec.argv, now: argv }, 'the adopted process runs another command line than the config says: stopping it to start the configured one');
    await this.terminate(e, e.cfg.stopGrace);
    return false;
  }

  private saveRecord(id: string, rec: Parameters<InstanceRecords['set']>[1]): void {
    try {
      this.records.set(id, rec);
    } catch (err) {
      this.log.error({ err: describeError(err), processId: id }, 'cannot record the started process: a restarted agent will not adopt it');
    }
  }

  private deleteRecord(id: string): void {
    try {
      this.records.delete(id);
    } catch (err) {
      this.log.error({ err: describeError(err), processId: id }, 'cannot update the process records');
    }
  }

  private onExit(e: ProcessEntry, pid: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (e.child?.pid !== pid) return;
    const adopted = e.child.adopted;
    this.deleteRecord(e.id);
    const at = Date.now();
    const uptimeMs = Math.round(performance.now() - e.startedMono);
    const lastHeartbeatAt = e.lastHeartbeatAt;
    this.unwatchHeartbeats(e);
    e.clearInstance();
    e.lastExit = { pid, code, signal, at, uptimeMs };
    if (e.expectExit || this.stopping) {
      e.state = 'stopped';
      e.log.info({ processPid: pid, exitCode: code, signal }, 'process stopped');
      return;
    }
    e.state = 'exited';
    if (code === 0 && signal === null && e.cfg.restart.policy !== 'always') {
      // A clean exit is the process's own decision; as with systemd, only `always` restarts it.
      e.log.info({ processPid: pid, exitCode: code, uptimeMs, policy: e.cfg.restart.policy }, 'process exited cleanly (code 0); its restart policy does not restart a clean exit');
      return;
    }
    e.crashes++;
    // An adopted process is not our child: no exit code, no signal, only that it is gone.
    const how = adopted ? { reason: 'gone' as const, adopted: true } : { reason: 'exit' as const };
    this.publishCrash(e, { processId: e.id, mode: e.mode, pid, exitCode: code, signal, uptimeMs, lastHeartbeatAt, store: e.cfg.store, ...how });
  }

  /** Ends the running instance: SIGTERM (and SIGCONT), SIGKILL after `graceMs`. */
  private async terminate(e: ProcessEntry, graceMs: number): Promise<void> {
    const spawned = e.child;
    if (spawned === null) return;
    e.expectExit = true;
    await stopChild(spawned, graceMs, () => e.log.warn({ processPid: spawned.pid, graceMs }, 'process did not stop within its grace period; SIGKILL'));
  }

  // ---- attached processes ------------------------------------------------------------------

  private pollAllAttached(): void {
    for (const e of this.entries.values()) if (e.mode === 'attached') this.pollAttached(e);
  }

  /** Checks the attached instance by pid and start time, or looks for one in the pid file. */
  private pollAttached(e: ProcessEntry): void {
    if (!e.watching || this.stopping) return;
    if (e.pid !== null) {
      const st = readProcStat(e.pid);
      if (st !== null && st.startTime === e.startTime && st.state !== 'Z' && st.state !== 'X') return;
      this.attachedDied(e, st !== null && st.startTime !== e.startTime ? 'pid-reused' : 'gone');
    }
    const content = readPidFile(e.cfg.pidFile!);
    if (content === 'invalid') {
      if (!e.invalidPidFileLogged) e.log.warn({ pidFile: e.cfg.pidFile }, 'pid file does not start with a pid; waiting for a valid one');
      e.invalidPidFileLogged = true;
      return;
    }
    e.invalidPidFileLogged = false;
    if (content === null) {
      if (e.state !== 'exited') e.state = 'stopped';
      return;
    }
    if (e.reported !== null && sameInstance(e.reported, content)) return;
    const st = readProcStat(content.pid);
    const alive = st !== null && st.state !== 'Z' && st.state !== 'X';
    if (alive && (content.startTime === null || st.startTime === content.startTime)) {
      this.attach(e, content.pid, st.startTime);
      return;
    }
    // A stale pid file: its process is gone, or its pid now names another process.
    e.reported = content;
    this.attachedExited(e, content.pid, null, null, alive ? 'pid-reused' : 'gone');
  }

  private attach(e: ProcessEntry, pid: number, startTime: string): void {
    const now = Date.now();
    e.pid = pid;
    e.startTime = startTime;
    e.startedAt = startedAtFromTicks(startTime, now) ?? now;
    e.startedMono = performance.now() - (now - e.startedAt);
    e.token = e.cfg.heartbeat?.token ?? null;
    e.lastHeartbeatAt = null;
    e.reported = null;
    e.state = 'running';
    this.watchHeartbeats(e);
    e.sampleResources();
    e.log.info({ processPid: pid, startedAt: new Date(e.startedAt).toISOString() }, 'attached to process');
  }

  private attachedDied(e: ProcessEntry, reason: 'gone' | 'pid-reused'): void {
    const pid = e.pid!;
    const uptimeMs = e.startedAt !== null ? Date.now() - e.startedAt : null;
    const lastHeartbeatAt = e.lastHeartbeatAt;
    e.reported = { pid, startTime: e.startTime };
    this.unwatchHeartbeats(e);
    e.clearInstance();
    this.attachedExited(e, pid, uptimeMs, lastHeartbeatAt, reason);
  }

  /** Records and publishes the end of an attached process (no exit code: it was not our child). */
  private attachedExited(e: ProcessEntry, pid: number, uptimeMs: number | null, lastHeartbeatAt: number | null, reason: 'gone' | 'pid-reused'): void {
    e.lastExit = { pid, code: null, signal: null, at: Date.now(), uptimeMs };
    e.state = 'exited';
    e.crashes++;
    this.publishCrash(e, { processId: e.id, mode: e.mode, pid, exitCode: null, signal: null, uptimeMs, lastHeartbeatAt, store: e.cfg.store, reason });
  }

  /** Stops watching an attached instance without judging it. */
  private detach(e: ProcessEntry): void {
    if (e.mode !== 'attached') return;
    this.unwatchHeartbeats(e);
    e.clearInstance();
  }

  // ---- heartbeats and resources ------------------------------------------------------------

  private watchHeartbeats(e: ProcessEntry): void {
    this.watchWork(e);
    const hb = e.cfg.heartbeat;
    if (hb === undefined) return;
    if (hb.udp !== undefined && e.token !== null) this.udp.register(hb.udp, e.token, () => this.onBeat(e));
    e.hang = new HangWatch(hb.timeout, () => this.onHang(e));
    e.hang.start();
    if (hb.http !== undefined || hb.tcp !== undefined) {
      e.probes = new ProbeLoop({ http: hb.http, tcp: hb.tcp, intervalMs: hb.interval, timeoutMs: hb.timeout }, () => this.onBeat(e));
      e.probes.start();
    }
  }

  private unwatchHeartbeats(e: ProcessEntry): void {
    const udp = e.cfg.heartbeat?.udp;
    if (udp !== undefined && e.token !== null) this.udp.unregister(udp, e.token);
    e.hang?.stop();
    e.probes?.stop();
    e.work?.stop();
    e.hang = null;
    e.probes = null;
    e.work = null;
    e.workHung = false;
  }

  /** The work probe of a store's writer, per instance (a new instance starts with a fresh judge). */
  private watchWork(e: ProcessEntry): void {
    const store = e.cfg.store;
    const ww = e.cfg.workWatch;
    if (store === undefined || this.readWork === null || !ww.enabled) return;
    const read = this.readWork;
    e.work = new WorkWatch({
      intervalMs: ww.interval,
      timeoutMs: ww.timeout,
      read: (timeoutMs) => read(store, timeoutMs),
      onStall: (stall) => this.onWorkStall(e, stall),
      onResume: () => {
        if (!e.workHung) return;
        e.workHung = false;
        // Still silent: the heartbeat's hang goes on (its next heartbeat ends it).
        if (e.state === 'hung' && e.hang?.silent !== true) e.state = 'running';
        e.log.info({ processPid: e.pid }, 'commits resumed');
      },
    });
    e.work.start();
  }

  private onBeat(e: ProcessEntry): void {
    e.lastHeartbeatAt = Date.now();
    // A hang of its work (workHung) is not ended by a heartbeat: the heartbeat never stopped.
    if (e.hang?.beat() && e.state === 'hung' && !e.workHung) {
      e.state = 'running';
      e.log.info({ processPid: e.pid }, 'heartbeats resumed');
    }
  }

  private onHang(e: ProcessEntry): void {
    if (e.state !== 'running' || e.pid === null) return;
    if (e.child?.adopted) {
      // Silent because it died: a zombie waiting for init to reap it; its exit is reported once reaped.
      const st = readProcStat(e.pid);
      if (st === null || st.state === 'Z' || st.state === 'X') return;
    }
    e.state = 'hung';
    e.hangs++;
    const evidence: ProcessHangEvidence = { processId: e.id, mode: e.mode, pid: e.pid, lastHeartbeatAt: e.lastHeartbeatAt, timeoutMs: e.hang!.timeoutMs, store: e.cfg.store, reason: 'silence' };
    this.publish(PROCESS_HANG, e, { ...evidence });
    e.log.warn(logFields(evidence), 'process hangs: no heartbeat within the timeout');
  }

  /** Heartbeats may still come: the work loop is what is stuck (workWatch.ts). */
  private onWorkStall(e: ProcessEntry, work: WorkStall): void {
    if (e.state !== 'running' || e.pid === null) return;
    e.state = 'hung';
    e.workHung = true;
    e.hangs++;
    const evidence: ProcessHangEvidence = { processId: e.id, mode: e.mode, pid: e.pid, lastHeartbeatAt: e.lastHeartbeatAt, timeoutMs: e.cfg.workWatch.timeout, store: e.cfg.store, reason: 'no-work', work };
    this.publish(PROCESS_HANG, e, { ...evidence });
    const beat = e.lastHeartbeatAt === null ? 'no heartbeat yet' : `heartbeat ${Date.now() - e.lastHeartbeatAt} ms ago`;
    e.log.warn(
      logFields(evidence),
      `process hangs: ${beat}, no commit for ${(work.stalledMs / 1000).toFixed(1)} s while ${work.activeTransactions} transaction(s) are open (${work.lockWaits} waiting for a lock)${work.unanswered ? ', and its store no longer answers' : ''}`,
    );
  }

  private sampleAll(): void {
    for (const e of this.entries.values()) e.sampleResources();
  }

  // ---- publishing --------------------------------------------------------------------------

  private publishCrash(e: ProcessEntry, evidence: ProcessCrashEvidence): void {
    this.publish(PROCESS_CRASH, e, { ...evidence });
    e.log.warn(logFields(evidence), evidence.reason === 'spawn-failed' ? 'process could not be started' : 'process died');
  }

  private publish(kind: string, e: ProcessEntry, evidence: Record<string, unknown>): void {
    try {
      this.sink?.publish({ kind, priority: 'P1', subject: processSubject(e.id), evidence });
    } catch (err) {
      this.log.error({ err: describeError(err), kind, processId: e.id }, 'could not publish a failure');
    }
  }

  private require(id: string): ProcessEntry {
    const e = this.entries.get(id);
    if (!e) {
      throw raError('RA_ERR_USAGE', `no process with id "${id}" in the config (have: ${[...this.entries.keys()].join(', ') || 'none'})`, { details: { processId: id } });
    }
    return e;
  }
}

/**
 * The process supervisor, as other plugins see it: the service that starts, restarts and stops
 * the config's `processes:` and reports their state (the crash detector provides it; the
 * restart-process action, the health monitor and the HTTP API use it), and the failures about
 * processes it publishes.
 */
import type { InjectionToken } from 'tsyringe';
import { createToken } from '../token.js';

/** `supervised`: the agent started it (config `command`); `attached`: found through its `pidFile`. */
export type ProcessMode = 'supervised' | 'attached';

/**
 * - `running`: alive (and heartbeating, if it has a heartbeat);
 * - `hung`: alive but silent for longer than `heartbeat.timeout`;
 * - `exited`: died without being asked to (a crash, or a clean exit nobody asked for);
 * - `stopped`: not running because the agent stopped it, or (attached) no pid file yet;
 * - `given-up`: restarted too often (`restart.limit`); the agent will not restart it on its own.
 */
export type ProcessState = 'running' | 'exited' | 'hung' | 'stopped' | 'given-up';

/** How a process last ended. For an attached process code and signal are unknown (null). */
export interface ProcessExit {
  /** Null when the command could not be started at all. */
  readonly pid: number | null;
  readonly code: number | null;
  readonly signal: string | null;
  /** Milliseconds since the epoch. */
  readonly at: number;
  readonly uptimeMs: number | null;
}

/** A process as `/status` and the restart action see it. */
export interface ProcessStatus {
  readonly id: string;
  readonly mode: ProcessMode;
  readonly state: ProcessState;
  /** The pid of the running (or hung) instance; null when none runs. */
  readonly pid: number | null;
  /** When the current (or last) instance started, ms since the epoch. */
  readonly startedAt: number | null;
  /** Starts after the first one. */
  readonly restarts: number;
  /** Exits nobody asked for, and hangs, since the agent started. */
  readonly crashes: number;
  readonly hangs: number;
  readonly lastExit: ProcessExit | null;
  /** The last heartbeat (datagram or successful probe) of the current instance, ms since the epoch. */
  readonly lastHeartbeatAt: number | null;
  /** When a restart that is waiting out its backoff will start the process. */
  readonly nextStartAt: number | null;
  /** CPU time over the last second, in percent of one core (may exceed 100). Sampled every second. */
  readonly cpuPercent: number | null;
  readonly rssBytes: number | null;
  readonly threads: number | null;
  /** The store this process owns, from the config. */
  readonly store: string | undefined;
  /** True when the running instance was started by an earlier agent (which crashed) and adopted by this one. */
  readonly adopted?: boolean;
  /** Why a process gate (ProcessGate.ts) keeps it from running on this host now; null when none does. */
  readonly heldBy?: string | null;
}

/** What a stop may be told: `graceMs: 0` is SIGKILL at once (for a hung process). */
export interface StopOptions {
  /** Time between SIGTERM and SIGKILL; default the process's `stopGrace`. */
  readonly graceMs?: number;
}

/**
 * Supervises the configured processes: starts them, sees them exit or hang, restarts them when
 * asked (the restart-process healing action, the HTTP API), reports their state and resources.
 */
export interface ProcessSupervisor {
  /** Every configured process, in config order. */
  list(): ProcessStatus[];
  /** One process, or undefined when no process has that id. */
  get(id: string): ProcessStatus | undefined;
  /**
   * Starts the process again (stopping it first if it runs), after its backoff: the wait since
   * its last exit is `restart.backoff.initial`, doubling per restart up to `max`, back to
   * `initial` once an instance stayed up `resetAfter`. Refuses with RA_ERR_PROCESS_GIVEN_UP, and
   * marks the process `given-up`, when more than `restart.limit.burst` starts would fall within
   * `restart.limit.within`. Concurrent calls share one restart. Resolves once it has been spawned.
   */
  restart(id: string, reason: string): Promise<{ pid: number }>;
  /** Stops a supervised process (SIGTERM, SIGKILL after the grace); stops watching an attached one. Not a crash. */
  stop(id: string, options?: StopOptions): Promise<void>;
}

/** The failure kinds the crash detector publishes (both P1). */
export const PROCESS_CRASH = 'process-crash';
export const PROCESS_HANG = 'process-hang';

/** The failure subject of a process. */
export function processSubject(id: string): string {
  return `process:${id}`;
}

/** Evidence of a `process-crash` failure. */
export interface ProcessCrashEvidence {
  readonly processId: string;
  readonly mode: ProcessMode;
  /** Null when the command could not be started at all. */
  readonly pid: number | null;
  /** Null when it died by a signal, or when it was attached or adopted (not our child: unknown). */
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly uptimeMs: number | null;
  readonly lastHeartbeatAt: number | null;
  readonly store: string | undefined;
  /**
   * Attached and adopted processes: `gone` (no such pid, or a zombie) or `pid-reused` (the pid
   * now names another process).
   */
  readonly reason?: 'exit' | 'spawn-failed' | 'gone' | 'pid-reused';
  /** True when it was adopted from an earlier agent: not this agent's child, so its exit code and signal are unknown. */
  readonly adopted?: boolean;
  /** When the command could not even be started. */
  readonly spawnError?: string;
}

/** Evidence of a `process-hang` failure. */
export interface ProcessHangEvidence {
  readonly processId: string;
  readonly mode: ProcessMode;
  readonly pid: number;
  readonly lastHeartbeatAt: number | null;
  readonly timeoutMs: number;
  readonly store: string | undefined;
  /**
   * `silence`: no heartbeat within `timeoutMs` (absent in older evidence); `no-work`: heartbeats
   * come, but the store's owner committed nothing for `work.stalledMs` while transactions were open.
   */
  readonly reason?: 'silence' | 'no-work';
  readonly work?: { readonly stalledMs: number; readonly commits: number; readonly activeTransactions: number; readonly lockWaits: number; readonly unanswered: boolean };
}

/** Token under which the crash detector provides its `ProcessSupervisor`. */
export const ProcessSupervisor: InjectionToken<ProcessSupervisor> = createToken<ProcessSupervisor>('recovery-agent.ProcessSupervisor');

/** Runtime guard: true when `v` implements `ProcessSupervisor`. */
export function isProcessSupervisor(v: unknown): v is ProcessSupervisor {
  const s = v as ProcessSupervisor | null;
  return typeof s === 'object' && s !== null && typeof s.list === 'function' && typeof s.get === 'function' &&
    typeof s.restart === 'function' && typeof s.stop === 'function';
}

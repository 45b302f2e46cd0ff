/**
 * Starting a supervised process and talking to it by signal.
 *
 * Each child runs in a session and process group of its own (`detached`): a Ctrl-C meant for
 * the agent's terminal does not reach it behind the agent's back (the agent stops it, in
 * order, and an exit while stopping is no crash), and signals go to the whole group, so a
 * command that is a shell script takes its children with it.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { raError } from '../../core/errors.js';
import { OutputTail, openForChild } from './outputFiles.js';
import { readProcStat } from './procStats.js';
import type { ProcessConfig } from './types.js';

/** A running instance: a child the agent spawned, or one it adopted from an earlier agent. */
export interface SpawnedChild {
  readonly pid: number;
  /** True when an earlier agent started it: not our child, its exit is seen by polling and its exit code is unknown. */
  readonly adopted: boolean;
  /** Settles once, when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How long an adopted process that died may stay a zombie before its exit is reported anyway. */
const ZOMBIE_WAIT_MS = 2000;

type OnExit = (pid: number, code: number | null, signal: NodeJS.Signals | null) => void;

/**
 * Spawns `cfg.command`, its stdout and stderr going to files under `outputDir` (outputFiles.ts
 * says why not pipes) that are tailed into the log. `onExit` is attached before this returns and
 * runs straight from the child's 'exit' event, the earliest moment Node knows, after the output
 * written so far has been logged. Throws RA_ERR_PROCESS_SPAWN when the command cannot be started.
 */
export async function spawnChild(cfg: ProcessConfig, env: NodeJS.ProcessEnv, log: Logger, outputDir: string, onExit: OnExit): Promise<SpawnedChild> {
  const command = cfg.command!;
  const cwd = cfg.cwd!;
  const details = { processId: cfg.id, command, args: cfg.args, cwd };
  if (!existsSync(cwd)) {
    throw raError('RA_ERR_PROCESS_SPAWN', `cannot start process "${cfg.id}": its cwd ${cwd} does not exist`, { details });
  }
  const out = openForChild(outputDir, cfg.id);
  let child;
  try {
    child = spawn(command, cfg.args, { cwd, env, stdio: ['ignore', out.stdout, out.stderr], detached: true });
  } finally {
    // The child has its own copies (or none was made): ours would only keep the files open.
    closeSync(out.stdout);
    closeSync(out.stderr);
  }
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw raError('RA_ERR_PROCESS_SPAWN', `cannot start process "${cfg.id}" (${command} in ${cwd}): ${err.message}`, { cause: err, details });
  }
  const pid = child.pid;
  // `processPid`, not `pid`: the root logger's `pid` is the agent's own.
  const tail = new OutputTail(outputDir, cfg.id, log.child({ processPid: pid }), false);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      tail.close();
      onExit(pid, code, signal);
      resolve({ code, signal });
    });
  });
  child.on('error', (err) => log.error({ processPid: pid, err: err.message }, 'process error'));
  return { pid, adopted: false, exited };
}

/**
 * Takes over a process an earlier agent started (pid and start time from its record): tails its
 * output files from their current end and polls every `pollMs` for its end — it is not our
 * child, so there is no 'exit' event and no exit code. `onExit(pid, null, null)` runs on the
 * first poll that finds it gone, a zombie, or its pid naming a later process.
 */
export function adoptChild(cfg: ProcessConfig, pid: number, startTime: string, log: Logger, outputDir: string, pollMs: number, onExit: OnExit): SpawnedChild {
  const tail = new OutputTail(outputDir, cfg.id, log.child({ processPid: pid }), true);
  let zombieSince: number | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const poll = setInterval(() => {
      const st = readProcStat(pid);
      if (st !== null && st.startTime === startTime && st.state !== 'X') {
        if (st.state !== 'Z') return;
        // Dead but not yet reaped by its new parent (init). Whoever reads /proc — the store's lock
        // check among them — still sees the pid with its start time: report the exit once it is
        // reaped (or once it has been a zombie for ZOMBIE_WAIT_MS, when nobody reaps it).
        zombieSince ??= Date.now();
        if (Date.now() - zombieSince < ZOMBIE_WAIT_MS) return;
      }
      clearInterval(poll);
      tail.close();
      onExit(pid, null, null);
      resolve({ code: null, signal: null });
    }, pollMs);
    // Not unref'd: like a spawned child's handle, a live adopted process keeps the agent's loop up.
  });
  return { pid, adopted: true, exited };
}

/**
 * Sends `signal` to the process group of `pid` (or to `pid` alone when it leads no group, e.g.
 * an attached process). False when no such process is left.
 */
export function signalProcess(pid: number, signal: NodeJS.Signals, group: boolean): boolean {
  if (group) {
    try {
      process.kill(-pid, signal);
      return true;
    } catch {
      // It left its group (setsid of its own): signal the process itself.
    }
  }
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * Stops a spawned child's process group: SIGTERM (and SIGCONT, so a stopped process can act on
 * it), then SIGKILL if it has not exited after `graceMs` (`onKill` is told first); at once with
 * SIGKILL when `graceMs` is 0. Resolves once it has exited.
 */
export async function stopChild(spawned: SpawnedChild, graceMs: number, onKill: () => void): Promise<void> {
  if (graceMs <= 0) {
    signalProcess(spawned.pid, 'SIGKILL', true);
  } else {
    signalProcess(spawned.pid, 'SIGTERM', true);
    signalProcess(spawned.pid, 'SIGCONT', true);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    });
    const exited = await Promise.race([spawned.exited.then(() => true), graceOver]);
    clearTimeout(timer);
    if (!exited) {
      onKill();
      signalProcess(spawned.pid, 'SIGKILL', true);
    }
  }
  await spawned.exited;
}

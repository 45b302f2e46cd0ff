/**
 * Starting a supervised process and talking to it by signal.
 *
 * Each child runs in a session and process group of its own (`detached`): a Ctrl-C meant for
 * the agent's terminal does not reach it behind the agent's back (the agent stops it, in
 * order, and an exit while stopping is no crash), and signals go to the whole group, so a
 * command that is a shell script takes its children with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Logger } from 'pino';
import { raError } from '../../core/errors.js';
import { LineSplitter } from './outputLines.js';
import type { ProcessConfig } from './types.js';

export interface SpawnedChild {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Settles once, when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Longest line of a child's output kept in the log; the rest of a longer line is dropped and counted. */
const MAX_LOG_LINE_BYTES = 16 * 1024;

/**
 * Spawns `cfg.command`. `onExit` is attached before this returns and runs straight from the
 * child's 'exit' event, the earliest moment Node knows. Throws RA_ERR_PROCESS_SPAWN when the
 * command cannot be started at all.
 */
export async function spawnChild(
  cfg: ProcessConfig,
  env: NodeJS.ProcessEnv,
  log: Logger,
  onExit: (pid: number, code: number | null, signal: NodeJS.Signals | null) => void,
): Promise<SpawnedChild> {
  const command = cfg.command!;
  const cwd = cfg.cwd!;
  const details = { processId: cfg.id, command, args: cfg.args, cwd };
  if (!existsSync(cwd)) {
    throw raError('RA_ERR_PROCESS_SPAWN', `cannot start process "${cfg.id}": its cwd ${cwd} does not exist`, { details });
  }
  const child = spawn(command, cfg.args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid === undefined) {
    const err = await new Promise<Error>((resolve) => child.once('error', resolve));
    throw raError('RA_ERR_PROCESS_SPAWN', `cannot start process "${cfg.id}" (${command} in ${cwd}): ${err.message}`, { cause: err, details });
  }
  const pid = child.pid;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      onExit(pid, code, signal);
      resolve({ code, signal });
    });
  });
  child.on('error', (err) => log.error({ processPid: pid, err: err.message }, 'process error'));
  // `processPid`, not `pid`: the root logger's `pid` is the agent's own.
  pipeLines(child, log.child({ processPid: pid }));
  return { child, pid, exited };
}

/** Logs the child's stdout (info) and stderr (warn), one log line per output line. */
function pipeLines(child: ChildProcess, log: Logger): void {
  for (const stream of ['stdout', 'stderr'] as const) {
    const level = stream === 'stdout' ? 'info' : 'warn';
    const splitter = new LineSplitter((line, truncatedBytes) => {
      if (truncatedBytes > 0) log[level]({ stream, truncatedBytes }, `${line}…`);
      else log[level]({ stream }, line);
    }, MAX_LOG_LINE_BYTES);
    const s = child[stream]!;
    s.on('data', (chunk: Buffer) => splitter.push(chunk));
    s.on('end', () => splitter.end());
    s.on('error', () => undefined);
  }
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

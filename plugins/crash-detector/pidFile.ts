/**
 * Pid files of attached processes: the pid on the first line and, optionally, the process's
 * start time (field 22 of /proc/<pid>/stat) on the second — the format of the page store's
 * LOCK file, so `pidFile` may name a store's LOCK. With the start time, a pid reused by an
 * unrelated process is recognised even before the agent has seen the original.
 */
import { readFileSync } from 'node:fs';

export interface PidFileContent {
  readonly pid: number;
  readonly startTime: string | null;
}

/** Reads a pid file: null when it does not exist (yet), `invalid` when it does not hold a pid. */
export function readPidFile(file: string): PidFileContent | null | 'invalid' {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return null;
  }
  const [first, second] = text.split('\n');
  const pid = Number(first?.trim());
  if (!Number.isInteger(pid) || pid <= 0) return 'invalid';
  const start = second?.trim();
  return { pid, startTime: start !== undefined && /^\d+$/.test(start) ? start : null };
}

/** True when two pid-file readings name the same process (a missing start time matches any). */
export function sameInstance(a: PidFileContent, b: PidFileContent): boolean {
  return a.pid === b.pid && (a.startTime === null || b.startTime === null || a.startTime === b.startTime);
}

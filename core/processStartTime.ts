/**
 * When a process started, to tell a live process from a later one that reuses its pid: a lock
 * file or a temporary directory records its owner's pid and start time, and the owner is gone
 * when no process has that pid or the one that has it started at another time.
 */
import { readFileSync } from 'node:fs';

/**
 * The start time of `pid` in clock ticks since boot (field 22 of /proc/<pid>/stat), or null when
 * no live process has that pid. A zombie (state `Z`, or `X` while it is reaped) has exited: only
 * its exit status waits for its parent, so it is no owner of anything and counts as gone.
 */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return null; // field 3: the state
    return fields[19] ?? null; // field 22 overall; fields[0] is field 3
  } catch {
    return null;
  }
}

/**
 * What /proc tells about a process: its start time (the identity of a pid: a pid reused by
 * another process has another start time), CPU ticks, threads and resident memory.
 *
 * Reads are synchronous: /proc files are generated in memory by the kernel, never wait on a
 * disk, and are a few hundred bytes.
 */
import { readFileSync } from 'node:fs';

/**
 * USER_HZ, the unit of the tick counts in /proc/<pid>/stat. It is 100 on every Linux
 * architecture Node supports (it is part of the kernel's user ABI, unlike the internal HZ).
 */
export const TICKS_PER_SECOND = 100;

/** The fields of /proc/<pid>/stat the detector uses. */
export interface ProcStat {
  /** R running, S sleeping, D disk sleep, T stopped, Z zombie, … */
  readonly state: string;
  /** utime + stime, in ticks. */
  readonly cpuTicks: number;
  readonly threads: number;
  /** Start time in ticks after boot (field 22): with the pid, it names one process. */
  readonly startTime: string;
}

/** Parses /proc/<pid>/stat; null when no such process exists (or it cannot be read). */
export function readProcStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const startTime = f[19];
  if (startTime === undefined) return null;
  return { state: f[0]!, cpuTicks: Number(f[11]) + Number(f[12]), threads: Number(f[17]), startTime };
}

/** The start time (field 22 of /proc/<pid>/stat) of `pid`, or null when it does not exist. */
export function processStartTime(pid: number): string | null {
  return readProcStat(pid)?.startTime ?? null;
}

/** Resident memory in bytes (VmRSS of /proc/<pid>/status); null when unknown. */
export function readRssBytes(pid: number): number | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return null;
  }
  const m = /^VmRSS:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

/** When a process with start time `startTime` (ticks after boot) started, in ms since the epoch. */
export function startedAtFromTicks(startTime: string, now = Date.now()): number | null {
  let uptime: number;
  try {
    uptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
  } catch {
    return null;
  }
  const ticks = Number(startTime);
  if (!Number.isFinite(uptime) || !Number.isFinite(ticks)) return null;
  return Math.round(now - (uptime * 1000 - (ticks * 1000) / TICKS_PER_SECOND));
}

/** CPU % of one process between two samples. Not shared between processes. */
export class CpuMeter {
  private lastTicks: number | null = null;
  private lastAt = 0;

  /** Feeds a sample; returns the CPU percentage since the previous one (null for the first). */
  sample(cpuTicks: number, atMs: number): number | null {
    const prev = this.lastTicks;
    const prevAt = this.lastAt;
    this.lastTicks = cpuTicks;
    this.lastAt = atMs;
    if (prev === null || atMs <= prevAt) return null;
    const seconds = (atMs - prevAt) / 1000;
    return Math.round(((cpuTicks - prev) / TICKS_PER_SECOND / seconds) * 1000) / 10;
  }

  reset(): void {
    this.lastTicks = null;
  }
}

/**
 * Parsers for the /proc files the host probes read: text in, numbers out, so they can be tested
 * on fixed text. The probes read the files synchronously: /proc files are generated in memory by
 * the kernel, never wait on a disk, and are a few kilobytes at most.
 */

/** CPU time counters of the `cpu` line of /proc/stat, in ticks. */
export interface CpuTimes {
  readonly total: number;
  /** idle + iowait: time the CPUs had nothing to run. */
  readonly idle: number;
  readonly iowait: number;
  readonly steal: number;
  readonly procsRunning: number;
  readonly procsBlocked: number;
}

export function parseCpuTimes(text: string): CpuTimes {
  const line = text.slice(0, text.indexOf('\n'));
  // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const num = (name: string) => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
  return { total, idle: (f[3] ?? 0) + (f[4] ?? 0), iowait: f[4] ?? 0, steal: f[7] ?? 0, procsRunning: num('procs_running'), procsBlocked: num('procs_blocked') };
}

/** The fields of /proc/meminfo the memory probe uses, in bytes. */
export interface MemInfo {
  readonly totalBytes: number;
  readonly availableBytes: number;
  readonly swapTotalBytes: number;
  readonly swapFreeBytes: number;
}

export function parseMemInfo(text: string): MemInfo {
  const kb = (name: string): number | undefined => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kb('MemTotal') ?? 0;
  // MemAvailable exists since Linux 3.14; before that, free + cached is the usual estimate.
  const available = kb('MemAvailable') ?? (kb('MemFree') ?? 0) + (kb('Cached') ?? 0);
  return { totalBytes: total, availableBytes: available, swapTotalBytes: kb('SwapTotal') ?? 0, swapFreeBytes: kb('SwapFree') ?? 0 };
}

/** Cumulative counters of one block device, from /proc/diskstats. */
export interface DiskCounters {
  readonly name: string;
  readonly ios: number;
  /** Milliseconds spent on reads and writes (summed over requests in flight). */
  readonly ioMs: number;
  /** Milliseconds the device had at least one request in flight (utilisation). */
  readonly busyMs: number;
}

export function parseDiskStats(text: string): DiskCounters[] {
  const out: DiskCounters[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 14) continue;
    // major minor name | reads merged sectors ms | writes merged sectors ms | in-flight busy_ms weighted_ms …
    const n = f.map(Number);
    out.push({ name: f[2]!, ios: n[3]! + n[7]!, ioMs: n[6]! + n[10]!, busyMs: n[12]! });
  }
  return out;
}

/** Cumulative counters of one network interface, from /proc/net/dev. */
export interface NetCounters {
  readonly name: string;
  readonly bytes: number;
  readonly packets: number;
  readonly errors: number;
  readonly drops: number;
}

export function parseNetDev(text: string): NetCounters[] {
  const out: NetCounters[] = [];
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    const f = line.slice(i + 1).trim().split(/\s+/).map(Number);
    // receive: bytes packets errs drop fifo frame compressed multicast | transmit: bytes packets errs drop …
    if (f.length < 16) continue;
    out.push({ name: line.slice(0, i).trim(), bytes: f[0]! + f[8]!, packets: f[1]! + f[9]!, errors: f[2]! + f[10]!, drops: f[3]! + f[11]! });
  }
  return out;
}

/**
 * The host probes: CPU (/proc/stat), memory (/proc/meminfo), disk I/O (/proc/diskstats) and
 * network (/proc/net/dev). Rates and ratios are over the time since the previous sample; the
 * first sample of CPU uses the counters since boot, the first of I/O and network scores 100.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { HealthProbe, HealthSample } from '../../core/contracts/HealthProbe.js';
import type { AgentConfig } from '../../core/config/schema.js';
import { parseCpuTimes, parseDiskStats, parseMemInfo, parseNetDev, type CpuTimes, type DiskCounters, type NetCounters } from './procfs.js';
import { lineScore } from './score.js';

export type HealthConfig = AgentConfig['health'];
type Thresholds = HealthConfig['thresholds'];

/** Where the probes read; tests point it at fixture text. */
export interface ProcSource {
  read(file: '/proc/stat' | '/proc/meminfo' | '/proc/diskstats' | '/proc/net/dev' | '/proc/loadavg'): string;
  /** True for a whole block device worth watching (not a partition, loop or RAM device). */
  isDisk(name: string): boolean;
}

export const procSource: ProcSource = {
  read: (file) => readFileSync(file, 'utf8'),
  isDisk: (name) => !/^(loop|ram|zram|nbd|fd|sr)\d/.test(name) && existsSync(`/sys/block/${name.replace(/\//g, '!')}`),
};

export function cpuProbe(th: Thresholds, src: ProcSource = procSource): HealthProbe {
  let prev: CpuTimes = { total: 0, idle: 0, iowait: 0, steal: 0, procsRunning: 0, procsBlocked: 0 };
  return {
    id: 'cpu',
    async sample(): Promise<HealthSample> {
      const cur = parseCpuTimes(src.read('/proc/stat'));
      const dt = cur.total - prev.total;
      const busy = dt > 0 ? 1 - (cur.idle - prev.idle) / dt : 0;
      const metrics: Record<string, number> = {
        busy_ratio: busy,
        iowait_ratio: dt > 0 ? (cur.iowait - prev.iowait) / dt : 0,
        steal_ratio: dt > 0 ? (cur.steal - prev.steal) / dt : 0,
        procs_running: cur.procsRunning,
        procs_blocked: cur.procsBlocked,
      };
      const load1 = Number(src.read('/proc/loadavg').split(' ')[0]);
      if (Number.isFinite(load1)) metrics.load1 = load1;
      prev = cur;
      return { metrics, score: lineScore(busy, th.cpu) };
    },
  };
}

export function memoryProbe(th: Thresholds, src: ProcSource = procSource): HealthProbe {
  return {
    id: 'memory',
    async sample(): Promise<HealthSample> {
      const m = parseMemInfo(src.read('/proc/meminfo'));
      const ratio = m.totalBytes > 0 ? m.availableBytes / m.totalBytes : 1;
      return {
        metrics: {
          available_bytes: m.availableBytes,
          total_bytes: m.totalBytes,
          available_ratio: ratio,
          swap_free_ratio: m.swapTotalBytes > 0 ? m.swapFreeBytes / m.swapTotalBytes : 1,
        },
        score: lineScore(ratio, th.memory),
        resources: { memory: { available: m.availableBytes, total: m.totalBytes, unit: 'bytes' } },
      };
    },
  };
}

export function ioProbe(th: Thresholds, src: ProcSource = procSource): HealthProbe {
  const watched = new Map<string, boolean>();
  let prev = new Map<string, DiskCounters>();
  let prevAt = 0;
  return {
    id: 'io',
    async sample(): Promise<HealthSample> {
      const now = performance.now();
      const devices = parseDiskStats(src.read('/proc/diskstats')).filter((d) => {
        let yes = watched.get(d.name);
        if (yes === undefined) watched.set(d.name, (yes = src.isDisk(d.name)));
        return yes;
      });
      const metrics: Record<string, number> = { util_max: 0, await_ms_max: 0 };
      let score = 100;
      const dtMs = now - prevAt;
      for (const d of devices) {
        const p = prev.get(d.name);
        if (!p || dtMs <= 0) continue;
        const ios = d.ios - p.ios;
        const util = Math.min(1, Math.max(0, (d.busyMs - p.busyMs) / dtMs));
        const awaitMs = ios > 0 ? (d.ioMs - p.ioMs) / ios : 0;
        metrics[`${d.name}.util`] = util;
        metrics[`${d.name}.await_ms`] = awaitMs;
        metrics[`${d.name}.iops`] = (ios * 1000) / dtMs;
        metrics.util_max = Math.max(metrics.util_max!, util);
        metrics.await_ms_max = Math.max(metrics.await_ms_max!, awaitMs);
        score = Math.min(score, lineScore(util, th.ioUtilisation), lineScore(awaitMs, th.ioLatency));
      }
      prev = new Map(devices.map((d) => [d.name, d]));
      prevAt = now;
      return { metrics, score };
    },
  };
}

export function networkProbe(th: Thresholds, src: ProcSource = procSource): HealthProbe {
  let prev: NetCounters | null = null;
  let prevAt = 0;
  return {
    id: 'network',
    async sample(): Promise<HealthSample> {
      const now = performance.now();
      const sum = { name: 'all', bytes: 0, packets: 0, errors: 0, drops: 0 };
      for (const i of parseNetDev(src.read('/proc/net/dev'))) {
        if (i.name === 'lo') continue;
        sum.bytes += i.bytes;
        sum.packets += i.packets;
        sum.errors += i.errors;
        sum.drops += i.drops;
      }
      const p = prev;
      const dt = (now - prevAt) / 1000;
      prev = sum;
      prevAt = now;
      if (!p || dt <= 0) return { metrics: {}, score: 100 };
      const packets = Math.max(0, sum.packets - p.packets);
      const bad = Math.max(0, sum.errors - p.errors) + Math.max(0, sum.drops - p.drops);
      const ratio = packets > 0 ? bad / packets : bad > 0 ? 1 : 0;
      return {
        metrics: {
          bytes_per_s: Math.max(0, sum.bytes - p.bytes) / dt,
          packets_per_s: packets / dt,
          errors_per_s: Math.max(0, sum.errors - p.errors) / dt,
          drops_per_s: Math.max(0, sum.drops - p.drops) / dt,
          error_ratio: ratio,
        },
        score: lineScore(ratio, th.network),
      };
    },
  };
}

/**
 * The memory limit a supervised process's RSS is predicted against (memory-leak): its
 * `processes[].memoryLimit` when the config gives one, else its cgroup v2 `memory.max` when that
 * is a number, else the host's MemTotal — whichever the process meets first is where the OOM
 * killer (or the config's word) ends it.
 */
import { readFile } from 'node:fs/promises';
import type { LeakFacts } from './monitor.js';

export interface MemoryLimit {
  readonly bytes: number;
  readonly source: LeakFacts['limitSource'];
}

/** The cgroup v2 memory.max of `pid`, or null (no unified hierarchy, or `max`). */
export async function cgroupMemoryMax(pid: number, root = '/sys/fs/cgroup'): Promise<number | null> {
  const cg = await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => null);
  const rel = cg ? /^0::(\/.*)$/m.exec(cg)?.[1] : undefined;
  if (rel === undefined) return null;
  const max = await readFile(`${root}${rel === '/' ? '' : rel}/memory.max`, 'utf8').catch(() => null);
  const n = max === null ? NaN : Number(max.trim());
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

export async function memoryLimitOf(pid: number, configured: number | undefined, hostTotal: number): Promise<MemoryLimit> {
  const candidates: MemoryLimit[] = [{ bytes: hostTotal, source: 'host' }];
  if (configured !== undefined) candidates.push({ bytes: configured, source: 'memoryLimit' });
  const cg = await cgroupMemoryMax(pid);
  if (cg !== null) candidates.push({ bytes: cg, source: 'cgroup' });
  return candidates.filter((c) => c.bytes > 0).reduce((a, b) => (b.bytes < a.bytes ? b : a));
}

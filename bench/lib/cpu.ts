/** CPU time, for the benches that put ours beside a CLI baseline's. */
import { readFileSync } from 'node:fs';

/** CPU seconds (user + system) of this process's reaped children: /proc/self/stat cutime + cstime. */
export function childCpuS(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[13]) + Number(f[14])) / 100; // fields 16 and 17, in USER_HZ (100 on Linux)
}

/** CPU seconds of this process, every thread (the pool's workers and libuv's included). */
export function selfCpuS(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

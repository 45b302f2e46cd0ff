/**
 * Clock jumps: the wall clock of the agent (and of the writer it starts, which inherits its
 * environment) jumps forward by minutes, then back by more, then returns, while both run. It is
 * libfaketime (Debian package `faketime`) preloaded into the agent with a timestamp file it
 * re-reads every second (FAKETIME_TIMESTAMP_FILE, FAKETIME_CACHE_DURATION=1 — re-reading it on
 * every call, FAKETIME_NO_CACHE, makes each clock read ~50 times slower, which is load, not a
 * clock jump); the monotonic clock is left alone (FAKETIME_DONT_FAKE_MONOTONIC=1), as the kernel
 * leaves it alone when the wall clock is stepped.
 *
 * Nothing failed, so nothing may be reported: every deadline the agent keeps (heartbeat
 * timeouts, restart backoffs, schedules) must run on the monotonic clock. A failure it reports
 * for the store or the application is a false one, and the trial fails naming it.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

/** libfaketime as Debian installs it (/usr/lib/<triplet>/faketime/), or null. */
export function libfaketime(): string | null {
  const roots = ['/usr/lib', '/usr/local/lib'];
  for (const root of roots) {
    const direct = path.join(root, 'faketime', 'libfaketime.so.1');
    if (existsSync(direct)) return direct;
    let subdirs: string[] = [];
    try {
      subdirs = readdirSync(root);
    } catch {
      continue;
    }
    for (const d of subdirs) {
      const p = path.join(root, d, 'faketime', 'libfaketime.so.1');
      if (existsSync(p)) return p;
    }
  }
  return null;
}

const timestampFile = (trialDir: string): string => path.join(trialDir, 'faketime');

function env(lib: string, file: string): Record<string, string> {
  return { LD_PRELOAD: lib, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

/** The jumps, in seconds of offset from the real time, and when each is made after the first. */
interface Schedule {
  steps: Array<{ atMs: number; offsetS: number }>;
  timers: NodeJS.Timeout[];
}

const KIND: FaultKind = {
  name: 'clock-jump',
  description: "the agent's wall clock jumps minutes forward, then back past the real time, then home (libfaketime): no failure may be reported, the workload keeps committing",
  target: 'instance-crash',
  // The last jump comes ≤ 4 s after the first; then a heartbeat timeout (3 s) and a margin.
  expects: { type: 'none', quietMs: 9000 },
  agent: (trialDir) => {
    const lib = libfaketime();
    if (lib === null) throw new Error('clock-jump: libfaketime is not installed (Debian package faketime)');
    writeFileSync(timestampFile(trialDir), '+0\n');
    return { env: env(lib, timestampFile(trialDir)) };
  },
};

export const clockJump: FaultFamily = {
  name: 'clock',
  kinds: [KIND],

  /** A node started with the library must see its wall clock follow the file within ~1 s, its monotonic clock not. */
  async probe() {
    const lib = libfaketime();
    if (lib === null) return 'libfaketime is not installed (Debian package faketime)';
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-chaos-faketime-'));
    try {
      const file = path.join(dir, 'ts');
      writeFileSync(file, '+0\n');
      const script = `
        const fs = require('node:fs');
        const skew = () => Date.now() - performance.timeOrigin - performance.now();
        const base = skew();
        fs.writeFileSync(${JSON.stringify(file)}, '+600\\n');
        const t0 = performance.now();
        const iv = setInterval(() => {
          const s = skew() - base;
          if (Math.abs(s - 600000) < 2000 || performance.now() - t0 > 3000) {
            clearInterval(iv);
            console.log(JSON.stringify({ skewMs: Math.round(s), afterMs: Math.round(performance.now() - t0) }));
          }
        }, 50);`;
      const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ...env(lib, file) }, encoding: 'utf8', timeout: 10_000 });
      if (r.status !== 0) return `node under libfaketime failed: ${r.error?.message ?? r.stderr.trim().split('\n')[0]}`;
      const out = JSON.parse(r.stdout.trim()) as { skewMs: number; afterMs: number };
      if (Math.abs(out.skewMs - 600_000) >= 2000) return `libfaketime did not move the wall clock of a node process (skew ${out.skewMs} ms after ${out.afterMs} ms, expected 600000 ms)`;
      return null;
    } catch (err) {
      return `probing libfaketime: ${(err as Error).message}`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },

  async inject(_k: FaultKind, ctx: FaultContext): Promise<Injected> {
    const file = timestampFile(path.dirname(ctx.store));
    const forward = ctx.rng.int(2, 10) * 60;
    const back = -ctx.rng.int(2, 10) * 60;
    const second = ctx.rng.int(1200, 2000);
    const steps = [
      { atMs: 0, offsetS: forward },
      { atMs: second, offsetS: back },
      { atMs: second + ctx.rng.int(1200, 2000), offsetS: 0 },
    ];
    const set = (offsetS: number): void => {
      // tmp + rename: libfaketime never reads a half-written file
      writeFileSync(`${file}.tmp`, `${offsetS >= 0 ? '+' : ''}${offsetS}\n`);
      renameSync(`${file}.tmp`, file);
      ctx.log(`clock offset ${offsetS} s`);
    };
    const schedule: Schedule = { steps, timers: [] };
    set(forward);
    for (const s of steps.slice(1)) schedule.timers.push(setTimeout(() => set(s.offsetS), s.atMs));
    return { what: `wall clock +${forward / 60} min, ${back / 60} min after ${second} ms, back to real time after ${steps[2]!.atMs} ms`, state: schedule };
  },

  async heal(_k: FaultKind, ctx: FaultContext, injected: Injected) {
    for (const t of (injected.state as Schedule).timers) clearTimeout(t);
    writeFileSync(timestampFile(path.dirname(ctx.store)), '+0\n');
  },
};

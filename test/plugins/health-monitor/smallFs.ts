// A real, small filesystem for the prediction tests: a tmpfs mounted in a temp dir, or, where
// tmpfs cannot be mounted, an ext4 image on a loop device (no reserved blocks, so ENOSPC comes
// when the free space the agent sees runs out). Needs root; `skip` says why when neither works.
// RA_TEST_SMALLFS=ext4 skips tmpfs, to measure the fallback.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fixture } from '../../helpers/paths.js';

export interface SmallFs {
  readonly dir: string;
  readonly kind: 'tmpfs' | 'ext4 on a loop device';
  unmount(): void;
}

function run(cmd: string, args: string[]): { ok: boolean; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, err: (r.stderr || r.error?.message || '').trim() };
}

export function mountSmallFs(sizeMiB: number): SmallFs | { skip: string } {
  const base = mkdtempSync(path.join(os.tmpdir(), 'ra-smallfs-'));
  const dir = path.join(base, 'mnt');
  spawnSync('mkdir', [dir]);
  const cleanup = () => rmSync(base, { recursive: true, force: true });
  const unmountAndClean = () => {
    if (!run('umount', [dir]).ok) run('umount', ['-l', dir]);
    cleanup();
  };
  const tmpfs = process.env.RA_TEST_SMALLFS === 'ext4' ? { ok: false, err: 'skipped (RA_TEST_SMALLFS=ext4)' } : run('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
  if (tmpfs.ok) return { dir, kind: 'tmpfs', unmount: unmountAndClean };
  const img = path.join(base, 'fs.img');
  const steps: Array<[string, string[]]> = [
    ['truncate', ['-s', `${sizeMiB}M`, img]],
    ['mkfs.ext4', ['-q', '-F', '-m', '0', img]],
    ['mount', ['-o', 'loop', img, dir]],
  ];
  for (const [cmd, args] of steps) {
    const r = run(cmd, args);
    if (!r.ok) {
      cleanup();
      return { skip: `cannot mount a small filesystem here: tmpfs: ${tmpfs.err}; ${cmd}: ${r.err}` };
    }
  }
  return { dir, kind: 'ext4 on a loop device', unmount: unmountAndClean };
}

export interface FillEvent {
  event: 'started' | 'full' | 'stopped';
  at: number;
  written?: number;
}

/** Starts the fillDisk fixture; `events` resolves each event as it is printed. */
export function startFiller(spec: { file: string; rate: number; stopAfterBytes?: number; rotateBytes?: number; durationMs?: number }): {
  child: ChildProcess;
  next(event: FillEvent['event']): Promise<FillEvent>;
} {
  const child = spawn(process.execPath, [fixture('fillDisk.js'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const seen: FillEvent[] = [];
  const waiting: Array<{ event: string; resolve: (e: FillEvent) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const e = JSON.parse(line) as FillEvent;
    seen.push(e);
    for (const w of waiting.filter((x) => x.event === e.event)) w.resolve(e);
  });
  return {
    child,
    next: (event) =>
      new Promise((resolve, reject) => {
        const had = seen.find((e) => e.event === event);
        if (had) return resolve(had);
        waiting.push({ event, resolve });
        child.once('exit', (code) => setTimeout(() => reject(new Error(`filler exited (${code}) before "${event}"`)), 50));
      }),
  };
}

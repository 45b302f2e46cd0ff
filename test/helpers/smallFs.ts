// A real, small filesystem for tests that fill a disk: a tmpfs mounted in a temp dir, or, where
// tmpfs cannot be mounted, an ext4 image on a loop device (no reserved blocks, so ENOSPC comes
// when the free space the agent sees runs out). Needs root; `skip` says why when neither works
// (the caller decides whether that skips or fails). RA_TEST_SMALLFS=ext4 skips tmpfs, to measure
// the fallback.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fixture } from './paths.js';

export interface SmallFs {
  readonly dir: string;
  readonly kind: 'tmpfs' | 'ext4 on a loop device';
  /**
   * Makes the filesystem `sizeKiB` big, keeping its files (a tmpfs is remounted with the new
   * size; an ext4 image is unmounted, lengthened, resized and mounted again, so nothing may have
   * a file open on it). Throws with the failing command's message.
   */
  grow(sizeKiB: number): void;
  unmount(): void;
}

function run(cmd: string, args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 });
  return { ok: r.status === 0, out: (r.stdout ?? '').trim(), err: (r.stderr || r.error?.message || `exit ${r.status}`).trim() };
}

function must(cmd: string, args: string[]): string {
  const r = run(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.err}`);
  return r.out;
}

/** A filesystem of `sizeMiB` MiB; see mountSmallFsKiB. */
export function mountSmallFs(sizeMiB: number): SmallFs | { skip: string } {
  return mountSmallFsKiB(sizeMiB * 1024);
}

/** A filesystem of `sizeKiB` KiB (tmpfs rounds up to whole pages). */
export function mountSmallFsKiB(sizeKiB: number): SmallFs | { skip: string } {
  const base = mkdtempSync(path.join(os.tmpdir(), 'ra-smallfs-'));
  const dir = path.join(base, 'mnt');
  spawnSync('mkdir', [dir]);
  const cleanup = () => rmSync(base, { recursive: true, force: true });
  const unmountAndClean = () => {
    if (!run('umount', [dir]).ok) run('umount', ['-l', dir]);
    cleanup();
  };
  const tmpfs = process.env.RA_TEST_SMALLFS === 'ext4' ? { ok: false, err: 'skipped (RA_TEST_SMALLFS=ext4)' } : run('mount', ['-t', 'tmpfs', '-o', `size=${sizeKiB}k`, 'tmpfs', dir]);
  if (tmpfs.ok) {
    return {
      dir,
      kind: 'tmpfs',
      grow: (kib) => void must('mount', ['-o', `remount,size=${kib}k`, dir]),
      unmount: unmountAndClean,
    };
  }
  const img = path.join(base, 'fs.img');
  const steps: Array<[string, string[]]> = [
    ['truncate', ['-s', `${sizeKiB}K`, img]],
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
  return {
    dir,
    kind: 'ext4 on a loop device',
    grow: (kib) => {
      // Offline: online resizing (EXT4_IOC_RESIZE_FS) is refused in some containers.
      must('umount', [dir]);
      must('truncate', ['-s', `${kib}K`, img]);
      must('e2fsck', ['-f', '-p', img]);
      must('resize2fs', [img]);
      must('mount', ['-o', 'loop', img, dir]);
    },
    unmount: unmountAndClean,
  };
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

/**
 * The crash harness's I/O fault mode: a writer runs under test/fixtures/faultfs.c (LD_PRELOAD),
 * which makes one seeded write or sync under the store directory fail, and the harness then
 * kills it, recovers without the library and checks its model (harness.ts).
 *
 * Kinds (what the library does at the chosen call):
 *   short-enospc  the write takes part of its bytes and returns the count; later writes fail
 *                 with ENOSPC (a disk filling up; the bug of issue #11 item 1)
 *   enospc        the write fails with ENOSPC, and so does every later one
 *   eio-write     the write fails with EIO (sometimes only that one, sometimes every later one)
 *   eio-sync      an fsync/fdatasync fails with EIO (mostly only that one: fsyncgate)
 *
 * Targets (which files count): the whole store directory, its WAL (segments and the directory
 * itself, whose fsync makes a new segment durable), the data file (checkpoint and redo page
 * writes) or the control file's temporary copy (the last step of a checkpoint). The call number
 * is drawn so that the fault usually fires while the writer runs: early calls are the store's
 * open (lock file, recovery's checkpoint), later ones group commits and checkpoints.
 *
 * Every trial is replayable: describeIoFault prints the environment that reproduces it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, realpath } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../helpers/paths.js';
import type { Prng } from './pattern.js';

export const IO_FAULT_KINDS = ['short-enospc', 'enospc', 'eio-write', 'eio-sync'] as const;
export type IoFaultKind = (typeof IO_FAULT_KINDS)[number];

export const IO_FAULT_TARGETS = ['store', 'wal', 'data', 'control'] as const;
export type IoFaultTarget = (typeof IO_FAULT_TARGETS)[number];

export interface IoFault {
  kind: IoFaultKind;
  target: IoFaultTarget;
  /** The call (of its class: writes, or syncs for eio-sync) that fails, from 1. */
  at: number;
  /** Every later call of the class fails too. */
  sticky: boolean;
  /** Picks the length of a short write. */
  seed: number;
}

/** What the library reported when the fault fired. */
export interface FiredFault {
  line: string;
  /** Wall-clock time it fired (ms since the epoch). */
  atMs: number;
  /** A write that took some but not all of its bytes. */
  short: boolean;
}

/** Calls of a writer's ~0.5 s of work, measured: [writes, syncs] per target (see pick ranges). */
const CALL_RANGE: Record<IoFaultTarget, { writes: number; syncs: number }> = {
  store: { writes: 140, syncs: 160 },
  wal: { writes: 100, syncs: 120 },
  data: { writes: 40, syncs: 6 },
  control: { writes: 6, syncs: 6 },
};

/** A fault of `kind` at a seeded target and call. */
export function pickIoFault(rng: Prng, kind: IoFaultKind): IoFault {
  const target = rng.pick<IoFaultTarget>(['store', 'store', 'wal', 'wal', 'data', 'control']);
  const range = CALL_RANGE[target][kind === 'eio-sync' ? 'syncs' : 'writes'];
  // Skewed to early calls: most trials fail while the writer is busy, some at its open.
  const at = 1 + Math.floor(range * rng.float() ** 2);
  const sticky = kind === 'short-enospc' || kind === 'enospc' ? true : kind === 'eio-write' ? rng.chance(0.5) : rng.chance(0.25);
  return { kind, target, at, sticky, seed: rng.seed() };
}

/** The path the library faults for `target` in store `dir` (a real path: /proc names files so). */
export function targetPath(dir: string, target: IoFaultTarget): string {
  switch (target) {
    case 'store':
      return dir;
    case 'wal':
      return path.join(dir, 'wal');
    case 'data':
      return path.join(dir, 'pages.db');
    case 'control':
      return path.join(dir, 'control.tmp');
  }
}

/** Whether the writer must checkpoint for the fault to have a chance to fire. */
export function needsCheckpoints(f: IoFault): boolean {
  return f.target === 'data' || f.target === 'control';
}

/** The environment that runs a process under the library with `fault` armed. */
export function ioFaultEnv(library: string, storeDir: string, fault: IoFault, reportFile: string): Record<string, string> {
  return {
    LD_PRELOAD: library,
    // File I/O through an io_uring would bypass the library (it also refuses io_uring_setup).
    UV_USE_IO_URING: '0',
    FAULTFS_DIR: targetPath(storeDir, fault.target),
    FAULTFS_KIND: fault.kind,
    FAULTFS_AT: String(fault.at),
    FAULTFS_STICKY: fault.sticky ? '1' : '0',
    FAULTFS_SEED: String(fault.seed),
    FAULTFS_REPORT: reportFile,
  };
}

/** `short-enospc at write #37 under wal (sticky)`. */
export function describeIoFault(f: IoFault): string {
  return `${f.kind} at ${f.kind === 'eio-sync' ? 'sync' : 'write'} #${f.at} of ${f.target}${f.sticky ? ' (sticky)' : ' (once)'}`;
}

/** The library's report of the fault firing, or null if it did not fire. */
export async function readFiredFault(reportFile: string): Promise<FiredFault | null> {
  const text = await readFile(reportFile, 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => l.startsWith('fired '));
  if (!line) return null;
  const field = (name: string) => Number(new RegExp(`\\b${name}=(-?\\d+)`).exec(line)?.[1] ?? NaN);
  const [len, result, t] = [field('len'), field('result'), field('t')];
  return { line, atMs: Number.isFinite(t) ? t : Date.now(), short: result > 0 && result < len };
}

let compiled: Promise<string> | null = null;

/**
 * Compiles test/fixtures/faultfs.c into a temporary directory (once per process) and returns
 * the shared library's path. Throws with the compiler's output when that fails: the fault mode
 * cannot run without it.
 */
export function faultLibrary(): Promise<string> {
  compiled ??= (async () => {
    const source = path.join(repoRoot(), 'test', 'fixtures', 'faultfs.c');
    const out = path.join(await mkdtemp(path.join(os.tmpdir(), 'ra-faultfs-')), 'faultfs.so');
    const cc = process.env.CC ?? 'cc';
    try {
      await promisify(execFile)(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-o', out, source, '-ldl'], { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`cannot compile the I/O fault library (${cc} -shared -fPIC -O2 -o ${out} ${source} -ldl): ${e.stderr || e.message}`, { cause: err });
    }
    return out;
  })();
  return compiled;
}

/** The real path of a store directory, as /proc/self/fd names its files. */
export function storeRealPath(dir: string): Promise<string> {
  return realpath(dir);
}

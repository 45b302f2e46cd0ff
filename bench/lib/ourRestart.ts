/**
 * One restart of our page store after `kill -9`, repeatable: shared by bench/recoveryOurs.ts and
 * bench/recoveryVsPostgres.ts so that both time the very same thing.
 *
 * The killed store (`pristine`) is copied afresh for each run and the copy fsync'd first: the
 * killed writer's WAL was durable (its commits were fdatasync'd), the copy's is dirty in the page
 * cache, and recovery's reopen of the log would otherwise pay for writing it out. Then a fresh
 * process opens the copy (bench/fixtures/tpcbStore.ts `open`: pool of 2 workers, recovery inside
 * the open); restart = spawn until it reports ready.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, openSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstLine } from './fixtureChild.js';
import type { RecoveryStats } from '../../plugins/pagestore/recovery.js';

export const tpcbFixture = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'tpcbStore.js');

/** fsync of every file under `dir` (and the directories). */
export function syncTree(dir: string): void {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) syncTree(p);
    else if (e.isFile()) fsyncPath(p);
  }
  fsyncPath(dir);
}

function fsyncPath(p: string): void {
  const fd = openSync(p, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `cp -a from to`, replacing `to`. */
export function copyTree(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  const cp = spawnSync('cp', ['-a', from, to]);
  if (cp.status !== 0) throw new Error(`cp -a ${from} ${to} failed: ${cp.stderr.toString()}`);
}

export interface OurRestart {
  /** The 1-minute load average when the run started. */
  load1: number;
  /** Spawn of the process until PageStore.open returned. */
  restartMs: number;
  /** PageStore.open alone. */
  openMs: number;
  /** CPU time of the process (every thread) over the open. */
  cpuMs: number;
  stats: RecoveryStats;
}

/**
 * Restarts a fresh copy of `pristine` (in `work`, removed afterwards) and checks that recovery
 * redid `expectRedone` records.
 */
export async function restartOurs(pristine: string, work: string, expectRedone: number): Promise<OurRestart> {
  copyTree(pristine, work);
  try {
    syncTree(work);
    const load1 = os.loadavg()[0]!;
    const { value, ms, child } = await firstLine<{ openMs: number; cpuMs: number; stats: RecoveryStats }>(tpcbFixture, ['open', work]);
    // The child closes the store after reporting (its checkpoint writes): let it finish first.
    if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    if (value.stats.recordsRedone !== expectRedone) throw new Error(`recovery redid ${value.stats.recordsRedone} records; the writer committed ${expectRedone}`);
    return { load1, restartMs: ms, openMs: value.openMs, cpuMs: value.cpuMs, stats: value.stats };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

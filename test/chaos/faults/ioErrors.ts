/**
 * I/O errors and slow I/O of the application's store, through the crash harness's LD_PRELOAD
 * library (test/fixtures/faultfs.c, compiled by test/crash/ioFaults.ts `faultLibrary`). The
 * family's `prepare` puts the supervised writer under the library (the agent config's
 * `processes[].env`: LD_PRELOAD, UV_USE_IO_URING=0, FAULTFS_DIR = the store) with the fault
 * disarmed (FAULTFS_ARM names a file that does not exist yet); `inject` arms it at the moment the
 * harness chose by creating that file, `heal` disarms it by deleting it. A writer the agent
 * restarts meanwhile gets the same environment, so the disk stays broken (or slow) for every run
 * until the heal, as a real one would.
 *
 * - `io-error-write`: every write under the store fails with EIO while armed (a dead disk).
 * - `io-error-fsync`: every fsync/fdatasync under the store fails with EIO while armed
 *   (fsyncgate: the data the sync was to make durable may be gone).
 *   Expected of both, as the agent behaves on this branch: the store's log breaks
 *   (RA_ERR_WAL_WRITE, nothing more acknowledged), the writer exits, the agent reports
 *   `process-crash` and restarts it until the disk works again. (The `disk-failure` /
 *   `redirect-store` work of branch fix-diskfail, once merged, changes this answer: a store
 *   whose disk returns EIO is failed over or restored onto a spare path.)
 * - `slow-io`: every write and sync under the store sleeps 50 ms while armed, for 2–4 s.
 *   Nothing breaks: the agent must not restart or recover a slow but working application (no
 *   false recovery storm); RTO is the heal → the commit rate back to half its pre-fault rate.
 *   The host's io probe (/proc/diskstats) cannot see a delay made in user space, so no
 *   `health-degraded` is required (one reported is listed in the trial's failures).
 */
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { faultLibrary } from '../../crash/ioFaults.js';
import type { FaultContext, FaultFamily, FaultKind, Injected, Prepared } from './types.js';

const crashAnswer = { type: 'failure', kinds: ['process-crash'] } as const;
/** A broken log: the writer's commit fails with RA_ERR_WAL_WRITE, or its open with the raw EIO. */
const WRITER_EXITS = /RA_ERR_WAL_WRITE|EIO|i\/o error|input\/output error/i;

const KINDS: FaultKind[] = [
  { name: 'io-error-write', description: 'EIO on every write of the store’s files for 1.5–3 s (LD_PRELOAD, armed at a random moment)', target: 'disk-failure', expects: crashAnswer, writerMayExit: WRITER_EXITS, holdMs: (rng) => rng.int(1500, 3000) },
  { name: 'io-error-fsync', description: 'EIO on every fsync/fdatasync of the store’s files for 1.5–3 s (LD_PRELOAD, armed at a random moment)', target: 'disk-failure', expects: crashAnswer, writerMayExit: WRITER_EXITS, holdMs: (rng) => rng.int(1500, 3000) },
  { name: 'slow-io', description: 'every write and sync of the store delayed 50 ms for 2–4 s (LD_PRELOAD)', target: 'disk-failure', expects: { type: 'degraded' }, holdMs: (rng) => rng.int(2000, 4000) },
];

/** The delay of each write and sync under slow-io: a disk ~10× slower than a loaded SSD's fsync. */
const SLOW_MS = 50;

const LIB_KIND: Record<string, string> = { 'io-error-write': 'eio-write', 'io-error-fsync': 'eio-sync', 'slow-io': 'delay' };

interface Armed {
  arm: string;
  report: string;
}

export const ioErrors: FaultFamily = {
  name: 'io-errors',
  kinds: KINDS,

  /** The library must compile and fault a write of a child process once armed. */
  async probe() {
    let lib: string;
    try {
      lib = await faultLibrary();
    } catch (err) {
      return (err as Error).message;
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-chaos-faultfs-'));
    try {
      const arm = path.join(dir, 'arm');
      writeFileSync(arm, '');
      const r = spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(path.join(dir, 'f'))}, 'x')`], {
        env: { ...process.env, LD_PRELOAD: lib, UV_USE_IO_URING: '0', FAULTFS_DIR: realpathSync(dir), FAULTFS_KIND: 'eio-write', FAULTFS_ARM: arm },
        encoding: 'utf8',
        timeout: 20_000,
      });
      return /EIO/.test(r.stderr) ? null : `a write under LD_PRELOAD=${lib}, armed, did not fail with EIO (exit ${r.status}: ${r.stderr.trim().slice(0, 200)})`;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },

  async prepare(k: FaultKind, trialDir: string): Promise<Prepared> {
    const store = path.join(realpathSync(trialDir), 'store');
    const arm = path.join(trialDir, 'faultfs.arm');
    const report = path.join(trialDir, 'faultfs.report');
    const env: Record<string, string> = {
      LD_PRELOAD: await faultLibrary(),
      UV_USE_IO_URING: '0',
      FAULTFS_DIR: store,
      FAULTFS_KIND: LIB_KIND[k.name]!,
      FAULTFS_ARM: arm,
      FAULTFS_STICKY: '1',
      FAULTFS_REPORT: report,
    };
    if (k.name === 'slow-io') env.FAULTFS_DELAY_MS = String(SLOW_MS);
    return { store, appEnv: env, state: { arm, report } satisfies Armed };
  },

  async inject(k: FaultKind, ctx: FaultContext): Promise<Injected> {
    const { arm } = ctx.prepared.state as Armed;
    writeFileSync(arm, '');
    return { what: `${LIB_KIND[k.name]} armed on every ${k.name === 'io-error-fsync' ? 'sync' : k.name === 'slow-io' ? 'write and sync' : 'write'} under ${ctx.store}`, state: ctx.prepared.state };
  },

  async heal(k: FaultKind, ctx: FaultContext, injected: Injected) {
    const { arm, report } = injected.state as Armed;
    if (existsSync(arm)) rmSync(arm);
    if (k.name === 'slow-io') return ctx.log('slow I/O disarmed');
    // An error fault that never fired (no write or sync of the store while armed) proves nothing.
    const fired = existsSync(report) ? readFileSync(report, 'utf8').split('\n').filter((l) => l.startsWith('fired ')) : [];
    if (fired.length === 0) throw new Error(`${k.name}: armed for the hold, but no ${LIB_KIND[k.name]} fired (no matching call of the writer)`);
    ctx.log(`io fault disarmed; fired in ${fired.length} run(s) of the writer: ${fired[0]!.replace(/ path=.*/, '')}`);
  },
};

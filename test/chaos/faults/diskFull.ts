/**
 * Disk full (ENOSPC): the trial's store lives on a small tmpfs (or an ext4 loop filesystem where
 * tmpfs cannot be mounted: test/helpers/smallFs.ts) and the fault fills it — a filler file in the
 * same filesystem, grown until the kernel says ENOSPC and topped up every 20 ms, as a runaway log
 * would take whatever space a checkpoint frees — for 1.5–3 s; `heal` deletes it.
 *
 * What the store promises (README, "What the store promises when the disk fails"): a WAL write
 * that fails breaks the log, every waiting and later commit fails with RA_ERR_WAL_WRITE — refused,
 * never acknowledged — and reopening once there is space again recovers every acknowledged
 * commit. The chaos writer exits on that error (its `fatal` line is the expected answer, not a
 * problem); the agent sees a `process-crash` of the application and answers it (recover-store,
 * restart-process), retrying while a restarted writer cannot open its store on the full disk,
 * until space is back. No `predicted-exhaustion` is expected: the fill is a step, not a trend the
 * predictor's minute-long confirmation could see. The RTO the seed asks of it is a disk failure's.
 */
import { closeSync, cpSync, existsSync, fsyncSync, lstatSync, openSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { mountSmallFsKiB, type SmallFs } from '../../helpers/smallFs.js';
import type { FaultContext, FaultFamily, FaultKind, Injected, Prepared } from './types.js';

/**
 * The small filesystem. The chaos store's data file is 256 KiB, but its WAL grows by ~2 MiB/s
 * under the writer (segments stay until archived and checkpointed past): a 4 MiB tmpfs filled
 * itself during the warm-up. 96 MiB holds a trial's WAL; the filler takes the rest (RAM, freed
 * at the heal and the unmount).
 */
const FS_KIB = 96 * 1024;

const KIND: FaultKind = {
  name: 'disk-full',
  description: "ENOSPC: the store's filesystem (a 96 MiB tmpfs) filled for 1.5–3 s while the writer commits, then freed",
  target: 'disk-failure',
  expects: { type: 'failure', kinds: ['process-crash'] },
  writerMayExit: /RA_ERR_WAL_WRITE|ENOSPC/,
  holdMs: (rng) => rng.int(1500, 3000),
};

interface Filler {
  file: string;
  fd: number;
  timer: NodeJS.Timeout;
  bytes: number;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x5a);

/** Writes to `fd` until the filesystem is full, down to single pages; the bytes taken. */
function fill(fd: number): number {
  let taken = 0;
  for (let size = CHUNK.length; size >= 512; size /= 2) {
    for (;;) {
      try {
        const n = writeSync(fd, CHUNK, 0, size);
        taken += n;
        if (n < size) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
        throw err;
      }
    }
  }
  return taken;
}

export const diskFull: FaultFamily = {
  name: 'disk-full',
  kinds: [KIND],

  /** A small filesystem must mount (root, tmpfs or a loop device). */
  async probe() {
    const fs = mountSmallFsKiB(1024);
    if ('skip' in fs) return fs.skip;
    fs.unmount();
    return null;
  },

  async prepare(_k: FaultKind, _trialDir: string): Promise<Prepared> {
    const fs = mountSmallFsKiB(FS_KIB);
    if ('skip' in fs) throw new Error(fs.skip);
    const store = path.join(fs.dir, 'store');
    const cleanup = (keepIn: string | null): void => {
      // A failed trial's store is kept with its directory: copied off the filesystem about to go.
      if (keepIn !== null && existsSync(store)) cpSync(store, path.join(keepIn, 'store'), { recursive: true, filter: (src) => !lstatSync(src).isSocket() });
      fs.unmount();
    };
    return { store, state: fs, cleanup };
  },

  async inject(_k: FaultKind, ctx: FaultContext): Promise<Injected> {
    const fs = ctx.prepared.state as SmallFs;
    const file = path.join(fs.dir, 'filler');
    const fd = openSync(file, 'a');
    const filler: Filler = { file, fd, bytes: fill(fd), timer: setInterval(() => void (filler.bytes += fill(fd)), 20) };
    try {
      fsyncSync(fd);
    } catch {
      // tmpfs: nothing to sync; a full ext4 may refuse — the space is taken either way.
    }
    return { what: `${fs.kind} of ${FS_KIB} KiB holding the store filled (${Math.round(filler.bytes / 1024)} KiB filler), kept full`, state: filler };
  },

  async heal(_k: FaultKind, ctx: FaultContext, injected: Injected) {
    const f = injected.state as Filler;
    clearInterval(f.timer);
    closeSync(f.fd);
    unlinkSync(f.file);
    ctx.log(`disk-full: filler of ${Math.round(f.bytes / 1024)} KiB deleted`);
  },
};

/**
 * Bit flips (silent corruption): one bit of a data page (pages.db), of the live WAL segment's
 * records, of an archived WAL segment, or of a snapshot chunk. Each has its detector: the scrub
 * (page-corruption → repair-page), the WAL scrub (wal-corruption → checkpoint-past-damage), the
 * snapshot manager's integrity pass (archive-corruption → repair-archive, snapshot-corruption →
 * repair-snapshot); a trial whose damage no detector names as corruption of its store fails.
 */
import { archivedSegments, damageColdPage, dataFile, damageLiveWal, flipBit, newestSnapshotChunks, probeFileDamage, size } from './files.js';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

/** Failure kinds that name damage to a store's files. */
export const CORRUPTION_KINDS = ['page-corruption', 'wal-corruption', 'archive-corruption', 'snapshot-corruption'] as const;

const KINDS: FaultKind[] = [
  // A page is repaired from a snapshot + WAL when its owner does not hold it: the trial starts
  // once the agent's first scheduled snapshot exists, as it does on any store it has protected for a while.
  { name: 'page-bitflip', description: 'one bit of a data page in pages.db flipped', target: 'page-corruption', expects: { type: 'failure', kinds: ['page-corruption'] }, needs: { snapshot: true } },
  // Live WAL damage too waits for the first snapshot. Before it, a damaged segment the owner's
  // next checkpoint retires (64 KiB segments: within ~0.3 s) is needed by nothing — not by crash
  // recovery, which starts past it, nor by any restore, which starts at a snapshot — and
  // retention drops it from the archive as the first snapshot is taken. A fault landing there
  // could be gone before a scrub read it: wal-truncated, seed 41, trials 7 and 9, cut 0.3 s
  // before the first snapshot (base LSN 4.04 M, the damage at 3.0 M), seen by no pass.
  { name: 'wal-live-bitflip', description: "one bit of the live WAL segment's records flipped", target: 'disk-failure', expects: { type: 'failure', kinds: CORRUPTION_KINDS }, needs: { snapshot: true } },
  // And damage to the archive: before the first snapshot an archived segment is needed by no
  // restore, and the first snapshot's retention prunes it (seed 9 trials 0, 3, 11, 13 of the long
  // run: the newest archived segment flipped 0.5 s after warm-up, gone before a pass read it).
  { name: 'wal-archived-bitflip', description: 'one bit of an archived WAL segment (.wal.lz4) flipped', target: 'disk-failure', expects: { type: 'failure', kinds: CORRUPTION_KINDS }, needs: { snapshot: true, archivedSegment: true } },
  { name: 'snapshot-bitflip', description: 'one bit of a snapshot chunk (.lz4) flipped', target: 'disk-failure', expects: { type: 'failure', kinds: CORRUPTION_KINDS }, needs: { snapshot: true } },
];

export const bitFlips: FaultFamily = {
  name: 'bit-flips',
  kinds: KINDS,

  async probe() {
    return probeFileDamage();
  },

  async inject(k: FaultKind, ctx: FaultContext): Promise<Injected> {
    const { rng } = ctx;
    const bit = rng.int(0, 7);
    switch (k.name) {
      case 'page-bitflip': {
        const { page, what } = await damageColdPage(ctx.store, ctx.coldPages, rng, (p) => `${flipBit(dataFile(ctx.store), p * ctx.pageSize + rng.int(0, ctx.pageSize - 1), bit)} (page ${p})`);
        return { what, state: { page } };
      }
      case 'wal-live-bitflip': {
        return { what: await damageLiveWal(ctx.store, rng, (file, at) => flipBit(file, at, bit)) };
      }
      case 'wal-archived-bitflip': {
        const files = archivedSegments(ctx.snapshots);
        if (files.length === 0) throw new Error('no archived WAL segment yet');
        // One of the two newest: an older one may be pruned by retention (snapshots every second
        // in the chaos config) before a pass comes by, and damage deleted is nothing to detect.
        const file = rng.pick(files.slice(-2));
        return { what: flipBit(file, rng.int(0, size(file) - 1), bit), state: { file } };
      }
      case 'snapshot-bitflip': {
        const files = newestSnapshotChunks(ctx.snapshots);
        if (files.length === 0) throw new Error('no snapshot chunk yet');
        const file = rng.pick(files);
        return { what: flipBit(file, rng.int(0, size(file) - 1), bit), state: { file } };
      }
      default:
        throw new Error(`bit-flips: unknown kind ${k.name}`);
    }
  },

  async heal() {
    // Damage stays: healing it is the agent's job.
  },
};

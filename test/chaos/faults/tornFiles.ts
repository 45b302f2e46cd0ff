/**
 * Torn and truncated files: half of a data page overwritten (a torn write: the first or the
 * second half replaced by other bytes), the live WAL segment cut inside its records (a lost
 * tail), a snapshot chunk cut to half its length. Each has its detector, as in bitFlips.ts.
 */
import { CORRUPTION_KINDS } from './bitFlips.js';
import { damageColdPage, damageLiveWal, dataFile, overwrite, probeFileDamage, newestSnapshotChunks, size, truncate } from './files.js';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

const KINDS: FaultKind[] = [
  { name: 'page-torn', description: 'half of a data page overwritten (a torn write)', target: 'page-corruption', expects: { type: 'failure', kinds: ['page-corruption'] }, needs: { snapshot: true } },
  // Live WAL damage is injected once the first snapshot exists (bitFlips.ts, wal-live-bitflip).
  { name: 'wal-truncated', description: 'the live WAL segment truncated inside its records', target: 'disk-failure', expects: { type: 'failure', kinds: CORRUPTION_KINDS }, needs: { snapshot: true } },
  { name: 'snapshot-truncated', description: 'a snapshot chunk truncated to half its length', target: 'disk-failure', expects: { type: 'failure', kinds: CORRUPTION_KINDS }, needs: { snapshot: true } },
];

export const tornFiles: FaultFamily = {
  name: 'torn-files',
  kinds: KINDS,

  async probe() {
    return probeFileDamage();
  },

  async inject(k: FaultKind, ctx: FaultContext): Promise<Injected> {
    const { rng } = ctx;
    switch (k.name) {
      case 'page-torn': {
        const half = ctx.pageSize / 2;
        const { page, what } = await damageColdPage(ctx.store, ctx.coldPages, rng, (p) => {
          const second = rng.chance(0.5);
          overwrite(dataFile(ctx.store), p * ctx.pageSize + (second ? half : 0), half, rng);
          return `the ${second ? 'second' : 'first'} half of page ${p} of ${dataFile(ctx.store)} overwritten`;
        });
        return { what, state: { page } };
      }
      case 'wal-truncated': {
        const what = await damageLiveWal(ctx.store, rng, (file, at) => {
          const was = size(file);
          truncate(file, at);
          return `${file} truncated from ${was} to ${at} bytes`;
        });
        return { what };
      }
      case 'snapshot-truncated': {
        const files = newestSnapshotChunks(ctx.snapshots);
        if (files.length === 0) throw new Error('no snapshot chunk yet');
        const file = rng.pick(files);
        const was = size(file);
        truncate(file, Math.floor(was / 2));
        return { what: `${file} truncated from ${was} to ${Math.floor(was / 2)} bytes`, state: { file } };
      }
      default:
        throw new Error(`torn-files: unknown kind ${k.name}`);
    }
  },

  async heal() {
    // Damage stays: healing it is the agent's job.
  },
};

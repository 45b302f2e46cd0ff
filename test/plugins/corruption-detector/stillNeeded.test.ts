// checkpoint-past-damage's verify reads the store's state, then its checkpoint record. A live owner
// that checkpoints between the two reads can retire the segment of the record read first: the
// verify reads the newer one instead of failing (a chaos trial's repair escalated on that). A
// checkpoint record the damage itself took (a cut tail) means the store needs a new checkpoint.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PageEngine } from '../../../core/contracts/PageEngine.js';
import { raError } from '../../../core/errors.js';
import { stillNeeded } from '../../../plugins/corruption-detector/walScrub.js';
import { pagestore } from '../../helpers/engine.js';

/** The page store's face with its control file and log read from the given sequence. */
function racing(states: Array<{ checkpointLsn: number; redoLsn: number }>, gone: Set<number>, active: Array<[number, number, number]> = []): PageEngine {
  let reads = 0;
  const base = { storeId: new Uint8Array(16), segmentSize: 65536, pageSize: 4096, pageCount: 8, nextTxId: 1 };
  return {
    ...pagestore,
    files: { ...pagestore.files, readState: async () => ({ ...base, ...states[Math.min(reads++, states.length - 1)]! }), logDir: (d: string) => d },
    log: {
      ...pagestore.log,
      readRecord: async (_dir: string, _s: unknown, lsn: number) => {
        if (gone.has(lsn)) throw raError('RA_ERR_WAL_CORRUPT', `WAL segment holding LSN ${lsn} is missing`);
        return new Uint8Array([lsn & 0xff]);
      },
      decodeCheckpoint: () => ({ redoLsn: 0, nextTxId: 1, activeTransactions: active, dirtyPages: [] }),
    },
  } as unknown as PageEngine;
}

describe('stillNeeded (checkpoint-past-damage verify)', () => {
  it('reads the newer checkpoint when the one it read first was retired under it', async () => {
    const e = racing([{ checkpointLsn: 1000, redoLsn: 900 }, { checkpointLsn: 5000, redoLsn: 4900 }], new Set([1000]));
    assert.equal(await stillNeeded(e, '/s', 500), null);
  });

  it('still fails on a checkpoint record that is unreadable while the control file stays put, outside the damaged segment', async () => {
    const e = racing([{ checkpointLsn: 70_000, redoLsn: 69_000 }], new Set([70_000]));
    await assert.rejects(stillNeeded(e, '/s', 500), /missing/);
  });

  it('a checkpoint record after the damage in its segment that does not read (a cut tail took it) is still needed, not a throw', async () => {
    // The control file points at a record the cut removed: crash recovery now lacks a checkpoint,
    // so the action must ask the owner for a new one rather than give up.
    const e = racing([{ checkpointLsn: 1000, redoLsn: 900 }], new Set([1000]));
    assert.match((await stillNeeded(e, '/s', 500)) ?? '', /checkpoint record at LSN 1000 lies after the damage at 500/);
  });

  it('says why when redo or an active transaction still reaches back to the damage', async () => {
    assert.match((await stillNeeded(racing([{ checkpointLsn: 1000, redoLsn: 400 }], new Set()), '/s', 500)) ?? '', /redo starts at LSN 400/);
    assert.match((await stillNeeded(racing([{ checkpointLsn: 1000, redoLsn: 900 }], new Set(), [[7, 300, 950]]), '/s', 500)) ?? '', /transaction\(s\) 7/);
  });
});

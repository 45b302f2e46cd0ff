// Adversarial (session 11, adv11) on 05972a2 (FULL_SIZE segments): the scan refuses a FULL_SIZE
// segment shorter than its size only when it is the NEWEST one. An older segment still redone
// (at or after the redo point) that is cut is "judged by its records": the cut is noticed only if
// the next segment's first record would have fitted after the cut. When that first record is
// large (a full page image) and the cut falls within its size of the segment's end, the cut
// takes acknowledged commits with it and recovery succeeds past the hole, applying the records
// after it. The file's FULL_SIZE flag says it was segmentSize bytes long: the length alone
// proves the cut, whatever the records say.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { RecordType, kRecLength, kRecType } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE, isFullSize } from '../../../plugins/pagestore/walSegments.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 36864;

/** Record starts and types of a segment file, from its header up to the first empty slot. */
function recordsOf(bytes: Buffer): { at: number; type: number; len: number }[] {
  const out: { at: number; type: number; len: number }[] = [];
  for (let p = SEGMENT_HEADER_SIZE; p + 8 <= bytes.byteLength; ) {
    const len = bytes.readUInt32LE(p + kRecLength);
    if (len === 0 || p + len > bytes.byteLength) break;
    out.push({ at: p, type: bytes[p + kRecType]!, len });
    p += len;
  }
  return out;
}

describe('a sealed FULL_SIZE segment cut inside its records', () => {
  it('is refused by recovery, not replayed past', async () => {
    const dir = tmpStoreDir('ra-adv11-sealed-');
    // No checkpoint after create: every segment is still needed by redo.
    killedWriter({ dir, commits: 300, open: 0, pages: 64, segmentSize: SEGMENT });
    const walDir = path.join(dir, 'wal');
    const names = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort();
    assert.ok(names.length >= 3, `${names.length} segments`);
    // An older segment whose successor starts with a record larger than the room a cut can leave.
    let chosen: { file: string; cutAt: number; commitsLost: number } | undefined;
    for (let k = 0; k + 1 < names.length - 1 && !chosen; k++) {
      const bytes = readFileSync(path.join(walDir, names[k]!));
      assert.ok(isFullSize(bytes), `${names[k]} made FULL_SIZE`);
      const next = readFileSync(path.join(walDir, names[k + 1]!));
      const firstNext = next.readUInt32LE(SEGMENT_HEADER_SIZE + kRecLength);
      const recs = recordsOf(bytes);
      const cut = recs.find((r) => SEGMENT - r.at < firstNext);
      if (!cut) continue;
      const lost = recs.filter((r) => r.at >= cut.at && r.type === RecordType.Commit).length;
      if (lost > 0) chosen = { file: path.join(walDir, names[k]!), cutAt: cut.at, commitsLost: lost };
    }
    assert.ok(chosen, 'an older segment whose cut the records cannot show');
    // The cut: to a record boundary inside its records; acknowledged commits go with it.
    truncateSync(chosen.file, chosen.cutAt);
    await assert.rejects(recover(dir), (err) => isRaError(err, 'RA_ERR_WAL_CORRUPT'), `recovery succeeded past a cut FULL_SIZE segment (${chosen.commitsLost} acknowledged commit(s) gone with the cut)`);
  });
});

// Adversarial (session 11, adv11) on 05972a2: the WAL scrub (walCheck.ts) reports a FULL_SIZE
// segment shorter than its size only when it is the current one. A sealed segment still needed
// by redo, cut at a record boundary within its successor's first-record size of its end, shows
// nothing wrong by its records (they stop where the next first record would not have fitted):
// the scrub reports nothing, while recovery (walScan.ts) refuses the log. The scrub is what is
// meant to find such damage before a crash needs the log.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkLiveWal } from '../../../plugins/corruption-detector/walCheck.js';
import { pageStoreEngine } from '../../../plugins/pagestore/index.js';
import { RecordType, kRecLength, kRecType } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE } from '../../../plugins/pagestore/walSegments.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

const SEGMENT = 36864;

describe('the WAL scrub and a sealed FULL_SIZE segment cut short', () => {
  it('reports the cut', async () => {
    const dir = tmpStoreDir('ra-adv11-scrubcut-');
    killedWriter({ dir, commits: 300, open: 0, pages: 64, segmentSize: SEGMENT });
    const walDir = path.join(dir, 'wal');
    const names = readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort();
    let chosen: { file: string; at: number } | undefined;
    for (let k = 0; k + 1 < names.length - 1 && !chosen; k++) {
      const bytes = readFileSync(path.join(walDir, names[k]!));
      const firstNext = readFileSync(path.join(walDir, names[k + 1]!)).readUInt32LE(SEGMENT_HEADER_SIZE + kRecLength);
      for (let p = SEGMENT_HEADER_SIZE, len; p + 8 <= bytes.byteLength && (len = bytes.readUInt32LE(p + kRecLength)) > 0; p += len) {
        if (SEGMENT - p < firstNext && bytes[p + kRecType] === RecordType.Commit) {
          chosen = { file: path.join(walDir, names[k]!), at: p };
          break;
        }
      }
    }
    assert.ok(chosen, 'a sealed segment whose cut its records cannot show');
    truncateSync(chosen.file, chosen.at);
    const r = await checkLiveWal(pageStoreEngine(), dir);
    assert.ok(r.damage.some((d) => d.file === chosen!.file), `damage reported: ${JSON.stringify(r.damage.map((d) => [path.basename(d.file), d.reason]))}`);
  });
});

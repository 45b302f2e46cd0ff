// Adversarial (session 10, adv10; fixed in session 11 by FULL_SIZE segments, walSegments.ts), on dd122e6's reasoning ("live WAL damage before the first
// snapshot is needed by nothing"): damage to the live segment IS needed — by crash recovery —
// until the owner's next checkpoint moves redo past it. The chaos fault wal-truncated cuts the
// live segment inside its records. If the owner dies before a scrub reads the cut (walCheck
// compares with the owner's durable LSN, which dies with it), the agent's recovery takes the cut
// for a torn tail: it reports success, the restarted writer truncates there and appends, and the
// commits acknowledged after the cut are gone with nothing left for any pass to find.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync, truncateSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import { isRaError } from '../../../core/errors.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { balancesAfter } from '../../helpers/transfers.js';

const PAGES = 40;

async function killedWriter(spec: { dir: string; archive: string; pages: number; before: number; after: number }): Promise<void> {
  const child = spawn(process.execPath, [fixture('archivingWriterKill.js'), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  for await (const line of createInterface({ input: child.stdout! })) if (line === 'snap') child.stdin!.write('go\n');
  assert.equal(await exited, 'SIGKILL');
}

async function balances(dir: string): Promise<Map<number, bigint>> {
  const store = await PageStore.open(dir, { controlSocket: false });
  try {
    const tx = store.begin();
    const out = new Map<number, bigint>();
    for (let p = 2; p < PAGES; p++) {
      const b = await tx.read(p);
      out.set(p, b.readUInt32LE(0) === 0 ? 1000n : b.readBigInt64LE(8));
    }
    await tx.commit();
    return out;
  } finally {
    await store.close();
  }
}

describe('live WAL cut, then the owner dies before any pass reads it', () => {
  it("the agent's recovery refuses the log, or every acknowledged commit survives", async () => {
    const dir = tmpStoreDir('ra-adv10-cut-');
    const archive = path.join(path.dirname(dir), 'snaps');
    await killedWriter({ dir, archive, pages: PAGES, before: 10, after: 400 });
    // Every one of the 410 transfers was acknowledged (commit awaited) before the SIGKILL.
    const walDir = path.join(dir, 'wal');
    const live = path.join(walDir, readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
    // The chaos fault's damage: cut inside its records (a FULL_SIZE segment's zeros after them left aside).
    const records = segmentContentLength(readFileSync(live));
    assert.ok(records > SEGMENT_HEADER_SIZE + 4096, `the live segment holds ${records - SEGMENT_HEADER_SIZE} bytes of records`);
    truncateSync(live, Math.floor(records / 2));
    const cut = readFileSync(live);

    let report;
    try {
      report = await recover(dir); // as transaction-rollback runs it
    } catch (err) {
      // Refused: the agent notices (a wal-corruption for a person, or a repair from elsewhere).
      assert.ok(isRaError(err, 'RA_ERR_WAL_CORRUPT') && /cut short/.test((err as Error).message), String(err));
      assert.ok(readFileSync(live).equals(cut), 'the refused log is left as it was');
      assert.ok(statSync(live).size < 65536);
      return;
    }
    assert.deepEqual(await balances(dir), balancesAfter(410, PAGES), `recovery succeeded (torn tail ${JSON.stringify(report.tornTail)}) without every acknowledged transfer`);
  });
});

// The log's rolling checksum R (#14): segment headers carry the epoch and R at their start, the
// writer keeps R as it appends and recomputes it when it reopens, and rollingAt gives R(L) for any
// record boundary L from L's segment alone. Checked against R folded independently over the
// segment files with another XXH3 implementation.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import type { WalWriter } from '../../../plugins/pagestore/walWriter.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { npmXxh3 } from '../../helpers/oracles.js';
import { tmpStoreDir } from '../../helpers/store.js';

const SEG = 64 * 1024;

interface Oracle {
  /** R at each record boundary (each record's end, and each segment's first record position). */
  at: Map<number, bigint>;
  /** Each segment's header: start → (epoch, R). */
  headers: Map<number, { epoch: bigint; rolling: bigint }>;
  /** R at the segment's start, folded independently. */
  startR: Map<number, bigint>;
  end: number;
}

/**
 * Folds R over every record of every segment, with @node-rs/xxhash, reading the files directly:
 * from 0 at segment 0, or from what an earlier fold found at the first segment still there (a
 * checkpoint retires segments).
 */
function oracle(dir: string, earlier?: Oracle): Oracle {
  const files = readdirSync(path.join(dir, 'wal')).filter((n) => n.endsWith('.wal')).sort();
  const at = new Map<number, bigint>();
  const headers = new Map<number, { epoch: bigint; rolling: bigint }>();
  const startR = new Map<number, bigint>();
  const first = parseInt(files[0]!.slice(0, 16), 16);
  let r = first === 0 ? 0n : earlier?.startR.get(first);
  assert.ok(r !== undefined, `R at segment ${first} is known`);
  let end = 0;
  for (const name of files) {
    const start = parseInt(name.slice(0, 16), 16);
    const b = readFileSync(path.join(dir, 'wal', name));
    headers.set(start, { epoch: b.readBigUInt64LE(36), rolling: b.readBigUInt64LE(44) });
    startR.set(start, r);
    at.set(start + 64, r);
    let p = 64;
    while (p + 64 <= b.byteLength) {
      const total = b.readUInt32LE(p);
      if (total < 64 || p + total > b.byteLength || b.readBigUInt64LE(p + 8) !== BigInt(start + p)) break;
      const sum = b.readBigUInt64LE(p + total - 8);
      assert.equal(sum, npmXxh3([b.subarray(p, p + total - 8)])[0], `record at ${start + p} checks`);
      const pair = Buffer.alloc(16);
      pair.writeBigUInt64LE(r, 0);
      pair.writeBigUInt64LE(sum, 8);
      r = npmXxh3([pair])[0]!;
      p += total;
      at.set(start + p, r);
      end = start + p;
    }
  }
  return { at, headers, startR, end };
}

const walOf = (s: PageStore) => (s as unknown as { wal: WalWriter }).wal;

async function commits(store: PageStore, n: number, from: number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % 30), (i * 13) % 500, Buffer.from(`commit ${i} `.repeat(1 + (i % 40))));
    await tx.commit();
  }
}

describe('the rolling checksum in segment headers', () => {
  it('headers carry R at each segment start, the writer folds R as it appends, and rollingAt matches at every record boundary', async () => {
    const dir = tmpStoreDir('ra-rolling-');
    let store = await PageStore.open(dir, { create: true, pageCount: 32, pageSize: 4096, segmentSize: SEG, checkpointWalBytes: 1 << 30, checkpointIntervalMs: 0, controlSocket: false });
    await commits(store, 400, 0);
    let o = oracle(dir);
    assert.ok(o.headers.size >= 4, `several segments (${o.headers.size})`);
    for (const [start, h] of o.headers) {
      assert.equal(h.rolling, o.startR.get(start), `segment ${start}: header R is R at its start`);
      assert.equal(h.epoch, 0n);
    }
    assert.equal(o.end, store.endLsn);
    assert.equal(walOf(store).rolling, o.at.get(o.end), 'the writer R at the end of the log');
    assert.equal(walOf(store).flushedRolling, o.at.get(o.end));
    const storeId = store.geometry.storeId;
    let checked = 0;
    for (const [lsn, r] of o.at) {
      if (checked++ % 7 !== 0 && lsn !== o.end) continue;
      assert.equal((await rollingAt(path.join(dir, 'wal'), storeId, SEG, lsn)).rolling, r, `R(${lsn})`);
    }
    // Not a record boundary: refused by name.
    await assert.rejects(rollingAt(path.join(dir, 'wal'), storeId, SEG, o.end - 8), /no record of .* ends at LSN/);

    // Reopened (the writer recomputes R from the end segment's header and records) and written
    // on: the new segments' headers continue the same fold. A new epoch is stamped from then on.
    await store.close();
    store = await PageStore.open(dir, { checkpointWalBytes: 1 << 30, checkpointIntervalMs: 0, controlSocket: false });
    const reopenedEnd = store.endLsn;
    const full = o;
    assert.equal(walOf(store).rolling, oracle(dir, full).at.get(reopenedEnd), 'R recomputed on open');
    walOf(store).epoch = 7;
    await commits(store, 300, 400);
    o = oracle(dir, full);
    for (const [start, h] of o.headers) {
      assert.equal(h.rolling, o.startR.get(start), `segment ${start} after reopen`);
      if (start > reopenedEnd) assert.equal(h.epoch, 7n, `segment ${start} carries the new epoch`);
    }
    assert.equal(walOf(store).rolling, o.at.get(o.end));
    await store.close();
  });
});

// Catch-up from the primary's segment files across a segment a checkpoint sealed (WalWriter.sealIfCut):
// the live FULL_SIZE segment was cut under its writer, and the checkpoint that sealed it starts the
// next segment although the cut one had room (FORMAT.md, "unused tail of a sealed segment").
// Recovery's scan and a replica's log accept that jump; the sender's catch-up must too, over real
// TCP, for a replica that is behind it. Real damage in the sealed segment is still refused: a byte
// flipped inside its records, or a cut that took records with it (a cut at a record boundary, which
// the records alone cannot show: the next segment's header R says what they folded to).
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readdirSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { describe, it } from 'node:test';
import { FrameType, ackFrame, connectChannel, helloFrame, type ReplicationChannel } from '../../../core/replication/protocol.js';
import { isRaError } from '../../../core/errors.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { RecordType, kRecLength, kRecType } from '../../../plugins/pagestore/walRecord.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { pagestore } from '../../helpers/engine.js';
import { copyStoreDir, tmpStoreDir } from '../../helpers/store.js';
import { until } from './agentHarness.js';

const SECRET = 'catch-up-sealed-secret-0123456789';
const SEG = 65536;
const PAGES = 32;

type Damage = 'none' | 'flip-record' | 'cut-records';

/** Record starts of a segment file's bytes, from its header to the first that is not one. */
function recordStarts(bytes: Buffer): number[] {
  const out: number[] = [];
  for (let at = SEGMENT_HEADER_SIZE; at + 8 <= bytes.byteLength; ) {
    const len = bytes.readUInt32LE(at + kRecLength);
    if (len < 64 || at + len > bytes.byteLength) break;
    out.push(at);
    at += len;
  }
  return out;
}

async function commits(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % (PAGES - 1)), 64 * (i % 40), Buffer.from(`${tag} ${i} `.repeat(6)));
    await tx.commit();
  }
}

/** A replica of this primary that is connected and behind (at `lsn`, acknowledging nothing more): checkpoints keep its segments. */
async function holder(port: number, lsn: number, rolling: bigint): Promise<ReplicationChannel> {
  const ch = await connectChannel({ host: '127.0.0.1', port, secret: SECRET });
  ch.epoch = 1;
  ch.send(helloFrame({ epoch: 1, lsn, rolling, id: 'holder' }));
  // Frames are read and dropped; an ack of `lsn` now and then keeps the session from being taken as dead.
  void (async () => {
    for (;;) await ch.next();
  })().catch(() => undefined);
  const t = setInterval(() => ch.send(ackFrame(1, { durableLsn: lsn, appliedLsn: lsn })), 200);
  t.unref();
  void ch.closed.finally(() => clearInterval(t));
  return ch;
}

interface Sealed {
  store: PageStore;
  primaryDir: string;
  replicaDir: string;
  baseLsn: number;
  baseRolling: bigint;
  /** Where the sealed segment's records end once cut (and damaged). */
  recordsEnd: number;
  /** The first LSN past the jump: the sealing checkpoint's record. */
  sealedTo: number;
  /** The damaged record's LSN (flip-record), or the LSN of the first record the cut took (cut-records). */
  damagedLsn: number;
  close(): Promise<void>;
}

/**
 * A running primary whose live segment (its second) was cut and sealed by a checkpoint while a
 * replica was connected and behind; then more commits in the next segment. `damage` says what the
 * sealed segment lost besides its zeros.
 */
async function sealedPrimary(damage: Damage): Promise<Sealed> {
  const root = path.dirname(tmpStoreDir(`ra-catchseal-${damage}-`));
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, pageSize: 4096, segmentSize: SEG, controlSocket: false })).close();
  copyStoreDir(primaryDir, replicaDir);
  writeFileSync(path.join(primaryDir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50 }), { mode: 0o600 });
  const store = await PageStore.open(primaryDir, { checkpointIntervalMs: 0, checkpointWalBytes: Number.MAX_SAFE_INTEGER, controlSocket: false });
  const walDir = walDirOf(primaryDir);
  const { storeId } = await pagestore.files.readState(primaryDir);
  const baseLsn = store.status().flushedLsn;
  const baseRolling = (await rollingAt(walDir, storeId, SEG, baseLsn)).rolling;
  const hold = await holder(store.replicationAddress!.port, baseLsn, baseRolling);
  await until('the holder replica connected', () => (store.status().replication!.replicas.some((r) => r.id === 'holder' && r.state === 'streaming') ? true : undefined));
  for (let i = 0; store.status().flushedLsn < SEG + SEG / 3; i++) await commits(store, 1, `a${i}`);
  const live = path.join(walDir, readdirSync(walDir).filter((f) => f.endsWith('.wal')).sort().at(-1)!);
  const liveStart = parseInt(path.basename(live).slice(0, 16), 16);
  assert.equal(liveStart, SEG, 'the live segment is the second');
  const bytes = readFileSync(live);
  const starts = recordStarts(bytes);
  assert.ok(starts.length >= 8, `the live segment holds records (${starts.length})`);
  let recordsEnd = liveStart + segmentContentLength(bytes);
  let damagedLsn = 0;
  if (damage === 'flip-record') {
    const at = starts[Math.floor(starts.length / 2)]!;
    const len = bytes.readUInt32LE(at + kRecLength);
    const fd = openSync(live, 'r+');
    try {
      writeSync(fd, Buffer.from([bytes[at + len - 12]! ^ 0x5a]), 0, 1, at + len - 12);
    } finally {
      closeSync(fd);
    }
    damagedLsn = liveStart + at;
  }
  // The cut: to where the records end (only zeros go), or to a record boundary in their middle
  // before a commit (acknowledged commits go with it).
  let cutAt = recordsEnd - liveStart;
  if (damage === 'cut-records') {
    const from = Math.floor(starts.length / 2);
    const k = starts.findIndex((at, i) => i >= from && starts.slice(i).some((b) => bytes[b + kRecType] === RecordType.Commit));
    cutAt = starts[k]!;
    recordsEnd = damagedLsn = liveStart + cutAt;
  }
  truncateSync(live, cutAt);
  await store.checkpoint();
  const sealedTo = 2 * SEG + SEGMENT_HEADER_SIZE;
  await commits(store, 30, 'b');
  assert.ok(store.status().flushedLsn > sealedTo, 'the checkpoint moved the log on to the next segment');
  const after = readFileSync(path.join(walDir, `${(2 * SEG).toString(16).padStart(16, '0')}.wal`));
  assert.equal(after[SEGMENT_HEADER_SIZE + kRecType], RecordType.Checkpoint, 'the sealing checkpoint starts the next segment');
  return {
    store,
    primaryDir,
    replicaDir,
    baseLsn,
    baseRolling,
    recordsEnd,
    sealedTo,
    damagedLsn,
    close: async () => {
      hold.close();
      await store.close();
    },
  };
}

/** A stand-in replica's catch-up from `lsn`: the frames' ranges, checked to follow each other, until the primary's flushed end or an error. */
async function catchUp(p: Sealed): Promise<{ end: number; failure: unknown }> {
  const ch = await connectChannel({ host: '127.0.0.1', port: p.store.replicationAddress!.port, secret: SECRET });
  ch.epoch = 1;
  ch.send(helloFrame({ epoch: 1, lsn: p.baseLsn, rolling: p.baseRolling, id: 'probe' }));
  const target = p.store.status().flushedLsn;
  let end = p.baseLsn;
  let failure: unknown;
  try {
    while (end < target) {
      const f = await ch.next();
      if (f.type !== FrameType.wal) continue;
      const jumped = f.startLsn === end - (end % SEG) + SEG + SEGMENT_HEADER_SIZE;
      assert.ok(f.startLsn === end || jumped, `frame at ${f.startLsn} follows ${end}`);
      if (jumped && end - (end % SEG) === SEG) assert.equal(end, p.recordsEnd, `the jump out of the sealed segment is from where its records end`);
      end = f.endLsn;
    }
  } catch (err) {
    failure = err;
  } finally {
    ch.close();
  }
  return { end, failure };
}

describe('catch-up across a segment a checkpoint sealed (WalWriter.sealIfCut)', () => {
  it('sends a replica that is behind everything, across the jump, and a real replica follows to the end', async () => {
    const p = await sealedPrimary('none');
    let session: ReplicaSession | undefined;
    try {
      const { end, failure } = await catchUp(p);
      assert.equal(failure, undefined, `catch-up stopped: ${String(failure)}`);
      assert.equal(end, p.store.status().flushedLsn);
      const gone = p.store.status().replication!.replicas.find((r) => r.id === 'probe' && r.error);
      assert.equal(gone?.error, undefined, 'the primary reports no damage');
      session = new ReplicaSession({ storeId: 'r', dir: p.replicaDir, engine: pagestore, host: '127.0.0.1', port: p.store.replicationAddress!.port, secret: SECRET, id: 'r1', log: pino({ level: 'silent' }), onRefused: () => undefined });
      await session.start();
      await commits(p.store, 5, 'c');
      const flushed = p.store.status().flushedLsn;
      await until('the replica durable to the primary\'s end', () => (session!.status().durableLsn >= flushed ? true : undefined));
      assert.equal(session.status().durableLsn, flushed);
    } finally {
      await session?.stop();
      await p.close();
    }
  });

  for (const damage of ['flip-record', 'cut-records'] as const) {
    it(`refuses a sealed segment with ${damage === 'flip-record' ? 'a byte flipped inside its records' : 'records cut off at a record boundary'}: nothing past the damage is sent`, async () => {
      const p = await sealedPrimary(damage);
      try {
        const { end, failure } = await catchUp(p);
        assert.ok(isRaError(failure), `catch-up went on to ${end}: ${String(failure)}`);
        assert.equal(failure.details?.peerCode, 'RA_ERR_WAL_CORRUPT', failure.message);
        assert.match(failure.message, new RegExp(`\\b${p.damagedLsn}\\b`));
        assert.equal(end, p.damagedLsn, 'every record before the damage was sent, none after');
        const seen = await until('the primary reporting it', () => p.store.status().replication!.replicas.find((r) => r.id === 'probe' && r.error));
        assert.match(seen.error!, /damaged|missing/);
      } finally {
        await p.close();
      }
    });
  }
});

// Catch-up from the primary's segment files over a damaged record (#14 item 2): a byte flipped
// inside a record in the middle of a closed segment of a running primary (its real sender, real
// TCP). A replica that needs that segment gets every record before the damaged one and then an
// `error` frame, RA_ERR_WAL_CORRUPT; nothing past the damage is ever sent (a stand-in replica
// records every frame's range, independently of the replica store's own checks), the primary
// reports it in its replica status, and a real replica (ReplicaSession) stops exactly there.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { FrameType, connectChannel, helloFrame } from '../../../core/replication/protocol.js';
import { isRaError } from '../../../core/errors.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { SEGMENT_HEADER_SIZE, segmentPath } from '../../../plugins/pagestore/walSegments.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { pagestore } from '../../helpers/engine.js';
import { copyStoreDir, tmpStoreDir } from '../../helpers/store.js';
import { until } from './agentHarness.js';

const SECRET = 'catch-up-damaged-secret-0123456789';
const SEG = 65536;
const PAGES = 32;

/** Flips a byte inside a record in the middle of segment `start`; returns that record's LSN. */
function damageMidSegment(walDir: string, start: number): number {
  const fd = openSync(segmentPath(walDir, start), 'r+');
  try {
    const buf = Buffer.alloc(SEG);
    const n = readSync(fd, buf, 0, SEG, 0);
    const records: Array<{ at: number; len: number }> = [];
    for (let at = SEGMENT_HEADER_SIZE; at + 8 <= n; ) {
      const len = buf.readUInt32LE(at);
      if (len < 8 || at + len > n) break;
      records.push({ at, len });
      at += len;
    }
    assert.ok(records.length >= 4, `segment ${start} holds records (${records.length})`);
    const r = records[Math.floor(records.length / 2)]!;
    const b = Buffer.from([buf[r.at + r.len - 12]! ^ 0x5a]);
    writeSync(fd, b, 0, 1, r.at + r.len - 12);
    return start + r.at;
  } finally {
    closeSync(fd);
  }
}

describe('catch-up over a damaged record of the primary log', () => {
  const root = path.dirname(tmpStoreDir('ra-catchdmg-'));
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  const log = pino({ level: 'silent' });
  let store: PageStore;
  let damagedLsn = 0;
  let baseLsn = 0;
  let session: ReplicaSession | undefined;

  before(async () => {
    await (await PageStore.open(primaryDir, { create: true, pageCount: PAGES, pageSize: 4096, segmentSize: SEG, controlSocket: false })).close();
    copyStoreDir(primaryDir, replicaDir);
    writeFileSync(path.join(primaryDir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 1, keepaliveMs: 50 }), { mode: 0o600 });
    store = await PageStore.open(primaryDir, { checkpointIntervalMs: 0, checkpointWalBytes: Number.MAX_SAFE_INTEGER, controlSocket: false });
    baseLsn = store.status().flushedLsn;
    for (let i = 0; store.status().flushedLsn < 4 * SEG; i++) {
      const tx = store.begin();
      for (let k = 0; k < 3; k++) await tx.write(1 + ((i * 3 + k) % (PAGES - 1)), 64 * (i % 50), Buffer.from(`commit ${i} change ${k} `.repeat(4)));
      await tx.commit();
    }
    // Segment 1 is closed (the writer is two segments further on): damage a record in its middle.
    damagedLsn = damageMidSegment(walDirOf(primaryDir), SEG);
  });
  after(async () => {
    await session?.stop();
    await store?.close();
  });

  it('sends every record before the damaged one, then RA_ERR_WAL_CORRUPT, and nothing past it', async () => {
    const { storeId } = await pagestore.files.readState(primaryDir);
    const { rolling } = await rollingAt(walDirOf(primaryDir), storeId, SEG, baseLsn);
    const ch = await connectChannel({ host: '127.0.0.1', port: store.replicationAddress!.port, secret: SECRET });
    ch.epoch = 1;
    ch.send(helloFrame({ epoch: 1, lsn: baseLsn, rolling, id: 'probe' }));
    let end = baseLsn;
    let failure: unknown;
    try {
      for (;;) {
        const f = await ch.next();
        if (f.type !== FrameType.wal) continue;
        assert.ok(f.startLsn === end || f.startLsn === end - (end % SEG) + SEG + SEGMENT_HEADER_SIZE, `frame at ${f.startLsn} follows ${end}`);
        end = f.endLsn;
        assert.ok(end <= damagedLsn, `frame [${f.startLsn}, ${f.endLsn}) goes past the damaged record at ${damagedLsn}`);
      }
    } catch (err) {
      failure = err;
    } finally {
      ch.close();
    }
    assert.ok(isRaError(failure), String(failure));
    assert.equal(failure.details?.peerCode, 'RA_ERR_WAL_CORRUPT', failure.message);
    assert.match(failure.message, new RegExp(`record at LSN ${damagedLsn}\\b.*damaged|damaged.*${damagedLsn}`));
    assert.equal(end, damagedLsn, 'every record before the damaged one was sent');
    const seen = await until('the primary reporting it', () => store.status().replication!.replicas.find((r) => r.id === 'probe' && r.error));
    assert.match(seen.error!, /damaged/);
  });

  it('a real replica stops at the damaged record, and stays there', async () => {
    const { port } = store.replicationAddress!;
    session = new ReplicaSession({ storeId: 'r', dir: replicaDir, engine: pagestore, host: '127.0.0.1', port, secret: SECRET, id: 'r1', log, onRefused: () => undefined });
    await session.start();
    await until('the replica told why', () => (/damaged/.test(session!.status().lastEnded?.reason ?? session!.status().reason ?? '') ? true : undefined));
    // What it received before the refusal is made durable by its apply timer, not at once.
    await until('the replica durable up to the damaged record', () => (session!.status().durableLsn >= damagedLsn ? true : undefined));
    assert.equal(session.status().durableLsn, damagedLsn);
    const connects = session.status().connects;
    await until('a retry', () => (session!.status().connects > connects + 1 ? true : undefined));
    assert.equal(session.status().durableLsn, damagedLsn, 'retries never get past it');
  });
});

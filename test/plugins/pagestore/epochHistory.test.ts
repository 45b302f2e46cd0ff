// Epoch history (#15): a replica store reopened as a primary at a newer epoch forks its log (a new
// segment stamped with the epoch, at its old end); the fork survives kill -9 and reopening; a
// replica that was behind on the common history follows the new primary across the fork and ends
// with its pages; the old primary, whose log goes on past where the new primary's history began,
// is refused as diverged with the fork LSN, and nothing of it is touched.
//
// Real stores and the agent's real replica session (plugins/replication/replicaSession.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { after, before, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { connectChannel, helloFrame } from '../../../core/replication/protocol.js';
import { EPOCHS_FILE, epochHistory, readEpochFile, segmentEpoch, type EpochStart } from '../../../plugins/pagestore/epochHistory.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { openReplica } from '../../../plugins/pagestore/replica.js';
import { walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { SEGMENT_HEADER_SIZE, listSegments, segmentContentLength, segmentPath, segmentStartOf } from '../../../plugins/pagestore/walSegments.js';
import { ReplicaSession } from '../../../plugins/replication/replicaSession.js';
import { pagestore } from '../../helpers/engine.js';
import { fixture } from '../../helpers/paths.js';
import { copyStoreDir, dataBytes, tmpStoreDir } from '../../helpers/store.js';
import { until } from '../../helpers/wait.js';

const SECRET = 'a replication secret of some length';
const SEG = 64 * 1024;
const PAGES = 32;
const PAGE = 4096;
const NEW_EPOCH = 5;
const log = pino({ level: 'silent' });

const root = path.dirname(tmpStoreDir('ra-epoch-'));
const oldPrimaryDir = path.join(root, 'old-primary');
const promotedDir = path.join(root, 'promoted');
const behindDir = path.join(root, 'behind');

function writeConfig(dir: string, epoch: number): void {
  writeFileSync(path.join(dir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch, keepaliveMs: 50 }), { mode: 0o600 });
}

async function commits(store: PageStore, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % (PAGES - 1)), (i * 29) % 3000, Buffer.from(`commit ${i};`.repeat(1 + (i % 30))));
    await tx.commit();
  }
}

function session(dir: string, id: string, port: number, refusals: string[] = []): ReplicaSession {
  return new ReplicaSession({ storeId: id, dir, engine: pagestore, host: '127.0.0.1', port, secret: SECRET, id, log, onRefused: (code, reason) => refusals.push(`${code}: ${reason}`) });
}

/** Runs the promoteKill fixture on `dir` (opens it as its replication.json says, commits, SIGKILL). */
function promoteAndKill(dir: string, commitCount: number): void {
  const r = spawnSync(process.execPath, [fixture('promoteKill.js'), JSON.stringify({ dir, commits: commitCount, pages: PAGES })], { encoding: 'utf8', timeout: 60_000 });
  if (r.signal !== 'SIGKILL' || !r.stdout.includes('ready')) throw new Error(`fixture did not die as planned: ${r.signal ?? r.status} ${r.stderr}`);
}

/** Every file of a store's log (and its epoch files), by name. */
function logFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const n of readdirSync(path.join(dir, 'wal'))) out.set(n, readFileSync(path.join(dir, 'wal', n)));
  return out;
}

describe('epoch history: promotion forks the log, replicas on the common history follow it', () => {
  /** Where the promoted replica's log ended (its durable end when it stopped receiving). */
  let promotedEnd = 0;
  /** Where the replica that stays behind stopped. */
  let behindEnd = 0;
  /** The fork LSN of NEW_EPOCH on the promoted store. */
  let fork = 0;
  let oldHistory: EpochStart[] = [];

  before(async () => {
    // The old primary at epoch 1, and two replicas made from its base.
    await (await PageStore.open(oldPrimaryDir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: SEG, controlSocket: false })).close();
    copyStoreDir(oldPrimaryDir, promotedDir);
    copyStoreDir(oldPrimaryDir, behindDir);
    writeConfig(oldPrimaryDir, 1);
    const primary = await PageStore.open(oldPrimaryDir, { checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30, controlSocket: false });
    const { port } = primary.replicationAddress!;
    const flushed = () => primary.status().replication!.flushedLsn;
    const a = session(promotedDir, 'promoted', port);
    const b = session(behindDir, 'behind', port);
    await a.start();
    await b.start();
    try {
      await commits(primary, 0, 300);
      await until(() => a.status().durableLsn === flushed() && b.status().durableLsn === flushed(), 20_000, 'both replicas to have the log');
      await b.stop();
      behindEnd = b.status().durableLsn;
      await commits(primary, 300, 150);
      await until(() => a.status().durableLsn === flushed(), 20_000, 'the first replica to have the log');
      await until(() => a.status().appliedLsn === a.status().durableLsn, 20_000, 'the first replica to apply it');
      await a.stop();
      promotedEnd = a.status().durableLsn;
      // The old primary commits on, alone: records the promoted replica never had.
      await commits(primary, 450, 40);
    } finally {
      await b.stop().catch(() => undefined);
      await a.stop().catch(() => undefined);
      await primary.close();
    }
    oldHistory = await epochHistory(walDirOf(oldPrimaryDir));
    // The test means something only when the epoch-1 log spans segments stamped with epoch 1,
    // and the replica left behind is behind.
    assert.ok(behindEnd < promotedEnd, `behind ${behindEnd}, promoted ${promotedEnd}`);
    assert.equal(oldHistory.length, 1, JSON.stringify(oldHistory));
    assert.equal(oldHistory[0]!.epoch, 1);
    assert.ok(oldHistory[0]!.startLsn < segmentStartOf(promotedEnd, SEG), JSON.stringify(oldHistory));
  });

  after(() => rmSync(root, { recursive: true, force: true }));

  it('a replica reopened as a primary at a newer epoch starts a new segment of that epoch at its old end, and keeps it across kill -9', async () => {
    const walDir = walDirOf(promotedDir);
    // Its own history, as a replica, is the old primary's.
    assert.deepEqual(await epochHistory(walDir), oldHistory);
    writeConfig(promotedDir, NEW_EPOCH);
    const tailStart = segmentStartOf(promotedEnd, SEG);
    fork = promotedEnd - tailStart > SEGMENT_HEADER_SIZE ? tailStart + SEG : tailStart;

    // Promoted, and killed before any commit of its own: the fork is made and durable.
    promoteAndKill(promotedDir, 0);
    const expected = [...oldHistory, { epoch: NEW_EPOCH, startLsn: fork }];
    assert.deepEqual(await epochHistory(walDir), expected);
    assert.deepEqual(await readEpochFile(walDir), expected, `${EPOCHS_FILE} says the same`);
    assert.equal(await segmentEpoch(walDir, fork), NEW_EPOCH);
    assert.equal(await segmentEpoch(walDir, tailStart), 1, 'the old tail segment keeps its epoch (and is kept: old replicas need it)');
    // The old epoch's records are all still there, up to the old end, and nothing follows them in their segment.
    assert.equal(segmentContentLength(readFileSync(segmentPath(walDir, tailStart))), promotedEnd - tailStart);

    // Commits of the new epoch, kill -9, then a plain reopen: recovery reads across the fork, no second fork.
    promoteAndKill(promotedDir, 25);
    assert.deepEqual(await epochHistory(walDir), expected);
    const store = await PageStore.open(promotedDir, { checkpointIntervalMs: 0, controlSocket: false });
    try {
      assert.ok(store.status().replication!.flushedLsn > fork + SEGMENT_HEADER_SIZE, 'the new epoch\'s commits survived');
      assert.equal(store.status().replication!.epoch, NEW_EPOCH);
    } finally {
      await store.close();
    }
    assert.deepEqual(await epochHistory(walDir), expected);
    // Opened as a replica (a deposed primary rejoining), its position is of its log's epoch, not
    // of its epoch file (a replica's, written before it was promoted: 1).
    const asReplica = await openReplica(promotedDir);
    try {
      assert.equal(asReplica.position().epoch, NEW_EPOCH);
    } finally {
      await asReplica.close();
    }
  });

  it('a replica behind on the common history follows the new primary across the fork and ends with its pages', async () => {
    assert.ok(fork > 0, 'needs the promotion above');
    const primary = await PageStore.open(promotedDir, { checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30, controlSocket: false });
    const refusals: string[] = [];
    const s = session(behindDir, 'behind', primary.replicationAddress!.port, refusals);
    let flushed = 0;
    try {
      await commits(primary, 1000, 60);
      await s.start();
      await commits(primary, 2000, 20); // and the live tail
      flushed = primary.status().replication!.flushedLsn;
      await until(() => s.status().durableLsn === flushed, 20_000, 'the replica to catch up across the fork').catch((e: unknown) => { throw new Error(`${String(e)} ${JSON.stringify(s.status())} flushed ${flushed} ${JSON.stringify(refusals)}`); });
      await until(() => s.status().appliedLsn === flushed, 20_000, 'the replica to apply it');
      assert.deepEqual(refusals, []);
      assert.equal(s.status().epoch, NEW_EPOCH, 'the replica took the new epoch');
    } finally {
      await s.stop();
      await primary.close();
    }
    // Its history is the primary's: same fork, same headers.
    const mine = await epochHistory(walDirOf(behindDir));
    assert.deepEqual(mine, await epochHistory(walDirOf(promotedDir)));
    assert.deepEqual(await readEpochFile(walDirOf(behindDir)), mine);
    for (const seg of await listSegments(walDirOf(behindDir))) {
      // Up to the replica's last record (segments are made at full size: zeros after the records).
      const whole = readFileSync(segmentPath(walDirOf(behindDir), seg));
      const a = whole.subarray(0, segmentContentLength(whole));
      const b = readFileSync(segmentPath(walDirOf(promotedDir), seg));
      assert.ok(a.equals(b.subarray(0, a.byteLength)), `segment ${seg.toString(16)} is the primary's`);
    }
    // Every page equal (the primary's close wrote them all; the replica applied everything).
    const theirs = dataBytes(promotedDir);
    const ours = dataBytes(behindDir);
    for (let id = 0; id < PAGES; id++) assert.ok(ours.subarray(id * PAGE, (id + 1) * PAGE).equals(theirs.subarray(id * PAGE, (id + 1) * PAGE)), `page ${id} differs`);
    // And a reopened replica resumes at the new epoch: redo across the fork, same position.
    const again = await openReplica(behindDir);
    try {
      assert.equal(again.position().epoch, NEW_EPOCH);
      assert.equal(again.position().durableLsn, flushed);
    } finally {
      await again.close();
    }
  });

  it('the old primary, whose log goes past the common history, is refused as diverged naming the fork; nothing is applied', async () => {
    assert.ok(fork > 0, 'needs the promotion above');
    // As a replica now: no replication.json of a primary.
    unlinkSync(path.join(oldPrimaryDir, 'replication.json'));
    const primary = await PageStore.open(promotedDir, { checkpointIntervalMs: 0, controlSocket: false });
    const port = primary.replicationAddress!.port;
    let before = new Map<string, Buffer>();
    let pagesBefore: Buffer = Buffer.alloc(0);
    try {
      const old = await openReplica(oldPrimaryDir);
      const pos = old.position();
      await old.close();
      before = logFiles(oldPrimaryDir);
      pagesBefore = dataBytes(oldPrimaryDir);
      assert.ok(pos.durableLsn > promotedEnd, 'the old primary wrote past the promoted replica\'s end');

      // The hello its session sends, answered with the fork and its LSN in the error's details.
      const refuse = async (lsn: number, rolling: bigint, epoch = 1) => {
        const ch = await connectChannel({ host: '127.0.0.1', port, secret: SECRET });
        ch.send(helloFrame({ epoch, lsn, rolling, id: 'old-primary' }));
        try {
          await ch.next();
          assert.fail('no refusal');
        } catch (err) {
          return err;
        } finally {
          ch.close();
        }
      };
      for (const [lsn, rolling] of [[pos.durableLsn, pos.rolling], [fork + 4096, 0n]] as const) {
        const err = await refuse(lsn, rolling);
        assert.ok(isRaError(err, 'RA_ERR_REPL_DIVERGED'), String(err));
        assert.equal(err.details.forkLsn, fork, err.message);
        assert.equal(err.details.forkEpoch, NEW_EPOCH);
        assert.equal(err.details.lsn, lsn);
      }
      // On the common history (the promoted replica's own old end, R equal) is not refused as diverged...
      // (checked end to end by the test above); a newer epoch than the primary's is "stale".
      const stale = await refuse(promotedEnd, 0n, NEW_EPOCH + 1);
      assert.ok(isRaError(stale, 'RA_ERR_REPL_EPOCH') && /stale/.test(stale.message), String(stale));

      // The agent's session: refused by name, and nothing of the old primary's store changes.
      const refusals: string[] = [];
      const s = session(oldPrimaryDir, 'old-primary', port, refusals);
      await s.start();
      try {
        await until(() => s.status().state === 'refused', 20_000, 'the old primary to be refused');
      } finally {
        await s.stop();
      }
      assert.equal(refusals.length, 1);
      assert.match(refusals[0]!, /RA_ERR_REPL_DIVERGED/);
      assert.match(refusals[0]!, new RegExp(`LSN ${fork}|${fork}`));
    } finally {
      await primary.close();
    }
    assert.deepEqual(logFiles(oldPrimaryDir), before);
    assert.ok(dataBytes(oldPrimaryDir).equals(pagesBefore));
  });

  it('the old primary as a cluster member (rejoinOnDiverged) rebuilds itself: the refusal says so, its path holds a store throughout the copy, and it streams', async () => {
    assert.ok(fork > 0, 'needs the promotion above');
    const memberDir = path.join(root, 'member');
    copyStoreDir(oldPrimaryDir, memberDir);
    // Two stores set aside by earlier rebuilds: with the default keepDiverged (2), the older goes
    // once this rebuild worked; a name not of the session's making stays.
    const older = ['member.diverged-2020-01-01T00-00-00-000Z', 'member.diverged-2021-06-30T12-00-00-000Z'];
    for (const n of [...older, 'member.diverged-notes']) {
      mkdirSync(path.join(root, n));
      writeFileSync(path.join(root, n, 'marker'), n);
    }
    const primary = await PageStore.open(promotedDir, { checkpointIntervalMs: 0, controlSocket: false });
    const refusals: Array<{ code: string; rebuild: string | undefined }> = [];
    let streamed = 0;
    const s = new ReplicaSession({
      storeId: 'member', dir: memberDir, engine: pagestore, host: '127.0.0.1', port: primary.replicationAddress!.port, secret: SECRET, id: 'member', log,
      rejoinOnDiverged: true,
      onRefused: (code, _reason, rebuild) => refusals.push({ code, rebuild: rebuild?.why }),
      onStreaming: () => streamed++,
    });
    // While the base copy runs, the store's path must still hold a store (the health monitor's
    // store-missing detector samples it): before, the old store was moved away first.
    let duringCopy = 0;
    const missing: number[] = [];
    const probe = setInterval(() => {
      const bc = s.status().baseCopy;
      if (bc === null || bc.done) return;
      duringCopy++;
      if (!existsSync(path.join(memberDir, 'control'))) missing.push(bc.pagesCopied);
    }, 1);
    try {
      await s.start();
      await until(() => s.status().state === 'streaming' && s.status().baseCopies === 1, 30_000, 'the old primary to be rebuilt and stream');
      await until(() => s.status().durableLsn === primary.status().replication!.flushedLsn, 20_000, 'the rebuilt member to have the log');
      assert.equal(s.status().epoch, NEW_EPOCH);
    } finally {
      clearInterval(probe);
      await s.stop();
      await primary.close();
    }
    assert.ok(duringCopy > 0, 'the probe saw the copy under way');
    assert.deepEqual(missing, [], 'the store path held no store while the base copy ran');
    assert.deepEqual(refusals, [{ code: 'RA_ERR_REPL_DIVERGED', rebuild: 'diverged' }]);
    assert.ok(streamed >= 1);
    // The old store is kept aside, whole (its log as the old primary left it), and no stage is left.
    const aside = readdirSync(root).filter((n) => n.startsWith('member.diverged-')).sort();
    assert.equal(aside.length, 3, readdirSync(root).join(', '));
    assert.ok(!aside.includes(older[0]!) && aside.includes(older[1]!) && aside.includes('member.diverged-notes'), `the oldest set-aside store is removed, the newer kept: ${aside.join(', ')}`);
    const made = aside.find((n) => n !== older[1] && n !== 'member.diverged-notes')!;
    assert.deepEqual(logFiles(path.join(root, made)), logFiles(oldPrimaryDir));
    assert.ok(!existsSync(`${memberDir}.rebuild`));
  });
});

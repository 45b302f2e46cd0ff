import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { WorkerPool } from '../../../core/workerPool.js';
import { readControl } from '../../../plugins/pagestore/control.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import { openReplica } from '../../../plugins/pagestore/replica.js';
import { validRecordAt } from '../../../plugins/pagestore/walRecord.js';
import { rollingAt } from '../../../plugins/pagestore/walRolling.js';
import { pagestore } from '../../helpers/engine.js';
import { fixture } from '../../helpers/paths.js';
import { PAGE, SEGMENT, primaryRuns, runsFrom, writePrimary, type Primary, type Run } from '../../helpers/replica.js';
import { copyStoreDir, dataBytes } from '../../helpers/store.js';
import { segmentContentLength } from '../../../plugins/pagestore/walSegments.js';

let root: string;
let primary: Primary;
/** The primary's log: segment start → the segment's bytes (archived or still in its log). */
let primaryLog: Map<number, Buffer>;
/** LSNs of the primary's checkpoint records, ascending. */
let checkpoints: number[];

/** A fresh replica directory copied from the base. */
function newReplica(name: string): string {
  const dir = path.join(root, name);
  copyStoreDir(primary.base, dir);
  return dir;
}

/** Every file of a replica's log and its epoch file, by name: to show nothing was written. */
function logFiles(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const n of readdirSync(path.join(dir, 'wal'))) out.set(`wal/${n}`, readFileSync(path.join(dir, 'wal', n)));
  if (existsSync(path.join(dir, 'epoch'))) out.set('epoch', readFileSync(path.join(dir, 'epoch')));
  return out;
}

/** The replica's pages equal the primary's, byte for byte, and its log segments equal the primary's. */
function assertSameAsPrimary(dir: string): void {
  const mine = dataBytes(dir);
  const theirs = dataBytes(primary.dir);
  assert.equal(mine.byteLength, theirs.byteLength);
  for (let id = 0; id < theirs.byteLength / PAGE; id++) {
    const a = mine.subarray(id * PAGE, (id + 1) * PAGE);
    const b = theirs.subarray(id * PAGE, (id + 1) * PAGE);
    assert.ok(a.equals(b), `page ${id} differs from the primary's`);
  }
  for (const n of readdirSync(path.join(dir, 'wal'))) {
    const start = parseInt(n.slice(0, 16), 16);
    const theirsSeg = primaryLog.get(start);
    assert.ok(theirsSeg, `segment ${n} is not the primary's`);
    assert.ok(readFileSync(path.join(dir, 'wal', n)).equals(theirsSeg), `segment ${n} differs from the primary's`);
  }
}

/** The replica's log is a prefix of the primary's, ending exactly at `end`. */
function assertLogIsPrimarys(dir: string, end: number): void {
  for (const n of readdirSync(path.join(dir, 'wal'))) {
    const start = parseInt(n.slice(0, 16), 16);
    // Up to their last records: both logs make their segments at full size (zeros after the records).
    const whole = readFileSync(path.join(dir, 'wal', n));
    const mine = whole.subarray(0, segmentContentLength(whole));
    const theirs = primaryLog.get(start)!;
    if (start + SEGMENT <= end) assert.ok(mine.equals(theirs.subarray(0, segmentContentLength(theirs))), `segment ${n} differs from the primary's`);
    else assert.ok(mine.equals(theirs.subarray(0, end - start)), `segment ${n}: not the primary's log up to ${end}`);
  }
}

function assertAllPagesVerify(dir: string): void {
  const bytes = dataBytes(dir);
  for (let id = 0; id < bytes.byteLength / PAGE; id++) assert.equal(verifyPage(bytes.subarray(id * PAGE, (id + 1) * PAGE), id), null, `page ${id}`);
}

async function refused(p: Promise<unknown>, reason: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(isRaError(err), String(err));
    assert.equal(err.code, 'RA_ERR_REPLICA_REFUSED', err.message);
    assert.equal((err.details as { reason: string }).reason, reason, err.message);
    return true;
  });
}

before(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'ra-replica-'));
  primary = await writePrimary(root, 360, 45);
  primaryLog = new Map();
  checkpoints = [];
  for (const [d, names] of [primary.archive, path.join(primary.dir, 'wal')].map((d) => [d, readdirSync(d)] as const)) {
    for (const n of names) primaryLog.set(parseInt(n.slice(0, 16), 16), readFileSync(path.join(d, n)));
  }
  for (const [start, buf] of [...primaryLog].sort((a, b) => a[0] - b[0])) {
    for (let at = 64, size; (size = validRecordAt(buf, at, buf.byteLength, start + at)) > 0; at += size) {
      if (buf[at + 4] === 5) checkpoints.push(start + at);
    }
  }
  // Enough log for the tests to mean something: many segments, many checkpoints.
  assert.ok(primaryLog.size >= 8, `only ${primaryLog.size} segments`);
  assert.ok(checkpoints.length >= 8, `only ${checkpoints.length} checkpoints`);
});

after(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

/** The primary here is a plain store (no replication.json): its segment headers say epoch 0. */
const PRIMARY_EPOCH = 0;

describe('replica', () => {
  for (const [maxRecords, withPool] of [[1, false], [9, true], [400, false]] as const) {
    it(`ends with the primary's pages and log, fed runs of up to ${maxRecords} records${withPool ? ' and applying on a pool' : ''}`, async () => {
      const dir = newReplica(`fed-${maxRecords}`);
      const pool = withPool ? new WorkerPool({ threads: 2 }) : undefined;
      try {
        // With the pool, every segment's redo goes over it (the default threshold is for 16 MiB segments).
        const replica = pool ? await openReplica(dir, { pool, parallelFrom: 1 }) : await pagestore.replica.openReplica(dir);
        let workers = 0;
        const start = replica.position();
        assert.equal(start.appliedLsn, start.durableLsn);
        const runs = primaryRuns(primary, start.durableLsn, maxRecords, maxRecords);
        assert.ok(runs.length > 0);
        let k = 0;
        for (const run of runs) {
          const pos = await replica.append(run.bytes, run.startLsn, run.endLsn, PRIMARY_EPOCH);
          assert.equal(pos.durableLsn, run.endLsn);
          // Apply now and then, to a bound inside the log (a run's start) or to its end.
          if (++k % 13 === 0) {
            const upto = runs[Math.max(0, k - 5)]!.startLsn;
            const r = await replica.apply(upto);
            workers = Math.max(workers, r.redoWorkers);
            assert.ok(r.position.appliedLsn >= Math.min(upto, pos.durableLsn) && r.position.appliedLsn <= pos.durableLsn, `applied ${r.position.appliedLsn}, upto ${upto}`);
          }
        }
        const done = await replica.apply();
        assert.equal(Math.max(workers, done.redoWorkers), pool ? 2 : 1);
        const { rolling, ...rest } = done.position;
        assert.deepEqual(rest, { epoch: PRIMARY_EPOCH, durableLsn: runs.at(-1)!.endLsn, appliedLsn: runs.at(-1)!.endLsn });
        // R at the end equals the primary's R there, computed from the primary's own segment files.
        const state = await pagestore.files.readState(primary.dir);
        assert.equal(rolling, (await rollingAt(pagestore.files.logDir(primary.dir), state.storeId, state.segmentSize, runs.at(-1)!.endLsn)).rolling);
        await replica.close();
        assertSameAsPrimary(dir);
      } finally {
        await pool?.close();
      }
    });
  }

  it('applies while appends go on, and ends with the primary\'s pages', async () => {
    const dir = newReplica('concurrent');
    const replica = await openReplica(dir);
    try {
      const applying: Array<Promise<unknown>> = [];
      for (const run of primaryRuns(primary, replica.position().durableLsn, 20, 4)) {
        const appended = replica.append(run.bytes, run.startLsn, run.endLsn, PRIMARY_EPOCH);
        applying.push(replica.apply());
        await appended;
      }
      await Promise.all(applying);
      const done = await replica.apply();
      assert.equal(done.position.appliedLsn, done.position.durableLsn);
    } finally {
      await replica.close();
    }
    assertSameAsPrimary(dir);
  });

  it('writes runs appended together with one fdatasync (group commit), in order, and ends with the primary\'s pages and log', async () => {
    const dir = newReplica('grouped');
    const replica = await openReplica(dir);
    try {
      const all = primaryRuns(primary, replica.position().durableLsn, 3, 7);
      // The runs of the first segment, appended without waiting (frames that arrived together).
      const seg = Math.floor(all[0]!.startLsn / SEGMENT);
      const together = all.filter((r) => Math.floor(r.startLsn / SEGMENT) === seg);
      assert.ok(together.length >= 8, `only ${together.length} runs in one segment`);
      const before = { ...replica.appendStats };
      const positions = await Promise.all(together.map((r) => replica.append(r.bytes, r.startLsn, r.endLsn, PRIMARY_EPOCH)));
      assert.equal(replica.appendStats.runs - before.runs, together.length);
      assert.equal(replica.appendStats.syncs - before.syncs, 1, 'one fdatasync for the runs appended together');
      // Each resolves durable to at least its own end: all of them here, by the one sync.
      for (const p of positions) assert.equal(p.durableLsn, together.at(-1)!.endLsn);
      // A refusal among queued runs refuses that run alone; the ones before it go in.
      const rest = all.slice(together.length);
      const a = replica.append(rest[0]!.bytes, rest[0]!.startLsn, rest[0]!.endLsn, PRIMARY_EPOCH);
      await refused(replica.append(rest[2]!.bytes, rest[2]!.startLsn, rest[2]!.endLsn, PRIMARY_EPOCH), 'gap');
      await a;
      // The rest, across segments, all at once: a new segment's header needs R at its start.
      const rounds = replica.appendStats.syncs;
      await Promise.all(rest.slice(1).map((r) => replica.append(r.bytes, r.startLsn, r.endLsn, PRIMARY_EPOCH)));
      assert.equal(replica.appendStats.syncs - rounds, 1, 'one round for runs appended at once, across segments');
      const done = await replica.apply();
      assert.equal(done.position.durableLsn, all.at(-1)!.endLsn);
      assert.equal(done.position.appliedLsn, done.position.durableLsn);
    } finally {
      await replica.close();
    }
    assertSameAsPrimary(dir);
  });

  it('refuses a gap, an overlap, a damaged record, a run across segments and an older epoch, writing nothing', async () => {
    const dir = newReplica('refusals');
    const replica = await openReplica(dir);
    try {
      const runs = primaryRuns(primary, replica.position().durableLsn, 3, 5);
      await replica.append(runs[0]!.bytes, runs[0]!.startLsn, runs[0]!.endLsn, 2);
      const before = logFiles(dir);
      const pos = replica.position();
      const next = runs[1]!;
      // A gap: the run after the next one.
      await refused(replica.append(runs[2]!.bytes, runs[2]!.startLsn, runs[2]!.endLsn, 2), 'gap');
      // An overlap: the run already appended, and one starting inside the log.
      await refused(replica.append(runs[0]!.bytes, runs[0]!.startLsn, runs[0]!.endLsn, 2), 'overlap');
      // A damaged record: one bit of the next run's last record flipped.
      const bad = Buffer.from(next.bytes);
      bad[bad.byteLength - 20]! ^= 0x10;
      await refused(replica.append(bad, next.startLsn, next.endLsn, 2), 'bad-record');
      // Cut short: the run without its last 8 bytes.
      await refused(replica.append(next.bytes.subarray(0, next.bytes.byteLength - 8), next.startLsn, next.endLsn - 8, 2), 'bad-record');
      // A run whose stated range does not match its bytes.
      await refused(replica.append(next.bytes, next.startLsn, next.endLsn + 8, 2), 'bad-range');
      // An older epoch.
      await refused(replica.append(next.bytes, next.startLsn, next.endLsn, 1), 'older-epoch');
      // A run that jumps to the next segment while its first record would have fitted.
      const seg = Math.floor(next.startLsn / SEGMENT) * SEGMENT;
      await refused(replica.append(next.bytes, seg + SEGMENT + 64, seg + SEGMENT + 64 + next.bytes.byteLength, 2), 'gap');
      assert.deepEqual(replica.position(), pos);
      assert.deepEqual(logFiles(dir), before, 'nothing written');
      // And the right run still goes in, at a newer epoch too.
      const p = await replica.append(next.bytes, next.startLsn, next.endLsn, 3);
      assert.deepEqual({ ...p, rolling: 0n }, { epoch: 3, durableLsn: next.endLsn, appliedLsn: pos.appliedLsn, rolling: 0n });
    } finally {
      await replica.close();
    }
    // The epoch survives a restart: epoch 2 is now older.
    const again = await openReplica(dir);
    try {
      assert.equal(again.position().epoch, 3);
      const runs = primaryRuns(primary, again.position().durableLsn, 3, 5);
      await refused(again.append(runs[0]!.bytes, runs[0]!.startLsn, runs[0]!.endLsn, 2), 'older-epoch');
    } finally {
      await again.close();
    }
  });

  it('reads a page as of an LSN: applies up to it first, refuses one beyond its log', async () => {
    const dir = newReplica('read-page');
    const replica = await openReplica(dir);
    try {
      const runs = primaryRuns(primary, replica.position().durableLsn, 50, 1);
      for (const run of runs) await replica.append(run.bytes, run.startLsn, run.endLsn, PRIMARY_EPOCH);
      const end = replica.position().durableLsn;
      await assert.rejects(replica.readPage(3, end + 8), (err: unknown) => isRaError(err) && err.code === 'RA_ERR_REPLICA_BEHIND');
      const mid = runs[runs.length >> 1]!.startLsn;
      const page = await replica.readPage(5, mid);
      assert.ok(replica.position().appliedLsn >= mid && replica.position().appliedLsn < end);
      assert.equal(verifyPage(page, 5), null);
      assert.ok(page.readBigUInt64LE(24) < BigInt(mid), 'no record at or past the bound applied');
      const primaryPages = dataBytes(primary.dir);
      for (const id of [1, 7, 20, 47]) {
        assert.ok((await replica.readPage(id, end)).equals(primaryPages.subarray(id * PAGE, (id + 1) * PAGE)), `page ${id}`);
      }
      assert.equal(replica.position().appliedLsn, end);
    } finally {
      await replica.close();
    }
  });

  it("takes restartpoints at the primary's checkpoints: a restart redoes only from the last one", async () => {
    const dir = newReplica('restartpoint');
    let replica = await openReplica(dir);
    const runs = primaryRuns(primary, replica.position().durableLsn, 40, 3);
    for (const run of runs) await replica.append(run.bytes, run.startLsn, run.endLsn, PRIMARY_EPOCH);
    // Apply to just past a checkpoint in the middle of the log.
    const mid = checkpoints[checkpoints.length >> 1]!;
    const r = await replica.apply(mid + 1);
    assert.equal(r.restartpoint, mid);
    let state = await readControl(dir);
    assert.equal(state.checkpointLsn, mid);
    await replica.close();

    replica = await openReplica(dir);
    const total = runs.at(-1)!.endLsn;
    assert.equal(replica.recovery.redoLsn, state.redoLsn);
    assert.ok(state.redoLsn > total / 3, `redo starts at ${state.redoLsn} of ${total}`);
    assert.equal(replica.position().durableLsn, total, 'nothing re-copied');
    const fin = await replica.apply();
    assert.equal(fin.position.appliedLsn, total);
    assert.equal(fin.restartpoint, null, 'the open redid everything; nothing left to apply');
    await replica.close();

    // From a restartpoint at the last checkpoint (the primary's close), a restart reads little log.
    const dir2 = newReplica('restartpoint-2');
    replica = await openReplica(dir2);
    for (const run of runs) await replica.append(run.bytes, run.startLsn, run.endLsn, PRIMARY_EPOCH);
    assert.equal((await replica.apply()).restartpoint, checkpoints.at(-1));
    await replica.close();
    state = await readControl(dir2);
    replica = await openReplica(dir2);
    try {
      assert.equal(replica.recovery.redoLsn, state.redoLsn);
      assert.ok(replica.recovery.walBytesRead <= 2 * SEGMENT, `read ${replica.recovery.walBytesRead} bytes of a ${total}-byte log`);
      assert.equal(replica.recovery.recordsRedone, 0);
    } finally {
      await replica.close();
    }
    assertSameAsPrimary(dir2);
  });

  it('survives kill -9 mid-append, mid-apply and mid-restartpoint: resumes at its durable end, ends equal to the primary', async () => {
    const dir = newReplica('killed');
    const faults = ['replica-append:5', 'replica-apply:2', 'replica-restartpoint:2', 'replica-append:40', 'replica-apply:7'];
    for (const [round, fault] of faults.entries()) {
      const spec = { replica: dir, primary, maxRecords: 6, seed: round + 11, applyEvery: 4 };
      const r = spawnSync(process.execPath, [fixture('replicaFeed.js'), JSON.stringify(spec)], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, RA_FAULT: fault } });
      assert.equal(r.signal, 'SIGKILL', `round ${round} (${fault}): the child ended with ${r.signal ?? r.status}: ${r.stderr}`);
      const lines = r.stdout.trim().split('\n');
      const durable = Number(lines.filter((l) => l.startsWith('durable ')).at(-1)?.slice(8) ?? lines[0]!.slice(5));
      assert.ok(durable > 0, r.stdout);
      const replica = await openReplica(dir);
      try {
        // The last run acknowledged is there; so may be the complete records of a run cut by
        // the kill (they reached the file, and the open synced them), never a torn one.
        const end = replica.position().durableLsn;
        assert.ok(end >= durable, `round ${round} (${fault}): its log ends at ${end}, before ${durable} it acknowledged`);
        if (!fault.startsWith('replica-append')) assert.equal(end, durable, `round ${round} (${fault}): resumes at the last durable end`);
        assert.equal(replica.position().appliedLsn, end);
        assertLogIsPrimarys(dir, end);
      } finally {
        await replica.close();
      }
      assertAllPagesVerify(dir);
    }
    const replica = await openReplica(dir);
    try {
      const rest: Run[] = runsFrom(primaryRuns(primary, replica.position().durableLsn, 30, 99), replica.position().durableLsn);
      assert.ok(rest.length > 0, 'the kills came before the end of the log');
      for (const run of rest) await replica.append(run.bytes, run.startLsn, run.endLsn, PRIMARY_EPOCH);
      await replica.apply();
    } finally {
      await replica.close();
    }
    assertSameAsPrimary(dir);
  });

  it('is offered by the engine face and holds the store lock', async () => {
    const dir = newReplica('locked');
    const replica = await pagestore.replica.openReplica(dir);
    try {
      await assert.rejects(pagestore.replica.openReplica(dir), (err: unknown) => isRaError(err) && err.code === 'RA_ERR_STORE_LOCKED');
      await assert.rejects(pagestore.recover(dir), (err: unknown) => isRaError(err) && err.code === 'RA_ERR_STORE_LOCKED');
    } finally {
      await replica.close();
    }
    writeFileSync(path.join(dir, 'epoch'), 'garbage');
    await assert.rejects(openReplica(dir), (err: unknown) => isRaError(err) && err.code === 'RA_ERR_STORE_INVALID');
    // A failed open leaves the store unlocked.
    rmSync(path.join(dir, 'epoch'));
    await (await openReplica(dir)).close();
  });
});

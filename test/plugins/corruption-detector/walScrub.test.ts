/**
 * The live WAL's scrub (issue #17): a record that fails its check below the owner's durable LSN
 * — a flipped bit in the current or a sealed segment, the current segment cut short — is one
 * `wal-corruption` (P1 while crash recovery needs it) naming the file, the LSN and offset and
 * the record's stored and computed checksums; a sound log, being written, is never reported.
 * `checkpoint-past-damage` has the live owner checkpoint past the damage, verified from the
 * state and checkpoint record on disk; the store then recovers with every commit.
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Failure, FailureInput, FailureSink } from '../../../core/contracts/Failure.js';
import type { HealingContext } from '../../../core/contracts/HealingAction.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { checkLiveWal } from '../../../plugins/corruption-detector/walCheck.js';
import { WalScrubDetector, checkpointPastDamageAction, type WalStore } from '../../../plugins/corruption-detector/walScrub.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

const SEGMENT = 65536;
const HEADER = pagestore.log.segmentHeaderSize;

function sink(): FailureSink & { published: Failure[] } {
  const published: Failure[] = [];
  return {
    published,
    publish(i: FailureInput): Failure {
      const f: Failure = { id: `f-${published.length}`, kind: i.kind, priority: i.priority, subject: i.subject, evidence: i.evidence ?? {}, detectedAt: Date.now(), source: 'corruption-detector', fingerprint: i.fingerprint ?? i.kind };
      published.push(f);
      return f;
    },
  };
}

const segments = (dir: string) => readdirSync(path.join(dir, 'wal')).filter((n) => n.endsWith('.wal')).sort().map((n) => path.join(dir, 'wal', n));

async function commitSome(store: PageStore, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) {
    const tx = store.begin();
    await tx.write(1 + (i % 40), 64, Buffer.from(`${tag}-${i};`.repeat(10)));
    await tx.commit();
  }
}

/** A store open in this process (its control socket served), with a log of 2+ segments and no checkpoint since. */
async function openStore(): Promise<{ dir: string; store: PageStore; ws: WalStore; detector: WalScrubDetector }> {
  const dir = tmpStoreDir('ra-walscrub-');
  const store = await PageStore.open(dir, { create: true, pageCount: 64, pageSize: 4096, segmentSize: SEGMENT, checkpointIntervalMs: 0, checkpointWalBytes: 1 << 30 });
  await commitSome(store, 300, 'a');
  assert.ok(segments(dir).length >= 3, `the log spans segments: ${segments(dir).length}`);
  const ws: WalStore = { id: 'db', dir, engine: pagestore, everyMs: 0 };
  return { dir, store, ws, detector: new WalScrubDetector('corruption-detector/wal', [ws], captureLogger().log) };
}

function flip(file: string, at: number): void {
  const b = readFileSync(file);
  b[at] ^= 0x04;
  writeFileSync(file, b);
}

const hctx: HealingContext = { signal: new AbortController().signal, log: captureLogger().log, options: {} };

describe('live WAL scrub', () => {
  it('reports nothing for a sound log, sealed segments and the current one, while it is written', async () => {
    const { store, ws, detector } = await openStore();
    try {
      const out = sink();
      const writing = commitSome(store, 200, 'b');
      for (let i = 0; i < 5; i++) assert.deepEqual((await detector.pass(ws, out))!.damage, []);
      await writing;
      const r = (await detector.pass(ws, out))!;
      assert.deepEqual(r.damage, []);
      assert.ok(r.segments >= 3 && r.durableLsn !== null);
      assert.equal(out.published.length, 0);
    } finally {
      await store.close();
    }
  });

  it('a flipped bit in the current segment below the durable LSN: P1 wal-corruption with checksums; the owner checkpoints past it, verified, and no commit is lost', async () => {
    const { dir, store, ws, detector } = await openStore();
    const action = checkpointPastDamageAction(new Map([['db', ws]]));
    try {
      const current = segments(dir).at(-1)!;
      flip(current, HEADER + 100);
      const out = sink();
      await detector.pass(ws, out);
      assert.equal(out.published.length, 1);
      const f = out.published[0]!;
      assert.equal(f.kind, 'wal-corruption');
      assert.equal(f.priority, 'P1');
      assert.equal(f.subject, 'store:db');
      assert.equal(f.evidence.file, current);
      assert.equal(f.evidence.offset, HEADER);
      assert.equal(f.evidence.lsn, parseInt(path.basename(current).slice(0, 16), 16) + HEADER);
      assert.equal(typeof f.evidence.expected, 'string');
      assert.notEqual(f.evidence.expected, f.evidence.found);
      assert.equal(f.evidence.neededByRecovery, true);
      await detector.pass(ws, out);
      assert.equal(out.published.length, 1, 'published once');

      assert.equal(await action.canHandle(f), true);
      assert.equal(await action.verify(f, hctx), false, 'crash recovery still needs the damaged record');
      const r = await action.apply(f, hctx);
      assert.match(r!.summary!, /checkpointed store "db" past its damaged WAL/);
      assert.equal(await action.verify(f, hctx), true);
      await commitSome(store, 20, 'after');
    } finally {
      await store.close();
    }
    // Every commit is there after a reopen (recovery starts past the damage).
    const again = await PageStore.open(dir);
    try {
      const tx = again.begin();
      const page = await tx.read(1 + (19 % 40));
      await tx.commit();
      assert.ok(page.includes(Buffer.from('after-19;')), 'the last commits survived');
    } finally {
      await again.close();
    }
  });

  it('the current segment cut before the checkpoint record the control file names: the owner checkpoints again, verified, and no commit is lost', async () => {
    const { dir, store, ws, detector } = await openStore();
    const action = checkpointPastDamageAction(new Map([['db', ws]]));
    try {
      await store.checkpoint();
      await commitSome(store, 5, 'c');
      const { checkpointLsn } = await pagestore.files.readState(dir);
      const current = segments(dir).at(-1)!;
      const start = parseInt(path.basename(current).slice(0, 16), 16);
      assert.equal(pagestore.log.segmentStartOf(checkpointLsn, SEGMENT), start, 'the checkpoint record is in the current segment');
      assert.ok(checkpointLsn - start > HEADER + 100, 'with records before it');
      // The cut takes the checkpoint record and what follows; the owner writes on past it.
      truncateSync(current, checkpointLsn - start - 5);
      await commitSome(store, 5, 'd');
      const out = sink();
      await detector.pass(ws, out);
      const f = out.published.find((x) => x.evidence.file === current)!;
      assert.ok(f, JSON.stringify(out.published.map((x) => x.evidence)));
      assert.ok((f.evidence.lsn as number) < checkpointLsn);
      assert.equal(await action.verify(f, hctx), false, 'the control file names a checkpoint record that is gone');
      const r = await action.apply(f, hctx);
      assert.match(r!.summary!, /checkpointed store "db" past its damaged WAL/);
      assert.equal(await action.verify(f, hctx), true);
      assert.ok((await pagestore.files.readState(dir)).checkpointLsn > checkpointLsn);
      await commitSome(store, 20, 'after');
    } finally {
      await store.close();
    }
    const again = await PageStore.open(dir);
    try {
      const tx = again.begin();
      const page = await tx.read(1 + (19 % 40));
      await tx.commit();
      assert.ok(page.includes(Buffer.from('after-19;')), 'the last commits survived');
    } finally {
      await again.close();
    }
  });

  it('a flipped bit in a sealed segment is found there', async () => {
    const { dir, store, ws, detector } = await openStore();
    try {
      const sealed = segments(dir)[0]!;
      flip(sealed, 30_000);
      const out = sink();
      const r = (await detector.pass(ws, out))!;
      assert.equal(r.damage.length, 1, JSON.stringify(r.damage));
      assert.equal(out.published[0]!.evidence.file, sealed);
      assert.ok((out.published[0]!.evidence.offset as number) <= 30_000);
    } finally {
      await store.close();
    }
  });

  it('the current segment cut below the durable LSN is found; a store with no live owner is not checkpointed', async () => {
    const { dir, store, ws, detector } = await openStore();
    const action = checkpointPastDamageAction(new Map([['db', ws]]));
    const current = segments(dir).at(-1)!;
    const out = sink();
    try {
      truncateSync(current, HEADER + 1000);
      await detector.pass(ws, out);
      assert.equal(out.published.length, 1);
      assert.match(String(out.published[0]!.evidence.reason), /below the durable LSN/);
    } finally {
      await store.close().catch(() => undefined);
    }
    // Closed: the check reads sealed segments only; damage at or after the redo point of a store
    // nobody has open cannot be checkpointed past (recovery would stop there): refused, for a person.
    assert.equal((await checkLiveWal(pagestore, dir)).durableLsn, null);
    const { redoLsn } = await pagestore.files.readState(dir);
    const f = { ...out.published[0]!, evidence: { ...out.published[0]!.evidence, lsn: redoLsn } };
    assert.equal(await action.verify(f, hctx), false);
    await assert.rejects(action.apply(f, hctx), /no live owner/);
  });
});

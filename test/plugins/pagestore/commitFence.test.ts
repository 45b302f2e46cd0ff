// The commit fence of a clustered primary (#15 item 2): with "fenced": true in replication.json
// the owner acknowledges a commit only while the agent's lease grant is valid by this host's
// monotonic clock — the commit record is durable locally either way, but no client hears "yes"
// from a primary whose lease may have lapsed.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { CommitFence } from '../../../plugins/pagestore/commitFence.js';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { tmpStoreDir } from '../../helpers/store.js';

const SECRET = 'a replication secret of some length';
const ms = (n: number) => BigInt(n) * 1_000_000n;
const now = () => process.hrtime.bigint();

/** Resolves to 'pending' when `p` has not settled within `waitMs`. */
async function settledWithin<T>(p: Promise<T>, waitMs: number): Promise<'resolved' | 'rejected' | 'pending'> {
  let state: 'resolved' | 'rejected' | 'pending' = 'pending';
  p.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((r) => setTimeout(r, waitMs));
  return state;
}

async function openFenced(extra: Record<string, unknown> = {}): Promise<PageStore> {
  const dir = tmpStoreDir('ra-fence-');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'replication.json'), JSON.stringify({ role: 'primary', listen: '127.0.0.1:0', secret: SECRET, epoch: 7, fenced: true, ...extra }), { mode: 0o600 });
  return PageStore.open(dir, { create: true, pageCount: 16, pageSize: 4096, segmentSize: 64 * 1024, checkpointIntervalMs: 0 });
}

function startCommit(store: PageStore, i: number): Promise<void> {
  const tx = store.begin();
  return tx.write(1 + (i % 10), 0, Buffer.from(`commit ${i}`)).then(() => tx.commit());
}

describe('CommitFence', () => {
  it('lets commits through only before the granted deadline, and waits for a grant after it', async () => {
    let t = 1_000n;
    const f = new CommitFence(true, 3, 10_000, () => t);
    assert.equal(f.valid(), false, 'no grant yet');
    const w = f.wait();
    assert.equal(await settledWithin(w, 20), 'pending');
    f.grant(3, 2_000n);
    assert.equal(await settledWithin(w, 5), 'resolved');
    t = 1_999n;
    assert.equal(f.valid(), true);
    t = 2_000n;
    assert.equal(f.valid(), false, 'the deadline itself is already past');
    // A late, older grant never shortens a newer one.
    f.grant(3, 5_000n);
    f.grant(3, 2_500n);
    assert.equal(f.status().remainingNs, String(5_000n - t));
  });

  it('refuses a grant for another epoch, and a grant when not fenced', () => {
    const f = new CommitFence(true, 3);
    assert.throws(() => f.grant(2, now() + ms(1000)), (e: unknown) => isRaError(e) && e.code === 'RA_ERR_FENCED' && /epoch 2 refused.*epoch 3/.test(e.message));
    assert.equal(f.valid(), false);
    const off = new CommitFence(false, 0);
    assert.equal(off.valid(), true, 'an unfenced store is always valid');
    assert.throws(() => off.grant(0, now()), (e: unknown) => isRaError(e) && e.code === 'RA_ERR_FENCED');
  });

  it('fails a commit that waited maxWaitMs with RA_ERR_FENCED, and counts it', async () => {
    const f = new CommitFence(true, 1, 30);
    await assert.rejects(f.wait(), (e: unknown) => isRaError(e) && e.code === 'RA_ERR_FENCED' && /outcome is unknown/.test(e.message));
    assert.equal(f.status().refused, 1);
    assert.equal(f.status().waiting, 0);
  });
});

describe('a fenced primary store', () => {
  it('acknowledges no commit before a grant, then only until its deadline; the record is durable regardless', async () => {
    const store = await openFenced();
    try {
      const first = startCommit(store, 1);
      assert.equal(await settledWithin(first, 200), 'pending', 'no lease granted: not acknowledged');
      assert.ok(store.status().flushedLsn > 0, 'the commit record is durable all the same');
      assert.equal(store.status().fence?.waiting, 1);

      const c = await ControlClient.connect(store.dir);
      try {
        const g = await c.grantLease(7, now() + ms(400));
        assert.ok(BigInt(g.remainingNs) > 0n);
        await first; // released by the grant
        await startCommit(store, 2); // within the deadline: at once
        await new Promise((r) => setTimeout(r, 450));
        const late = startCommit(store, 3);
        assert.equal(await settledWithin(late, 150), 'pending', 'the deadline passed: not acknowledged');
        await assert.rejects(c.grantLease(6, now() + ms(5000)), /RA_ERR_FENCED|epoch 6 refused/);
        assert.equal(await settledWithin(late, 50), 'pending', 'a grant for an older epoch releases nothing');
        await c.grantLease(7, now() + ms(5000));
        await late;
      } finally {
        c.close();
      }
    } finally {
      await store.close();
    }
  });

  it('fails a waiting commit with RA_ERR_FENCED after fenceWaitMs, and on close', async () => {
    const store = await openFenced({ fenceWaitMs: 100 });
    const timedOut = startCommit(store, 1);
    await assert.rejects(timedOut, (e: unknown) => isRaError(e) && e.code === 'RA_ERR_FENCED');
    const atClose = assert.rejects(startCommit(store, 2), (e: unknown) => isRaError(e) && e.code === 'RA_ERR_FENCED' && /closed/.test(e.message));
    await new Promise((r) => setTimeout(r, 20));
    await store.close();
    await atClose;
  });

  it('an unfenced primary never waits for a lease, and refuses a grant', async () => {
    const store = await openFenced({ fenced: false });
    try {
      await startCommit(store, 1);
      assert.equal(store.status().fence, undefined);
      const c = await ControlClient.connect(store.dir);
      try {
        await assert.rejects(c.grantLease(7, now() + ms(1000)), /not fenced/);
      } finally {
        c.close();
      }
    } finally {
      await store.close();
    }
  });
});

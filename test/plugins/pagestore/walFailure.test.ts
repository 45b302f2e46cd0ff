// A store whose log cannot be written fails as a whole (issue #11, defect 1): nothing more is
// acknowledged, nothing new starts, and a transaction waiting for a lock that a failed commit
// holds gets the error instead of waiting forever. On a real full tmpfs.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { recover } from '../../../plugins/pagestore/recovery.js';
import { mountSmallFsKiB } from '../../helpers/smallFs.js';

describe('a store whose WAL cannot be written', () => {
  it('rejects lock waiters, new transactions and reads, and recovers once there is space', async () => {
    const fs = mountSmallFsKiB(1024);
    if ('skip' in fs) assert.fail(`this test needs a small filesystem (root, tmpfs or a loop device): ${fs.skip}`);
    try {
      const dir = path.join(fs.dir, 'store');
      const store = await PageStore.open(dir, { create: true, pageCount: 24, pageSize: 4096, segmentSize: 64 * 1024, checkpointIntervalMs: 0, checkpointWalBytes: Number.MAX_SAFE_INTEGER, controlSocket: false });
      let acked = 0;
      let failure: Error | null = null;
      // Commit until the disk is full; page 1 is written by every transaction.
      for (let i = 0; !failure && i < 100_000; i++) {
        const tx = store.begin();
        await tx.write(1, 0, Buffer.from(`seq ${i};`));
        await tx.write(2 + (i % 20), 0, Buffer.alloc(3000, i & 0xff));
        try {
          await tx.commit();
          acked = i;
        } catch (err) {
          failure = err as Error;
        }
      }
      assert.ok(failure, 'the disk filled');
      assert.match(String((failure as Error & { code?: string }).code), /RA_ERR_WAL_WRITE/);
      // The failed commit holds page 1; nothing may wait for it forever, nor start anew.
      const deadline = <T>(p: Promise<T>) => Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('still waiting after 2 s')), 2000))]);
      await assert.rejects(deadline((async () => store.begin())()), /RA_ERR_WAL_WRITE|WAL write failed/);
      await store.close();
      fs.grow(8192);
      await recover(dir);
      const again = await PageStore.open(dir, { controlSocket: false });
      const tx = again.begin();
      const seen = (await tx.read(1)).subarray(0, 12).toString();
      await tx.commit();
      await again.close();
      const seq = Number(/seq (\d+);/.exec(seen)?.[1]);
      assert.ok(seq >= acked, `page 1 holds seq ${seq}; seq ${acked} was acknowledged`);
    } finally {
      fs.unmount();
    }
  });

  it('a transaction already waiting for the lock of a failed commit gets the error', async () => {
    const fs = mountSmallFsKiB(1024);
    if ('skip' in fs) assert.fail(`this test needs a small filesystem: ${fs.skip}`);
    try {
      const dir = path.join(fs.dir, 'store');
      const store = await PageStore.open(dir, { create: true, pageCount: 24, pageSize: 4096, segmentSize: 64 * 1024, checkpointIntervalMs: 0, checkpointWalBytes: Number.MAX_SAFE_INTEGER, controlSocket: false });
      let waiter: Promise<void> | null = null;
      for (let i = 0; i < 100_000; i++) {
        const tx = store.begin();
        await tx.write(1, 0, Buffer.from(`seq ${i};`));
        await tx.write(2 + (i % 20), 0, Buffer.alloc(3000, i & 0xff));
        // A second transaction queues for page 1 while the first commits.
        const other = store.begin();
        const w = other.write(1, 0, Buffer.from('other'));
        try {
          await tx.commit();
          await w;
          await other.abort();
        } catch {
          waiter = w;
          break;
        }
      }
      assert.ok(waiter, 'a commit failed with a waiter queued');
      await assert.rejects(Promise.race([waiter, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('the waiter still hangs after 2 s')), 2000))]), /WAL write failed|RA_ERR_WAL_WRITE/);
      await store.close();
    } finally {
      fs.unmount();
    }
  });
});

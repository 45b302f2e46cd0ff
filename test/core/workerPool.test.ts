import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { threadId } from 'node:worker_threads';
import { isRaError } from '../../core/errors.js';
import { WorkerPool, defineTask, sharedBytes, type SharedBytes } from '../../core/workerPool.js';
import { fixture } from '../helpers/paths.js';

const fillTask = defineTask<{ view: SharedBytes; value: number }, { threadId: number; bytes: number }>(fixture('poolTask.js'), 'fill');
const sumTask = defineTask<{ view: SharedBytes }, number>(fixture('poolTask.js'), 'sum');

describe('worker pool', () => {
  it('runs tasks on worker threads over shared memory, without copying it', async () => {
    const pool = new WorkerPool({ threads: 2 });
    try {
      assert.equal(pool.threads, 2);
      const slab = sharedBytes(1 << 20);
      // Two tasks on disjoint views of one slab: the workers' writes land in our memory.
      const [a, b] = await Promise.all([
        pool.run(fillTask, { view: slab.subarray(0, 1 << 19) as SharedBytes, value: 7 }),
        pool.run(fillTask, { view: slab.subarray(1 << 19) as SharedBytes, value: 9 }),
      ]);
      assert.notEqual(a.threadId, threadId);
      assert.notEqual(b.threadId, threadId);
      assert.equal(a.bytes + b.bytes, 1 << 20);
      assert.equal(slab[0], 7);
      assert.equal(slab[(1 << 19) - 1], 7);
      assert.equal(slab[1 << 19], 9);
      assert.equal(slab[(1 << 20) - 1], 9);
      slab.fill(1, 0, 1000);
      assert.equal(await pool.run(sumTask, { view: slab.subarray(0, 1000) as SharedBytes }), 1000);
    } finally {
      await pool.close();
    }
  });

  it('refuses a payload view that would be copied', async () => {
    const pool = new WorkerPool({ threads: 1 });
    try {
      const copied = new Uint8Array(16) as unknown as SharedBytes;
      await assert.rejects(pool.run(fillTask, { view: copied, value: 1 }), (err: unknown) => isRaError(err, 'RA_ERR_TASK_PAYLOAD') && /payload\.view is a Uint8Array on an ArrayBuffer/.test(err.message));
    } finally {
      await pool.close();
    }
  });

  it('rejects work after close, and close is idempotent', async () => {
    const pool = new WorkerPool({ threads: 1 });
    await pool.close();
    await pool.close();
    await assert.rejects(pool.run(fillTask, { view: sharedBytes(4), value: 1 }), (err: unknown) => isRaError(err, 'RA_ERR_POOL_CLOSED'));
  });

  it('validates its size', () => {
    assert.throws(() => new WorkerPool({ threads: 0 }), /agent\.workers must be a positive integer/);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { threadId } from 'node:worker_threads';
import { isRaError } from '../../core/errors.js';
import { WorkerPool, defineTask, sharedBytes, type SharedBytes } from '../../core/workerPool.js';
import { fixture } from '../helpers/paths.js';

const fillTask = defineTask<{ view: SharedBytes; value: number }, { threadId: number; bytes: number }>(fixture('poolTask.js'), 'fill');
const loadsTask = defineTask<Record<string, never>, { threadId: number; loads: number }>(fixture('poolPreload.js'), 'loadsHere');
const brokenTask = defineTask<Record<string, never>, number>(fixture('poolBrokenModule.js'), 'never');
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

  it('preloads a module into every worker as it starts, before any task, and the first task finds it loaded', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-preload-'));
    const log = path.join(dir, 'loads');
    process.env.RA_TEST_PRELOAD_LOG = log;
    const pool = new WorkerPool({ threads: 2, preload: loadsTask });
    try {
      const threads = (): string[] => {
        try {
          return readFileSync(log, 'utf8').split('\n').filter(Boolean);
        } catch {
          return [];
        }
      };
      // No task has run: only the preload can have loaded it, once in each worker.
      for (let waited = 0; threads().length < 2 && waited < 20_000; waited += 20) await sleep(20);
      assert.equal(threads().length, 2, 'each of the 2 workers loads the module as it starts');
      assert.equal(new Set(threads()).size, 2);
      const runs = await Promise.all([pool.run(loadsTask, {}), pool.run(loadsTask, {}), pool.run(loadsTask, {})]);
      for (const r of runs) assert.equal(r.loads, 1, 'a task uses the preloaded instance');
      assert.equal(threads().length, 2, 'no worker loaded it again');
    } finally {
      await pool.close();
      delete process.env.RA_TEST_PRELOAD_LOG;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('survives a preload that fails or hangs: the pool runs other tasks, and a task from a failing module fails with its own error', { timeout: 60_000 }, async () => {
    // The hanging one is waited for 5 s at most: then its workers serve the other tasks.
    for (const preload of [brokenTask, defineTask(path.join(os.tmpdir(), 'ra-no-such-module.js')), defineTask(fixture('poolHangingModule.js'))]) {
      const pool = new WorkerPool({ threads: 2, preload });
      try {
        const slab = sharedBytes(100);
        slab.fill(1);
        assert.equal(await pool.run(sumTask, { view: slab }), 100);
        if (preload === brokenTask) await assert.rejects(pool.run(brokenTask, {}), /poolBrokenModule refuses to load/);
      } finally {
        await pool.close();
      }
    }
  });

  it('survives a preload that ends its thread or throws from a timer while loading: the pool neither hangs nor takes its owner down', { timeout: 60_000 }, async () => {
    // Piscina gives up on workers that fail before they report ready (and queued tasks wait for
    // ever), and a worker error with no task of its own is emitted on the pool (an owner crash).
    for (const preload of [defineTask(fixture('poolExitingModule.js')), defineTask(fixture('poolLateThrowModule.js'))]) {
      const pool = new WorkerPool({ threads: 2, preload });
      try {
        const slab = sharedBytes(100);
        slab.fill(1);
        for (let i = 0; i < 4; i++) assert.equal(await pool.run(sumTask, { view: slab }), 100, preload.filename);
        await sleep(300);
        assert.deepEqual(await Promise.all([pool.run(sumTask, { view: slab }), pool.run(sumTask, { view: slab })]), [100, 100], preload.filename);
      } finally {
        await pool.close();
      }
    }
  });
});

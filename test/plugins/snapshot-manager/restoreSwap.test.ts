// `restore --force` replaces a store crash-safely (issue #11, defect 4): killed between its two
// renames, or at any other moment, the target holds the old store or the restored one, and the
// next open — even with create: true, as the demo writer opens — finishes the restore instead of
// making an empty store in the gap.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WorkerPool } from '../../../core/workerPool.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import { walArchiver } from '../../../plugins/snapshot-manager/walArchive.js';
import { BIN } from '../../helpers/cli.js';
import { prng } from '../../helpers/prng.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore } from '../../helpers/engine.js';

const PAGES = 600;

async function fill(dir: string, tag: string, options: Parameters<typeof PageStore.open>[1] = {}): Promise<void> {
  const s = await PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: 4096, segmentSize: 65536, checkpointIntervalMs: 0, ...options });
  for (let i = 1; i < PAGES; i += 25) {
    const tx = s.begin();
    for (let p = i; p < Math.min(PAGES, i + 25); p++) await tx.write(p, 100, Buffer.from(`${tag}:${p};`));
    await tx.commit();
  }
  await s.close();
}

/** Which store `dir` holds now, read through a real open with create: true. */
async function whichStore(dir: string): Promise<string> {
  const s = await PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: 4096 });
  try {
    const tx = s.begin();
    const tags = new Set<string>();
    for (const p of [1, 77, PAGES - 1]) tags.add((await tx.read(p)).subarray(100, 100 + 40).toString().split(':')[0]!.replace(/\0/g, ''));
    await tx.commit();
    assert.equal(tags.size, 1, `one store's pages, not a mix: ${[...tags].join(', ')}`);
    return [...tags][0]!;
  } finally {
    await s.close();
  }
}

function restoreChild(snaps: string, to: string, env: NodeJS.ProcessEnv = {}): { done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; kill(): void } {
  const child = spawn(process.execPath, [BIN, 'restore', '--snapshot-dir', snaps, '--to', to, '--force'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  return {
    done: new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal }))),
    kill: () => child.kill('SIGKILL'),
  };
}

describe('restore --force, killed while it replaces the target', () => {
  const root = path.dirname(tmpStoreDir('ra-swap-'));
  const src = path.join(root, 'src');
  const snaps = path.join(root, 'snaps');
  const pool = new WorkerPool({ threads: 1 });
  before(async () => {
    await fill(src, 'new', { archiver: walArchiver(pagestore, snaps) });
    await createSnapshot({ engine: pagestore, store: src, dir: snaps, pool });
  });
  after(() => pool.close());

  it('killed between its two renames: the next open with create: true finishes the restore', async () => {
    const to = path.join(root, 'between');
    await fill(to, 'old');
    const r = await restoreChild(snaps, to, { RA_FAULT: 'swap-between-renames' }).done;
    assert.equal(r.signal, 'SIGKILL', 'the restore died at the fault point');
    assert.equal(existsSync(to), false, 'killed with the old store aside and the new one not yet in place');
    assert.equal(await whichStore(to), 'new');
    assert.deepEqual(readdirSync(root).filter((n) => n.startsWith('between.')), [], 'nothing left beside it');
    assert.equal(existsSync(path.join(to, 'SWAP')), false);
  });

  it('killed between its renames: the next restore finishes it first, then restores again', async () => {
    const to = path.join(root, 'again');
    await fill(to, 'old');
    assert.equal((await restoreChild(snaps, to, { RA_FAULT: 'swap-between-renames' }).done).signal, 'SIGKILL');
    const r = await restoreChild(snaps, to).done;
    assert.equal(r.code, 0);
    assert.equal(await whichStore(to), 'new');
  });

  it('killed at random moments: the target is always one whole store, old or new', async () => {
    const rng = prng(0xa11_5eed);

    for (let trial = 0; trial < 12; trial++) {
      const to = path.join(root, `random-${trial}`);
      await fill(to, 'old');
      const c = restoreChild(snaps, to);
      const timer = setTimeout(() => c.kill(), 150 + (rng() % 900));
      await c.done;
      clearTimeout(timer);
      const tag = await whichStore(to);
      assert.ok(tag === 'old' || tag === 'new', `trial ${trial}: ${tag}`);

      assert.ok(readFileSync(path.join(to, 'control')).byteLength > 0);
    }
  });
});

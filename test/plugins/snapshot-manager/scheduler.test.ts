/**
 * The snapshot-manager plugin inside a real Agent: scheduled snapshots (full every Nth, the
 * others incremental), retention after each, metrics; and the archiver passed to the agent's
 * own recoveries of the store.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import { Metrics } from '../../../core/tokens.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { LogArchiverSource } from '../../../core/contracts/PageEngine.js';
import pagestore from '../../../plugins/pagestore/index.js';
import snapshotManager, { SnapshotManagerStats } from '../../../plugins/snapshot-manager/index.js';
import { loadAll } from '../../../plugins/snapshot-manager/manifest.js';
import { verifySnapshots } from '../../../plugins/snapshot-manager/verify.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { pagestore as engine } from '../../helpers/engine.js';

describe('snapshot-manager plugin', () => {
  it('takes scheduled snapshots, full every 2nd, keeps 1 full + 1 incremental chain, and wires the archiver', async () => {
    const dir = tmpStoreDir('ra-snapsched-');
    const snaps = path.join(path.dirname(dir), 'snaps');
    const s = await PageStore.open(dir, { create: true, pageCount: 64, pageSize: 4096 });
    const tx = s.begin();
    await tx.write(3, 0, Buffer.from('scheduled'));
    await tx.commit();
    await s.close();

    const base = path.dirname(dir);
    const config = validateConfig({
      agent: { dataDir: path.join(base, 'agent'), workers: 1 },
      stores: [{ id: 'db', path: dir, snapshots: { dir: snaps, every: '120ms', fullEvery: 2, keep: { full: 1, incremental: 1 } } }],
    }, path.join(base, 'agent.yaml'), {});
    const cap = captureLogger();
    const agent = new Agent({ config, builtins: [pagestore, snapshotManager], log: cap.log });
    const status = await agent.start();
    try {
      assert.ok(status.every((p) => p.state === 'running'), JSON.stringify(status));
      const stats = agent.container.resolve(SnapshotManagerStats);
      const end = Date.now() + 10_000;
      while (stats.snapshot().taken.full + stats.snapshot().taken.incremental < 5) {
        if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(stats.snapshot())}`);
        await sleep(20);
      }
      assert.ok(stats.snapshot().taken.full >= 2 && stats.snapshot().taken.incremental >= 2, JSON.stringify(stats.snapshot()));
      assert.equal(stats.snapshot().failed, 0);
      assert.ok(agent.container.resolve(LogArchiverSource).archiverFor(dir), 'the engine gets an archiver for the store');
      const metrics = await agent.container.resolve(Metrics).metrics();
      assert.match(metrics, /recovery_agent_snapshots_total\{kind="full",result="ok"\} [1-9]/);
      assert.match(metrics, /recovery_agent_snapshot_last_compression_ratio [1-9]/);
    } finally {
      await agent.stop();
    }
    const kept = (await loadAll(snaps)).map((x) => x.manifest!);
    // Retention: the newest full and the newest incremental, plus that incremental's base when
    // it is an older full (never delete what a kept snapshot needs).
    const ids = kept.map((m) => m.id).join(' ');
    assert.equal(kept.filter((m) => m.kind === 'incremental').length, 1, ids);
    const inc = kept.find((m) => m.kind === 'incremental')!;
    assert.ok(kept.some((m) => m.id === inc.baseId), `the incremental's base is kept: ${ids}`);
    assert.ok(kept.filter((m) => m.kind === 'full').length <= 2, ids);
    assert.deepEqual((await verifySnapshots(engine, snaps)).problems, []);
  });

  it("asks a live owner for a checkpoint before each scheduled snapshot, through the store's control socket", async () => {
    const dir = tmpStoreDir('ra-snapsched-');
    const base = path.dirname(dir);
    const snaps = path.join(base, 'snaps');
    const owner = await PageStore.open(dir, { create: true, pageCount: 64, pageSize: 4096, checkpointIntervalMs: 0 });
    const config = validateConfig({
      agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { enabled: false } },
      stores: [{ id: 'db', path: dir, snapshots: { dir: snaps, every: '100ms' } }],
    }, path.join(base, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: [pagestore, snapshotManager], log: captureLogger().log });
    await agent.start();
    try {
      const stats = agent.container.resolve(SnapshotManagerStats);
      const end = Date.now() + 10_000;
      for (let i = 0; stats.snapshot().taken.full + stats.snapshot().taken.incremental < 2; i++) {
        if (Date.now() > end) throw new Error(`timed out: ${JSON.stringify(stats.snapshot())}`);
        const tx = owner.begin();
        await tx.write(1 + (i % 60), 0, Buffer.from(`change ${i}`));
        await tx.commit();
        await sleep(5);
      }
      assert.ok(stats.snapshot().checkpoints >= 2, JSON.stringify(stats.snapshot()));
      assert.ok(owner.counters.checkpoints >= 2, `owner checkpoints: ${owner.counters.checkpoints}`);
      assert.equal(stats.snapshot().failed, 0);
    } finally {
      await agent.stop();
      await owner.close();
    }
    assert.deepEqual((await verifySnapshots(engine, snaps)).problems, []);
  });

  it('GET /snapshots lists and POST /snapshots takes a snapshot on demand, both with the token', async () => {
    const dir = tmpStoreDir('ra-snapsched-');
    const base = path.dirname(dir);
    const snaps = path.join(base, 'snaps');
    const owner = await PageStore.open(dir, { create: true, pageCount: 32, pageSize: 4096, checkpointIntervalMs: 0 });
    const token = 'snapshot-token-0123456789';
    const config = validateConfig({
      agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', token } },
      stores: [{ id: 'db', path: dir, snapshots: { dir: snaps } }, { id: 'other', path: path.join(base, 'other') }],
    }, path.join(base, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: [pagestore, snapshotManager], log: captureLogger().log });
    await agent.start();
    const url = `http://${agent.httpAddress}/snapshots`;
    const post = (body: unknown, auth = true) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
    try {
      assert.equal((await post({ store: 'db' }, false)).status, 401);
      const tx = owner.begin();
      await tx.write(7, 0, Buffer.from('on demand'));
      await tx.commit();
      const full = await post({ store: 'db' });
      assert.equal(full.status, 200);
      const a = ((await full.json()) as { snapshot: { kind: string; pages: number; endLsn: number } }).snapshot;
      assert.equal(a.kind, 'full');
      assert.equal(a.pages, 32);
      assert.ok(a.endLsn >= owner.endLsn - 1, 'the snapshot reaches what was committed');
      const inc = await post({ store: 'db', incremental: true });
      assert.equal(((await inc.json()) as { snapshot: { kind: string } }).snapshot.kind, 'incremental');
      assert.equal((await fetch(`${url}?store=db`)).status, 401, 'the list shows internals: token needed');
      const list = (await (await fetch(`${url}?store=db`, { headers: { authorization: `Bearer ${token}` } })).json()) as { snapshots: Array<{ kind: string }> };
      assert.deepEqual(list.snapshots.map((x) => x.kind), ['full', 'incremental']);
      const bad = await post({ store: 'other' });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as { error: string }).error, /store "other" has no snapshots.dir/);
      assert.equal((await post({ store: 'db', incremental: 'yes' })).status, 400);
      assert.equal((await fetch(url, { headers: { authorization: `Bearer ${token}` } })).status, 400);
      assert.ok(owner.counters.checkpoints >= 2, 'the owner checkpointed before each');
    } finally {
      await agent.stop();
      await owner.close();
    }
  });
});

import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import { builtinPlugins } from '../../../cli/builtins.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import { TransactionRollbackManager } from '../../../plugins/transaction-rollback/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { cli } from '../../helpers/cli.js';
import { killedWriter, tmpStoreDir } from '../../helpers/store.js';

function agentFor(stores: Array<{ id: string; path: string }>) {
  const base = path.dirname(stores[0]!.path);
  const config = validateConfig({ agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } }, stores }, path.join(base, 'agent.yaml'), {});
  const cap = captureLogger();
  return { agent: new Agent({ config, builtins: builtinPlugins, log: cap.log }), lines: cap.lines };
}

describe('transaction-rollback plugin', () => {
  it('recovers every configured store when the agent starts, and keeps statistics', async () => {
    const crashed = tmpStoreDir();
    killedWriter({ dir: crashed, commits: 50, open: 2, pages: 32 });
    const missing = path.join(path.dirname(crashed), 'not-yet');
    const { agent, lines } = agentFor([{ id: 'crashed', path: crashed }, { id: 'missing', path: missing }]);
    const status = await agent.start();
    try {
      assert.ok(status.every((p) => p.state === 'running'), JSON.stringify(status));
      const manager = agent.container.resolve(TransactionRollbackManager);
      const stats = manager.stats();
      assert.equal(stats.recoveries, 1);
      assert.equal(stats.transactionsRolledBack, 2);
      assert.equal(stats.recordsUndone, 4);
      assert.ok(stats.recordsRedone > 0);
      assert.ok(lines().some((l) => l.msg === 'store does not exist yet; nothing to recover' && l.store === 'missing'));
      // Asked again (e.g. after an owner's crash), it recovers again: nothing left to do.
      const again = await manager.recoverStore('crashed');
      assert.equal(again.status, 'recovered');
      assert.equal(again.status === 'recovered' && again.report.transactionsRolledBack, 0);
      assert.deepEqual(await manager.recoverStore('missing'), { status: 'missing' });
      await assert.rejects(manager.recoverStore('nope'), /no store with id "nope"/);
    } finally {
      await agent.stop();
    }
  });

  it('leaves alone a store whose owner is alive', async () => {
    const dir = tmpStoreDir();
    const store = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0 });
    const { agent } = agentFor([{ id: 'busy', path: dir }]);
    await agent.start();
    try {
      const stats = agent.container.resolve(TransactionRollbackManager).stats();
      assert.equal(stats.skippedLocked, 1);
      assert.equal(stats.recoveries, 0);
      assert.deepEqual(await agent.container.resolve(TransactionRollbackManager).recoverStore('busy'), { status: 'locked', pid: process.pid });
    } finally {
      await agent.stop();
      await store.close();
    }
  });
});

describe('recovery-agent recover', () => {
  it('recovers a crashed store and prints statistics, as text or JSON', () => {
    const dir = tmpStoreDir();
    killedWriter({ dir, commits: 20, open: 1, pages: 16 });
    const r = cli(['recover', '--store', dir, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const stats = JSON.parse(r.stdout) as { transactionsRolledBack: number; recordsRedone: number; passes: Record<string, number> };
    assert.equal(stats.transactionsRolledBack, 1);
    assert.ok(stats.recordsRedone > 0);
    assert.ok('redoMs' in stats.passes && 'undoMs' in stats.passes);
    const text = cli(['recover', '--store', dir, '--serial']);
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /transactions rolled back\s+0/);
  });

  it('exits 3 when a live process holds the store, and 2 when there is no store', async () => {
    const dir = tmpStoreDir();
    const store = await PageStore.open(dir, { create: true, pageCount: 8, pageSize: 4096, checkpointIntervalMs: 0 });
    try {
      const r = cli(['recover', '--store', dir]);
      assert.equal(r.status, 3);
      assert.match(r.stderr, /locked by process/);
    } finally {
      await store.close();
    }
    assert.equal(cli(['recover', '--store', path.join(dir, 'nothing')]).status, 2);
  });
});

// The snapshot manager and the data repairer find each store's engine by its config's `engine:`
// and work through its page face only: a store whose engine is not loaded, or has no page face,
// is skipped with a log line saying why, and the plugins run on for the other stores.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import { HealingAction } from '../../../core/contracts/HealingAction.js';
import { PageSource } from '../../../core/contracts/PageSource.js';
import { StorageEngine, isStorageEngine } from '../../../core/contracts/StorageEngine.js';
import { definePlugin } from '../../../core/plugin.js';
import dataRepairer from '../../../plugins/data-repairer/index.js';
import pagestore from '../../../plugins/pagestore/index.js';
import { PageStore } from '../../../plugins/pagestore/pageStore.js';
import snapshotManager from '../../../plugins/snapshot-manager/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { tmpStoreDir } from '../../helpers/store.js';

/** An engine with only the StorageEngine contract: no page face. */
const plainEngine = definePlugin({
  id: 'plain-engine',
  contractVersion: '^1.0.0',
  provides: [StorageEngine],
  register(ctx) {
    ctx.provide(StorageEngine, {
      name: 'plain',
      describe: async (p: string) => ({ engine: 'plain', path: p, pageSize: 4096, pageCount: 1 }),
      recover: async () => ({ transactionsRolledBack: 0, recordsRedone: 0, recordsUndone: 0, walBytesRead: 0, durationMs: 0 }),
    }, isStorageEngine);
  },
});

describe('snapshot-manager and data-repairer pick engines by contract', () => {
  it('skip, saying why, stores whose engine is missing or has no page face; serve the others', async () => {
    const dir = tmpStoreDir('ra-engineface-');
    const base = path.dirname(dir);
    await (await PageStore.open(dir, { create: true, pageCount: 16, pageSize: 4096 })).close();
    const config = validateConfig({
      agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { enabled: false } },
      stores: [
        { id: 'good', path: dir, snapshots: { dir: path.join(base, 'snaps') } },
        { id: 'flat', engine: 'plain', path: path.join(base, 'flat'), snapshots: { dir: path.join(base, 'snaps-flat') } },
        { id: 'ghost', engine: 'nowhere', path: path.join(base, 'ghost'), snapshots: { dir: path.join(base, 'snaps-ghost') } },
      ],
    }, path.join(base, 'agent.yaml'), {});
    const cap = captureLogger();
    const agent = new Agent({ config, builtins: [pagestore, plainEngine, snapshotManager, dataRepairer], log: cap.log });
    const status = await agent.start();
    try {
      assert.ok(status.every((p) => p.state === 'running'), JSON.stringify(status));
      const said = (plugin: string, store: string) => cap.lines().find((l) => l.plugin === plugin && l.store === store && l.level === 40)?.msg as string | undefined;
      for (const plugin of ['snapshot-manager', 'data-repairer']) {
        assert.match(said(plugin, 'flat') ?? '', /storage engine "plain" has no page face/, plugin);
        assert.match(said(plugin, 'ghost') ?? '', /no loaded plugin provides the storage engine "nowhere"/, plugin);
        assert.equal(said(plugin, 'good'), undefined, plugin);
      }
      assert.equal(agent.container.resolveAll(PageSource).length, 1, 'the snapshot manager provides a page source');
      const repair = agent.container.resolveAll(HealingAction).find((a) => a.id === 'repair-page')!;
      const failure = (storeId: string) => ({ id: 'f', kind: 'page-corruption', priority: 'P0', subject: `store:${storeId}`, evidence: { storeId, path: dir, pages: [{ pageId: 3, reason: 'checksum' }] }, fingerprint: 'x', detectedAt: Date.now(), source: 'test' }) as never;
      assert.equal(await repair.canHandle(failure('good')), true);
      assert.equal(await repair.canHandle(failure('flat')), false, 'a store without a page face is not repaired');
    } finally {
      await agent.stop();
    }
  });
});

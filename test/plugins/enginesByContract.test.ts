// Plugins pick a store's engine by contract, not by name: a store whose engine is provided
// without the page face (core/contracts/PageEngine.ts), or not provided at all, is left out of
// what needs the face — scrub, store probe, checkpoint action, owner check — each saying why in
// its log, while the page store's stores beside it are protected as before. The scan command does
// the same with the engines it knows.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { CorruptionDetectorStats } from '../../core/contracts/CorruptionStats.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { HealingAction } from '../../core/contracts/HealingAction.js';
import { HealthProbe } from '../../core/contracts/HealthProbe.js';
import { StorageEngine, isStorageEngine } from '../../core/contracts/StorageEngine.js';
import { definePlugin } from '../../core/plugin.js';
import checkpointStore from '../../plugins/checkpoint-store/index.js';
import corruptionDetector from '../../plugins/corruption-detector/index.js';
import healthMonitor from '../../plugins/health-monitor/index.js';
import pagestore from '../../plugins/pagestore/index.js';
import recoverStore from '../../plugins/recover-store/index.js';
import transactionRollback from '../../plugins/transaction-rollback/index.js';
import { cli } from '../helpers/cli.js';
import { captureLogger } from '../helpers/logCapture.js';
import { makeStore } from './corruption-detector/damage.js';

/** An engine with only the StorageEngine contract: it describes and recovers, and has no page face. */
const flatEngine = definePlugin({
  id: 'flat-engine',
  contractVersion: '^1.0.0',
  provides: [StorageEngine],
  register(ctx) {
    ctx.provide(
      StorageEngine,
      {
        name: 'flat',
        describe: async (p: string) => ({ engine: 'flat', path: p, pageSize: 4096, pageCount: 0 }),
        recover: async () => ({ transactionsRolledBack: 0, recordsRedone: 0, recordsUndone: 0, walBytesRead: 0, durationMs: 0 }),
      },
      isStorageEngine,
    );
  },
});

describe('stores by engine contract', () => {
  it('skips a store whose engine has no page face, or is not loaded, saying why; protects the page store beside it', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-engines-'));
    const db = path.join(base, 'db');
    await makeStore(db, 64, 4096);
    mkdirSync(path.join(base, 'flat'));
    const config = validateConfig(
      {
        agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { enabled: false } },
        stores: [
          { id: 'db', path: db, scrub: { rate: '64MiB/s', interval: '1s' } },
          { id: 'flat', engine: 'flat', path: path.join(base, 'flat') },
          { id: 'ghost', engine: 'ghost', path: path.join(base, 'ghost') },
        ],
      },
      path.join(base, 'agent.yaml'),
      {},
    );
    const cap = captureLogger();
    const agent = new Agent({ config, builtins: [pagestore, flatEngine, transactionRollback, corruptionDetector, healthMonitor, checkpointStore, recoverStore], log: cap.log });
    const status = await agent.start();
    try {
      assert.ok(status.every((p) => p.state === 'running'), JSON.stringify(status));
      const said = (plugin: string, store: string) =>
        cap.lines().filter((l) => l.plugin === plugin && l.store === store).map((l) => String(l.msg));
      const noFace = 'the storage engine "flat" has no page face';
      const notLoaded = 'no loaded plugin provides the storage engine "ghost"';
      for (const [plugin, what] of [['corruption-detector', 'store not scrubbed'], ['health-monitor', 'no store probe'], ['checkpoint-store', 'store not checkpointed'], ['recover-store', 'cannot be verified']] as const) {
        assert.ok(said(plugin, 'flat').some((m) => m.includes(what) && m.endsWith(noFace)), `${plugin} on "flat": ${JSON.stringify(said(plugin, 'flat'))}`);
        assert.ok(said(plugin, 'ghost').some((m) => m.includes(what) && m.endsWith(notLoaded)), `${plugin} on "ghost": ${JSON.stringify(said(plugin, 'ghost'))}`);
        assert.deepEqual(said(plugin, 'db'), [], `${plugin} says nothing about skipping "db"`);
      }

      // The page store's store is scrubbed and probed; the others are not.
      assert.deepEqual(Object.keys(agent.container.resolve(CorruptionDetectorStats).snapshot().stores), ['db']);
      const storeProbes = agent.container.resolveAll(HealthProbe).map((p) => p.id).filter((id) => id.startsWith('store:'));
      assert.deepEqual(storeProbes, ['store:db']);

      // checkpoint-store takes failures about the page store's store only.
      const action = agent.container.resolveAll(HealingAction).find((a) => a.id === 'checkpoint-store')!;
      const about = (store: string) => ({ id: 'f', kind: 'predicted-exhaustion', priority: 'P2', subject: `store:${store}`, evidence: { unit: 'bytes' }, detectedAt: 0, source: 't', fingerprint: 'x' }) as Failure;
      assert.equal(action.canHandle(about('db')), true);
      assert.equal(action.canHandle(about('flat')), false);
      assert.equal(action.canHandle(about('ghost')), false);
    } finally {
      await agent.stop();
    }
  });

  it('scan --config scans the stores of engines it knows and names the others on stderr', async () => {
    const base = mkdtempSync(path.join(os.tmpdir(), 'ra-engines-cli-'));
    await makeStore(path.join(base, 'a'), 32, 4096);
    const cfg = path.join(base, 'agent.yaml');
    writeFileSync(cfg, `stores:\n  - { id: a, path: ./a }\n  - { id: flat, engine: flat, path: ./flat }\n`);
    const r = cli(['scan', '--config', cfg, '--json']);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout) as { stores: Array<{ id: string; pagesScanned: number; corrupt: unknown[] }> };
    assert.deepEqual(json.stores.map((s) => [s.id, s.pagesScanned, s.corrupt.length]), [['a', 32, 0]]);
    assert.match(r.stderr, /store flat not scanned: unknown storage engine "flat"/);

    writeFileSync(cfg, `stores:\n  - { id: flat, engine: flat, path: ./flat }\n`);
    const none = cli(['scan', '--config', cfg]);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /store flat not scanned: unknown storage engine "flat"/);
    assert.match(none.stderr, /no pagestore stores to scan/);
  });
});

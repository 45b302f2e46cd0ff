// The agent repairs pages corrupted under a running writer: the scrub finds them, the healer's
// default rule runs repair-page, which rebuilds each page from the snapshot + WAL (or takes the
// writer's cached copy) and has the writer write it through its control socket. The writer never
// reads a bad record (the store refuses the page until it is repaired, and the writer retries),
// and when it stops, every page verifies and the balances are exactly those of the transfers it
// committed.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import { Metrics } from '../../../core/tokens.js';
import { WorkerPool } from '../../../core/workerPool.js';
import corruptionDetector from '../../../plugins/corruption-detector/index.js';
import dataRepairer from '../../../plugins/data-repairer/index.js';
import { verifyPage } from '../../../plugins/pagestore/format.js';
import pagestore from '../../../plugins/pagestore/index.js';
import selfHealer from '../../../plugins/self-healer/index.js';
import { createSnapshot } from '../../../plugins/snapshot-manager/createSnapshot.js';
import snapshotManager from '../../../plugins/snapshot-manager/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { balancesAfter } from '../../helpers/transfers.js';
import { until } from '../../helpers/wait.js';
import { pagestore as engine } from '../../helpers/engine.js';

const PAGES = 200;
const PAGE = 4096;

describe('repair-page in the agent, under a running writer', () => {
  it('repairs corrupted pages online; the writer never sees bad data and loses nothing', async () => {
    const dir = tmpStoreDir('ra-agentrepair-');
    const base = path.dirname(dir);
    const snaps = path.join(base, 'snaps');
    const child = spawn(process.execPath, [fixture('repairWriter.js'), JSON.stringify({ dir, archive: snaps, pages: PAGES })], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines: string[] = [];
    let lastSeq = 0;
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) {
        if (/^\d+$/.test(l)) lastSeq = Number(l);
        else lines.push(l);
      }
    });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const pool = new WorkerPool({ threads: 1 });
    const config = validateConfig({
      agent: { dataDir: path.join(base, 'agent'), workers: 1, http: { enabled: false } },
      stores: [{ id: 'db', path: dir, scrub: { rate: '64MiB/s', interval: '100ms' }, snapshots: { dir: snaps } }],
    }, path.join(base, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: [pagestore, corruptionDetector, selfHealer, snapshotManager, dataRepairer], log: captureLogger().log });
    const failures: Failure[] = [];
    try {
      await until(() => lastSeq >= 300, 60_000, '300 commits');
      await createSnapshot({ engine, store: dir, dir: snaps, pool });
      const atSnapshot = lastSeq;
      await until(() => lastSeq >= atSnapshot + 800, 60_000, '800 more commits');
      await agent.start();
      agent.bus.subscribe((f) => failures.push(f));

      // Bit rot in three account pages, while the writer runs.
      const victims = [37, 101, 163];
      const fd = openSync(path.join(dir, 'pages.db'), 'r+');
      for (const p of victims) writeSync(fd, Buffer.alloc(48, 0x5a), 0, 48, p * PAGE + 2048);
      closeSync(fd);

      // A page the writer dirtied since its last checkpoint is overwritten by its next one, so
      // not every victim need be found; wait for the repairs of those that were.
      await until(() => failures.some((f) => f.kind === 'page-corruption'), 30_000, 'the scrub to find a corrupt page');
      await agent.orchestrator.idle();
      const recs = agent.orchestrator.recentRecoveries().filter((r) => failures.some((f) => f.id === r.failureId && f.kind === 'page-corruption'));
      assert.ok(recs.length > 0);
      for (const r of recs) {
        assert.equal(r.outcome, 'recovered', JSON.stringify(r));
        assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['repair-page', true]]);
      }
      const metrics = await agent.container.resolve(Metrics).metrics();
      assert.match(metrics, /recovery_agent_pages_repaired_total\{source="(snapshot|owner-cache)"\} [1-9]/);

      const atRepair = lastSeq;
      await until(() => lastSeq >= atRepair + 200, 60_000, '200 commits after the repair');
    } finally {
      child.kill('SIGTERM');
      await exited;
      await agent.stop();
      await pool.close();
    }
    assert.ok(lines.includes('closed'), lines.join('\n'));
    assert.deepEqual(lines.filter((l) => l.startsWith('BAD')), [], 'the writer never read a bad record');
    // Every page verifies; the balances are exactly those of the committed transfers.
    const data = readFileSync(path.join(dir, 'pages.db'));
    const want = balancesAfter(lastSeq, PAGES);
    for (let id = 0; id < PAGES; id++) {
      const page = data.subarray(id * PAGE, (id + 1) * PAGE);
      assert.equal(verifyPage(page, id), null, `page ${id} verifies`);
      if (id === 1) assert.equal(Number(page.readBigUInt64LE(32)), lastSeq);
      if (id >= 2) assert.equal(page.readUInt32LE(32) === 0 ? 1000n : page.readBigInt64LE(40), want.get(id), `balance of page ${id}`);
    }
  });
});

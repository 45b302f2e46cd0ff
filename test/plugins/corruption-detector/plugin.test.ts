/**
 * The corruption-detector plugin inside a real Agent: a corrupt page found by the scrub is
 * published once as a P0 page-corruption failure, pass after pass; counters come out under the
 * CorruptionDetectorStats token; on-demand scans run on the shared pool; a page that fails verify
 * on read during recovery (transaction-rollback) is published by the reader and not again by the
 * scrub; the scrub resumes after the agent restarts.
 */
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import { Detector } from '../../../core/contracts/Detector.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import corruptionDetector, { CorruptionDetector, CorruptionDetectorStats } from '../../../plugins/corruption-detector/index.js';
import pagestore from '../../../plugins/pagestore/index.js';
import transactionRollback from '../../../plugins/transaction-rollback/index.js';
import { scrubStateFile } from '../../../plugins/corruption-detector/scrubState.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { fixture } from '../../helpers/paths.js';
import { tmpStoreDir } from '../../helpers/store.js';
import { flipBits, makeStore } from './damage.js';
import { until } from '../../helpers/wait.js';

function agentFor(dir: string, scrub: { rate: string; interval: string }) {
  const base = path.dirname(dir);
  const config = validateConfig({ agent: { dataDir: path.join(base, 'agent'), workers: 1 }, stores: [{ id: 'db', path: dir, scrub }] }, path.join(base, 'agent.yaml'), {});
  const cap = captureLogger();
  const agent = new Agent({ config, builtins: [pagestore, transactionRollback, corruptionDetector], log: cap.log });
  const failures: Failure[] = [];
  agent.bus.subscribe((f) => failures.push(f));
  return { agent, failures, lines: cap.lines, config };
}

describe('corruption-detector plugin', () => {
  it('publishes each corrupt page once, P0, with the store and pages; exposes counters and on-demand scans', async () => {
    const dir = tmpStoreDir();
    await makeStore(dir, 128, 4096);
    const hit = flipBits(dir, 4096, 128, 3, 11);
    const { agent, failures } = agentFor(dir, { rate: '64MiB/s', interval: '100ms' });
    const status = await agent.start();
    try {
      assert.ok(status.every((p) => p.state === 'running'), JSON.stringify(status));
      const stats = agent.container.resolve(CorruptionDetectorStats);
      await until(() => (stats.snapshot().stores.db?.passes ?? 0) >= 3, 10_000, 'three scrub passes');
      const corruption = failures.filter((f) => f.kind === 'page-corruption');
      assert.equal(corruption.length, 1, JSON.stringify(corruption));
      const f = corruption[0]!;
      assert.equal(f.priority, 'P0');
      assert.equal(f.subject, 'store:db');
      assert.equal(f.source, 'corruption-detector');
      const want = [...hit].map(([pageId, reason]) => ({ pageId, reason })).sort((a, b) => a.pageId - b.pageId);
      assert.deepEqual(f.evidence, { storeId: 'db', path: dir, pages: want, foundBy: 'scrub' });
      assert.equal(f.fingerprint, `page-corruption|store:db|pages:${want.map((p) => p.pageId).join(',')}`);

      const snap = stats.snapshot();
      assert.equal(snap.corruptPagesDetected, 3);
      assert.equal(snap.failuresPublished, 1);
      assert.ok(snap.pagesScanned >= 3 * 128 && snap.bytesScanned === snap.pagesScanned * 4096);
      const db = snap.stores.db!;
      assert.equal(db.pageCount, 128);
      assert.ok(db.lastPassDurationMs >= 0 && db.lastPassCompletedAt > 0);
      assert.ok(db.corruptFound >= 9);
      assert.ok(['scanning', 'waiting'].includes(db.state));

      // On demand, full speed, on the agent's pool: same pages, nothing published again.
      const service = agent.container.resolve(CorruptionDetector);
      const r = await service.scan('db');
      assert.deepEqual(r.corrupt, want);
      assert.equal(stats.snapshot().scans, 1);
      assert.equal(failures.filter((x) => x.kind === 'page-corruption').length, 1);
      await assert.rejects(service.scan('nope'), /no pagestore store with id "nope"/);

      // The plugin's Detector is in the container; the host started it with a sink on the bus.
      const detectors = agent.container.resolveAll(Detector);
      const ours = detectors.find((d) => d.id === 'corruption-detector');
      assert.deepEqual(ours?.kinds, ['page-corruption']);
    } finally {
      await agent.stop();
    }
  });

  it('a page that fails verify on read during recovery is published by the reader, and not again by the scrub', async () => {
    const dir = tmpStoreDir();
    const r = spawnSync(process.execPath, [fixture('scanLoserKill.js'), JSON.stringify({ dir, pages: 32, page: 9 })], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.signal, 'SIGKILL', r.stderr);
    // Damage the page undo must read.
    const file = path.join(dir, 'pages.db');
    const b = readFileSync(file);
    b[9 * 4096 + 3000]! ^= 0x40;
    writeFileSync(file, b);

    const { agent, failures, lines } = agentFor(dir, { rate: '64MiB/s', interval: '100ms' });
    await agent.start();
    try {
      const stats = agent.container.resolve(CorruptionDetectorStats);
      await until(() => (stats.snapshot().stores.db?.passes ?? 0) >= 2, 10_000, 'two scrub passes');
      const corruption = failures.filter((f) => f.kind === 'page-corruption');
      assert.equal(corruption.length, 1, JSON.stringify(corruption));
      assert.equal(corruption[0]!.source, 'transaction-rollback');
      assert.deepEqual(corruption[0]!.evidence, { storeId: 'db', path: dir, pages: [{ pageId: 9, reason: 'checksum' }], foundBy: 'recovery' });
      assert.ok(lines().some((l) => l.msg === 'store recovery failed at start'));
      const snap = stats.snapshot();
      assert.ok(snap.stores.db!.corruptFound >= 2, 'the scrub found it too');
      assert.equal(snap.failuresPublished, 0);
      assert.equal(snap.corruptPagesDetected, 1);
    } finally {
      await agent.stop();
    }
  });

  it('resumes the scrub where it stopped when the agent restarts', async () => {
    const dir = tmpStoreDir();
    await makeStore(dir, 1024, 4096); // 4 MiB at 1 MiB/s: a pass takes 4 s
    const first = agentFor(dir, { rate: '1MiB/s', interval: '1h' });
    await first.agent.start();
    const stats = first.agent.container.resolve(CorruptionDetectorStats);
    await until(() => stats.snapshot().stores.db!.position > 100, 5000, 'scrub progress');
    await first.agent.stop();
    const stopped = stats.snapshot().stores.db!.position;
    const saved = JSON.parse(readFileSync(scrubStateFile(first.config.agent.dataDir, 'db'), 'utf8')) as { nextPage: number };
    assert.equal(saved.nextPage, stopped);

    const second = agentFor(dir, { rate: '1MiB/s', interval: '1h' });
    await second.agent.start();
    try {
      await until(() => second.lines().some((l) => l.msg === 'scrub resumes where it stopped'), 5000, 'the resume log line');
      assert.ok(second.lines().some((l) => l.msg === 'scrub resumes where it stopped' && l.position === stopped));
      assert.ok(second.agent.container.resolve(CorruptionDetectorStats).snapshot().stores.db!.position >= stopped);
    } finally {
      await second.agent.stop();
    }
  });
});

import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import { builtinPlugins } from '../../../cli/builtins.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { repoRoot } from '../../helpers/paths.js';

describe('a third-party healing action in a rule', () => {
  it('the example notify-file plugin is loaded from the config and run by the self-healer', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-3p-'));
    const notes = path.join(dir, 'notes.log');
    const config = validateConfig(
      {
        agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { enabled: false } },
        healing: { rules: [{ on: 'disk-smart-warning', do: ['notify-file'] }] },
        plugins: [{ module: path.join(repoRoot(), 'examples', 'plugins', 'notify-file.js'), options: { path: notes } }],
      },
      path.join(dir, 'agent.yaml'),
      {},
    );
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    try {
      const f = agent.bus.publish('smart-probe', { kind: 'disk-smart-warning', priority: 'P2', subject: 'disk:sda', evidence: { reallocated: 12 } });
      await agent.orchestrator.idle();
      const [r] = agent.orchestrator.recentRecoveries();
      assert.equal(r!.failureId, f.id);
      assert.equal(r!.outcome, 'recovered');
      assert.deepEqual(r!.attempts.map((a) => [a.action, a.verified]), [['notify-file', true]]);
      const line = JSON.parse(readFileSync(notes, 'utf8').trim()) as { failureId: string; evidence: unknown };
      assert.equal(line.failureId, f.id);
      assert.deepEqual(line.evidence, { reallocated: 12 });
    } finally {
      await agent.stop();
    }
  });
});

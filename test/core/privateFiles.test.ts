// Private files and directories: created 0600 / 0700 (parents too), tightened when found looser,
// never loosened; and the agent's own dataDir and journal.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { ensurePrivateDir, openPrivate } from '../../core/privateFiles.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { captureLogger } from '../helpers/logCapture.js';
import { until } from '../helpers/wait.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-private-'));
const mode = (p: string) => (lstatSync(p).mode & 0o7777).toString(8);

describe('private files', () => {
  it('openPrivate creates 0600, tightens a looser file before writing, and never loosens', async () => {
    const dir = tmp();
    const fresh = path.join(dir, 'fresh');
    await (await openPrivate(fresh, 'w')).close();
    assert.equal(mode(fresh), '600');
    const old = path.join(dir, 'old');
    writeFileSync(old, 'x');
    chmodSync(old, 0o664);
    const h = await openPrivate(old, 'a');
    assert.equal(mode(old), '600', 'tightened before the handle is handed out');
    await h.close();
    const strict = path.join(dir, 'strict');
    writeFileSync(strict, 'x');
    chmodSync(strict, 0o400);
    await (await openPrivate(strict, 'w')).close(); // root may write it
    assert.equal(mode(strict), '400');
  });

  it('ensurePrivateDir creates every missing directory 0700, and tightens an existing one', async () => {
    const dir = tmp();
    chmodSync(dir, 0o755);
    assert.deepEqual(await ensurePrivateDir(path.join(dir, 'a', 'b', 'c')), []);
    assert.deepEqual(['a', 'a/b', 'a/b/c'].map((p) => mode(path.join(dir, p))), ['700', '700', '700']);
    assert.equal(mode(dir), '755', 'an existing parent is left alone');
    const open = path.join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    assert.deepEqual(await ensurePrivateDir(open), [{ path: open, from: '777', to: '700' }]);
    assert.equal(mode(open), '700');
  });

  it("the agent's dataDir is made 0700 (an open one tightened) and its journal 0600", async () => {
    const dir = tmp();
    const dataDir = path.join(dir, 'state', 'agent');
    mkdirSync(dataDir, { recursive: true, mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const logs = captureLogger();
    const config = validateConfig({ agent: { dataDir, workers: 1, http: { enabled: false } } }, path.join(dir, 'agent.yaml'), {});
    const agent = new Agent({ config, builtins: builtinPlugins, log: logs.log });
    await agent.start();
    try {
      assert.equal(mode(dataDir), '700');
      assert.ok(logs.lines().some((l) => l.msg === 'agent.dataDir was open to other users; removed group and other permission bits'));
      agent.bus.publish('test', { kind: 'test-failure', priority: 'P3', subject: 'nothing', evidence: {} });
      const journal = path.join(dataDir, 'journal.jsonl');
      await until(() => {
        try {
          return lstatSync(journal).size > 0;
        } catch {
          return false;
        }
      }, 5000, 'the journal');
      assert.equal(mode(journal), '600');
    } finally {
      await agent.stop();
    }
  });
});

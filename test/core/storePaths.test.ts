// The core's StorePaths: a redirect is on disk before it counts, survives a new instance (a
// restarted agent), replaces the store's path in the config the plugins get, and a damaged record
// is refused rather than ignored (ignoring it would send the agent back to the failed disk).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { AgentConfig } from '../../core/config/schema.js';
import { isRaError } from '../../core/errors.js';
import { STORE_PATHS_FILE, StorePathsFile } from '../../core/storePaths.js';

const configured = new Map([['a', '/disk1/a'], ['b', '/disk1/b']]);

describe('StorePaths', () => {
  it('names the configured path until a redirect, then the spare, durably and after a restart', async () => {
    const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-storepaths-')), 'agent');
    const paths = new StorePathsFile(dataDir, configured);
    assert.equal(paths.pathOf('a'), '/disk1/a');
    assert.equal(paths.pathOf('nope'), undefined);
    const r = await paths.redirect('a', '/disk2/a', 'disk-failure f-1');
    assert.deepEqual([r.path, r.from, r.reason], ['/disk2/a', '/disk1/a', 'disk-failure f-1']);
    assert.equal(paths.pathOf('a'), '/disk2/a');
    assert.equal(paths.pathOf('b'), '/disk1/b');
    const file = path.join(dataDir, STORE_PATHS_FILE);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the record is private, like the rest of the dataDir');
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as Record<string, { path: string }>).a!.path, '/disk2/a');

    // A new instance (the agent restarted) reads it back, and gives plugins the moved path.
    const again = new StorePathsFile(dataDir, configured);
    assert.equal(again.pathOf('a'), '/disk2/a');
    const config = { stores: [{ id: 'a', path: '/disk1/a' }, { id: 'b', path: '/disk1/b' }] } as unknown as AgentConfig;
    assert.deepEqual(again.applyTo(config).stores.map((s) => s.path), ['/disk2/a', '/disk1/b']);
    assert.equal(config.stores[0]!.path, '/disk1/a', 'the config given is not changed');
    await assert.rejects(again.redirect('nope', '/x', 'r'), (e: unknown) => isRaError(e, 'RA_ERR_USAGE'));
  });

  it('refuses a damaged record, naming it', () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ra-storepaths-'));
    for (const text of ['{"a": {"path": "/disk2', '[]', '{"a": {"path": "relative/a"}}', '{"a": {}}']) {
      writeFileSync(path.join(dataDir, STORE_PATHS_FILE), text);
      assert.throws(() => new StorePathsFile(dataDir, configured), (e: unknown) => isRaError(e, 'RA_ERR_CONFIG') && e.message.includes(STORE_PATHS_FILE), text);
    }
  });
});

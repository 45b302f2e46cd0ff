import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { cli } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-cli-problems-'));

describe('cli: config problems beyond the schema', () => {
  it('config check names, in one pass, a typo\'d store path, an unknown engine and a missing plugin module; exit 2', () => {
    const dir = tmp();
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, [
      'agent: { dataDir: ./agent }',
      'stores:',
      '  - { id: ns, path: ./notastore }',
      '  - { id: db2, engine: rocksdb, path: ./x }',
      '  - { id: later, path: ./later }',
      'processes:',
      '  - { id: w, command: "true", store: later }',
      '',
    ].join('\n'));
    const r = cli(['config', 'check', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /stores\[0\]\.path: .*notastore does not exist, and no configured process writes store "ns"/);
    assert.match(r.stderr, /stores\[1\]\.engine: unknown storage engine "rocksdb" \(built in: pagestore/);
    assert.doesNotMatch(r.stderr, /stores\[2\]/, 'a store its process creates on first start is fine');

    writeFileSync(file, ['agent: { dataDir: ./agent }', 'stores: []', 'plugins:', '  - { module: ./plugins/nope.js }', '  - { module: no-such-package-ra-test }', ''].join('\n'));
    const p = cli(['config', 'check', file]);
    assert.equal(p.status, 2, p.stderr);
    assert.match(p.stderr, /plugins\[0\]\.module: no such file: .*plugins\/nope\.js/);
    assert.match(p.stderr, /plugins\[1\]\.module: no-such-package-ra-test: no such package/);
  });

  it('run refuses a store path that does not exist and that no process writes, before anything starts', () => {
    const dir = tmp();
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, ['agent: { dataDir: ./agent, http: { enabled: false } }', 'stores:', '  - { id: ns, path: ./notastore }', ''].join('\n'));
    const r = cli(['run', '-c', file]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /stores\[0\]\.path: .*notastore does not exist/);
    mkdirSync(path.join(dir, 'agent'), { recursive: true });
  });

  it('run takes its config from RECOVERY_AGENT_CONFIG without --config, and says where to put one when there is none', () => {
    const dir = tmp();
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, ['agent: { dataDir: ./agent, http: { enabled: false } }', 'stores:', '  - { id: ns, path: ./typo }', ''].join('\n'));
    const viaEnv = cli(['run'], { env: { ...process.env, RECOVERY_AGENT_CONFIG: file } });
    assert.equal(viaEnv.status, 2, viaEnv.stderr);
    assert.match(viaEnv.stderr, /agent\.yaml: invalid config:\n {2}stores\[0\]\.path: .*typo does not exist/, 'the file named by the variable was read');
    const env = { ...process.env };
    delete env.RECOVERY_AGENT_CONFIG;
    const none = cli(['run'], { env });
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no config: give --config FILE, set RECOVERY_AGENT_CONFIG, or put one at \/etc\/recovery-agent\/agent\.yaml/);
  });
});

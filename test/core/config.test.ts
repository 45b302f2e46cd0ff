import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { configJsonSchema, loadConfigFile, parseConfigText, SAMPLE_CONFIG } from '../../cli/config.js';
import { parseDuration, parseRate, parseSize } from '../../core/config/units.js';
import { isRaError } from '../../core/errors.js';
import { repoRoot } from '../helpers/paths.js';

const SRC = '/etc/ra/agent.yaml';

function configError(text: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    parseConfigText(text, SRC, env);
  } catch (err) {
    assert.ok(isRaError(err, 'RA_ERR_CONFIG'), `expected RA_ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail('config was accepted');
}

describe('config', () => {
  it('applies defaults to an empty file', () => {
    const cfg = parseConfigText('', SRC, {});
    assert.equal(cfg.agent.maxConcurrentRecoveries, 3);
    assert.equal(cfg.agent.rto.P0, 30_000);
    assert.equal(cfg.agent.rto.P3, 3_600_000);
    assert.equal(cfg.agent.http.listen, '127.0.0.1:9464');
    assert.ok(cfg.agent.workers >= 1);
    assert.equal(cfg.agent.dataDir, '/etc/ra/var/agent');
    assert.deepEqual(cfg.stores, []);
  });

  it('parses durations, sizes and rates, and resolves paths against the config file', () => {
    const cfg = parseConfigText(
      `agent: { rto: { P0: 5s, P1: 2m, P2: 1500ms, P3: 1h }, dataDir: /var/lib/ra }
stores:
  - { id: demo, path: ./store, scrub: { rate: 50MiB/s, interval: 2m }, snapshots: { dir: ../backups/demo } }
plugins:
  - { module: ./my-plugin.js }
  - { module: some-npm-plugin }
`,
      SRC,
      {},
    );
    assert.deepEqual(cfg.agent.rto, { P0: 5000, P1: 120_000, P2: 1500, P3: 3_600_000 });
    assert.equal(cfg.agent.dataDir, '/var/lib/ra');
    assert.equal(cfg.stores[0]!.path, '/etc/ra/store');
    assert.equal(cfg.stores[0]!.snapshots!.dir, '/etc/backups/demo');
    assert.equal(cfg.stores[0]!.engine, 'pagestore');
    assert.equal(cfg.stores[0]!.scrub.rate, 50 * 1024 * 1024);
    assert.equal(cfg.stores[0]!.scrub.interval, 120_000);
    assert.equal(cfg.plugins[0]!.module, '/etc/ra/my-plugin.js');
    assert.equal(cfg.plugins[1]!.module, 'some-npm-plugin');
  });

  it('names the key path, the bad value and what was expected', () => {
    const msg = configError('agent:\n  workers: two\n');
    assert.match(msg, /agent\.workers/);
    assert.match(msg, /"two"/);
    assert.match(msg, /expected number/i);
    const rto = configError('agent: { rto: { P1: soon } }');
    assert.match(rto, /agent\.rto\.P1: expected a duration such as 100ms, 5s, 2m or 1h \(got "soon"\)/);
    const rate = configError('stores: [{ id: a, path: x, scrub: { rate: fast } }]');
    assert.match(rate, /stores\[0\]\.scrub\.rate: expected a rate such as 50MiB\/s/);
    assert.match(rate, /"fast"/);
  });

  it('rejects unknown keys, missing required keys and duplicate store ids', () => {
    assert.match(configError('agnet: {}'), /\(top level\): unknown key "agnet"/);
    assert.match(configError('agent: { workerz: 2 }'), /agent: unknown key "workerz"/);
    assert.match(configError('stores: [{ id: a }]'), /stores\[0\]\.path/);
    assert.match(configError('stores: [{ id: a, path: x }, { id: a, path: y }]'), /store ids to be unique/);
    assert.match(configError('stores: [{ id: "Bad Id", path: x }]'), /stores\[0\]\.id: expected an id/);
  });

  it('reports every problem in one pass, each at its key path, with no list dumped', () => {
    const message = configError(`agent: { workers: x }
stores:
  - { id: a, path: /x }
  - { id: a, path: /y, engine: 5 }
processes:
  - { id: w, args: [x] }
  - { id: w, command: /bin/true, restart: { policy: bogus } }
  - { id: v, command: /bin/true, store: nosuch }
`);
    const lines = message.split('\n').slice(1).map((l) => l.trim());
    for (const expected of [
      /^agent\.workers: .*expected number/,
      /^stores\[1\]\.id: expected store ids to be unique \("a" is also stores\[0\]\.id\)/,
      /^stores\[1\]\.engine: .*expected string/,
      /^processes\[0\]\.command: expected exactly one of command .* or pidFile/,
      /^processes\[1\]\.id: expected process ids to be unique \("w" is also processes\[0\]\.id\)/,
      /^processes\[1\]\.restart\.policy: /,
      /^processes\[2\]\.store: expected the id of a store in stores\[\] \(have: a\)/,
    ]) assert.ok(lines.some((l) => expected.test(l)), `no line matches ${String(expected)} in:\n${message}`);
    assert.doesNotMatch(message, /\/y|\/x/, 'a store entry (its paths) is dumped');
    assert.equal(lines.length, 7, message);
  });

  it('reports YAML syntax errors', () => {
    assert.match(configError('agent: { workers: 2\n'), /not valid YAML/);
    assert.match(configError('agent: {}\nagent: {}\n'), /not valid YAML/);
  });

  it('substitutes ${ENV} in values, with defaults, and names the key of a missing variable', () => {
    const cfg = parseConfigText('agent: { http: { token: "${TOKEN}" }, dataDir: "${DIR:-/srv/ra}" }', SRC, { TOKEN: 'x'.repeat(20) });
    assert.equal(cfg.agent.http.token, 'x'.repeat(20));
    assert.equal(cfg.agent.dataDir, '/srv/ra');
    assert.match(configError('agent: { http: { token: "${NOPE}" } }'), /agent\.http\.token: environment variable NOPE is not set/);
    // A variable cannot inject structure: its value stays a string.
    const msg = configError('agent: { workers: "${W}" }', { W: '{ a: 1 }' });
    assert.match(msg, /agent\.workers/);
    assert.equal(parseConfigText('agent: { dataDir: "$${HOME}" }', SRC, {}).agent.dataDir, '/etc/ra/${HOME}');
  });

  it('the sample written by init and the demo config both validate', () => {
    const cfg = parseConfigText(SAMPLE_CONFIG, SRC, {});
    assert.equal(cfg.agent.rto.P1, 120_000);
    const demo = loadConfigFile(path.join(repoRoot(), 'examples', 'demo.yaml'), {});
    assert.ok(demo.plugins.length >= 1);
  });

  it('reports a missing file clearly', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-config-'));
    assert.throws(() => loadConfigFile(path.join(dir, 'nope.yaml')), (err: unknown) => isRaError(err, 'RA_ERR_CONFIG') && /cannot read config file/.test(err.message));
    writeFileSync(path.join(dir, 'ok.yaml'), 'agent: { workers: 1 }\n');
    assert.equal(loadConfigFile(path.join(dir, 'ok.yaml')).agent.workers, 1);
  });

  it('exports a JSON Schema of the input form', () => {
    const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, unknown> }> };
    assert.ok(schema.properties.agent?.properties?.workers);
    assert.ok(schema.properties.stores);
    assert.ok(schema.properties.plugins);
  });
});

describe('units', () => {
  it('parses durations', () => {
    assert.equal(parseDuration('100ms'), 100);
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('2m'), 120_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration(250), 250);
    assert.equal(parseDuration('5'), undefined);
    assert.equal(parseDuration('soon'), undefined);
    assert.equal(parseDuration(-1), undefined);
  });
  it('parses sizes and rates', () => {
    assert.equal(parseSize('8KiB'), 8192);
    assert.equal(parseSize('50MiB'), 52_428_800);
    assert.equal(parseSize('1GB'), 1e9);
    assert.equal(parseSize('4096'), 4096);
    assert.equal(parseSize('1.5KiB'), 1536);
    assert.equal(parseSize('12 parsecs'), undefined);
    assert.equal(parseRate('50MiB/s'), 52_428_800);
    assert.equal(parseRate('1 KiB / s'), 1024);
    assert.equal(parseRate('50MiB'), undefined);
  });
});

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { BIN, cli } from '../helpers/cli.js';
import { fixture } from '../helpers/paths.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-cli-sections-'));

/** The modules a CLI run imports, by URL (test/fixtures/traceImports). */
function loads(args: string[]): { status: number | null; stderr: string; urls: string[] } {
  const trace = path.join(tmp(), 'imports.txt');
  writeFileSync(trace, '');
  const r = spawnSync(process.execPath, ['--import', pathToFileURL(fixture('traceImports.js')).href, BIN, ...args], {
    env: { ...process.env, RA_TRACE_IMPORTS: trace }, encoding: 'utf8', timeout: 60_000,
  });
  return { status: r.status, stderr: r.stderr, urls: readFileSync(trace, 'utf8').split('\n').filter((u) => u && !u.includes('/dist/test/fixtures/')) };
}

describe('cli: config sections and error codes of plugins', () => {
  it('config check validates the sample with the plugins\' sections, loading their section modules and no plugin runtime', () => {
    const dir = tmp();
    const file = path.join(dir, 'agent.yaml');
    assert.equal(cli(['init', file]).status, 0);
    writeFileSync(file, readFileSync(file, 'utf8').replace('stores: []', 'stores:\n  - { id: demo, path: ./store, scrub: { rate: 10MiB/s }, snapshots: { dir: ./snaps, every: 1h } }'));
    mkdirSync(path.join(dir, 'store')); // a store path that does not exist, with no process writing it, is an error
    const { status, stderr, urls } = loads(['config', 'check', file]);
    assert.equal(status, 0, stderr);
    const plugins = urls.filter((u) => u.includes('/dist/plugins/'));
    assert.deepEqual(
      plugins.map((u) => u.slice(u.indexOf('/dist/plugins/') + '/dist/plugins/'.length)).sort(),
      ['cluster/configSection.js', 'corruption-detector/configSection.js', 'health-monitor/configSection.js', 'redirect-store/configSection.js', 'replication/configSection.js', 'self-healer/configSection.js', 'snapshot-manager/configSection.js'],
    );
    assert.deepEqual(urls.filter((u) => /\/native\/|\/node_modules\/(tsyringe|piscina|pino|fastify|prom-client)\//.test(u)), []);
  });

  it('config check names the key path inside a plugin\'s section, and refuses a section no loaded plugin has', () => {
    const dir = tmp();
    const file = path.join(dir, 'agent.yaml');
    writeFileSync(file, 'stores:\n  - { id: a, path: ./a }\n  - { id: b, path: ./b, snapshots: { dir: ./s, keep: { full: many } } }\nhealht: {}\n');
    const r = cli(['config', 'check', file]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /stores\[1\]\.snapshots\.keep\.full: .*\(got "many"\)/);
    assert.match(r.stderr, /\(top level\): unknown key "healht" \(sections: agent, stores, processes, healing, health, cluster, plugins;/);
  });

  it('config schema prints the composed JSON Schema, plugin sections included', () => {
    const r = cli(['config', 'schema']);
    assert.equal(r.status, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, { items?: { properties?: Record<string, unknown> } }> };
    assert.ok(schema.properties.health && schema.properties.healing);
    assert.ok(schema.properties.stores!.items!.properties!.snapshots && schema.properties.stores!.items!.properties!.scrub);
  });

  it('a plugin\'s code raised from a module that does not load its catalogue still exits with its own exit code', () => {
    // snapshot verify and restore import the snapshot code, not its index: the CLI loads the catalogue to map the code.
    const dir = tmp();
    const verify = cli(['snapshot', 'verify', dir]);
    assert.equal(verify.status, 2, verify.stderr);
    assert.match(verify.stderr, /\[RA_ERR_SNAPSHOT_INVALID\]/);
    const restore = cli(['restore', '--snapshot-dir', dir, '--to', path.join(dir, 'restored')]);
    assert.equal(restore.status, 2, restore.stderr);
    assert.match(restore.stderr, /\[RA_ERR_SNAPSHOT_INVALID\]/);
  });
});

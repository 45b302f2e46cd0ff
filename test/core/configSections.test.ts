import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { builtinPlugins } from '../../cli/builtins.js';
import { builtinConfigSections } from '../../cli/builtinSections.js';
import { configJsonSchema, parseConfigText, SAMPLE_CONFIG } from '../../cli/config.js';
import { createConfigLoader } from '../../core/config/load.js';
import { composeConfigSchema } from '../../core/config/schema.js';
import { defineConfigSection, type ConfigSection } from '../../core/config/section.js';
import { duration } from '../../core/config/valueTypes.js';
import { isRaError } from '../../core/errors.js';

const SRC = '/etc/ra/agent.yaml';

function configError(parse: () => unknown): string {
  try {
    parse();
  } catch (err) {
    assert.ok(isRaError(err, 'RA_ERR_CONFIG'), `expected RA_ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail('config was accepted');
}

function conflict(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(isRaError(err, 'RA_ERR_PLUGIN_CONFLICT'), `expected RA_ERR_PLUGIN_CONFLICT, got ${String(err)}`);
    return err.message;
  }
  assert.fail('the conflict was accepted');
}

/** A section as a third-party plugin would write it: one top-level key with a path to resolve. */
const archiveSection = defineConfigSection({
  plugin: 'acme-archive',
  key: 'archive',
  scope: 'root',
  schema: z.strictObject({ dir: z.string().min(1), every: duration.default(60_000) }).optional(),
  resolvePaths: (a, resolve) => (a === undefined ? a : { ...a, dir: resolve(a.dir) }),
});

/** And one in each store, with defaults. */
const replicaSection = defineConfigSection({
  plugin: 'acme-replica',
  key: 'replica',
  scope: 'store',
  schema: z.strictObject({ lag: duration.default(5000) }).prefault({}),
});

describe('config sections contributed by plugins', () => {
  it('the built-in composition holds each plugin section, in the JSON Schema and when validating', () => {
    const schema = configJsonSchema() as { properties: Record<string, { items?: { properties?: Record<string, unknown> } }> };
    assert.deepEqual(Object.keys(schema.properties), ['agent', 'stores', 'processes', 'healing', 'health', 'cluster', 'plugins']);
    assert.deepEqual(Object.keys(schema.properties.stores!.items!.properties!), ['id', 'engine', 'path', 'scrub', 'snapshots', 'replication', 'spare']);
    const cfg = parseConfigText('stores: [{ id: a, path: ./a, snapshots: { dir: ./snaps } }]\nhealth: { paths: [./logs] }\n', SRC, {});
    assert.equal(cfg.stores[0]!.snapshots!.dir, '/etc/ra/snaps', 'the snapshot section resolves its own path');
    assert.equal(cfg.stores[0]!.scrub.rate, 50 * 2 ** 20, 'the scrub section applies its defaults');
    assert.deepEqual(cfg.health.paths, ['/etc/ra/logs'], 'the health section resolves its own paths');
    assert.equal(cfg.healing.learnAfter, 5);
    assert.ok(parseConfigText(SAMPLE_CONFIG, SRC, {}).health.enabled);
  });

  it('errors inside a plugin section name the whole key path', () => {
    const msg = configError(() => parseConfigText('stores:\n  - { id: a, path: ./a }\n  - { id: b, path: ./b, snapshots: { dir: ./s, every: often } }\n', SRC, {}));
    assert.match(msg, /stores\[1\]\.snapshots\.every: expected a duration/);
    assert.match(configError(() => parseConfigText('stores: [{ id: a, path: ./a, snapshots: {} }]\n', SRC, {})), /stores\[0\]\.snapshots\.dir/);
    assert.match(configError(() => parseConfigText('health: { interval: 10ms }\n', SRC, {})), /health\.interval: expected an interval of 50ms or more/);
  });

  it('an unknown section, or one whose plugin is not loaded, is refused with its key path', () => {
    const typo = configError(() => parseConfigText('healht: {}\n', SRC, {}));
    assert.match(typo, /\(top level\): unknown key "healht" \(sections: agent, stores, processes, healing, health, cluster, plugins;/);
    assert.match(configError(() => parseConfigText('stores: [{ id: a, path: ./a, snapshot: { dir: ./s } }]\n', SRC, {})), /stores\[0\]: unknown key "snapshot" \(a store has: id, engine, path, scrub, snapshots, replication, spare;/);
    // The core alone knows no plugin's section.
    const core = createConfigLoader([]);
    const health = configError(() => core.parseConfigText('health: { interval: 1s }\n', SRC, {}));
    assert.match(health, /\(top level\): unknown key "health" \(sections: agent, stores, processes, plugins; a plugin's section is known only when its plugin is loaded\)/);
    assert.match(configError(() => core.parseConfigText('stores: [{ id: a, path: ./a, snapshots: { dir: ./s } }]\n', SRC, {})), /stores\[0\]: unknown key "snapshots"/);
    const bare = core.parseConfigText('stores: [{ id: a, path: ./a }]\n', SRC, {});
    assert.deepEqual(bare.stores, [{ id: 'a', engine: 'pagestore', path: '/etc/ra/a' }]);
    assert.equal('health' in bare, false);
  });

  it('composes a third-party section like a built-in one: validated, defaulted, paths resolved, in the JSON Schema', () => {
    const loader = createConfigLoader([...builtinConfigSections, archiveSection, replicaSection]);
    const cfg = loader.parseConfigText('archive: { dir: ../arch }\nstores: [{ id: a, path: ./a }]\n', SRC, {}) as unknown as {
      archive: { dir: string; every: number };
      stores: Array<{ replica: { lag: number } }>;
    };
    assert.deepEqual(cfg.archive, { dir: '/etc/arch', every: 60_000 });
    assert.equal(cfg.stores[0]!.replica.lag, 5000);
    assert.match(configError(() => loader.parseConfigText('stores: [{ id: a, path: ./a, replica: { lag: soon } }]\n', SRC, {})), /stores\[0\]\.replica\.lag: expected a duration/);
    assert.match(configError(() => loader.parseConfigText('archive: { dir: ./x, evry: 1s }\n', SRC, {})), /archive: unknown key "evry"/);
    const schema = loader.configJsonSchema() as { properties: Record<string, { items?: { properties?: Record<string, unknown> } }> };
    assert.ok(schema.properties.archive);
    assert.ok(schema.properties.stores!.items!.properties!.replica);
    // Left out, an optional section stays out.
    assert.equal('archive' in loader.parseConfigText('', SRC, {}), false);
  });

  it('refuses a section two plugins claim, or one that claims a key of the core', () => {
    const twin = defineConfigSection({ ...archiveSection, plugin: 'other-archive' });
    assert.match(conflict(() => composeConfigSchema([archiveSection, twin])), /plugins "acme-archive" and "other-archive" both contribute the config section "archive"/);
    const snapshotsTwin: ConfigSection = defineConfigSection({ plugin: 'acme-snapshots', key: 'snapshots', scope: 'store', schema: z.strictObject({}).optional() });
    assert.match(conflict(() => createConfigLoader([...builtinConfigSections, snapshotsTwin])), /plugins "snapshot-manager" and "acme-snapshots" both contribute the config section "stores\[\]\.snapshots"/);
    // The same key at another scope is another section.
    assert.ok(composeConfigSchema([archiveSection, defineConfigSection({ ...archiveSection, plugin: 'other-archive', scope: 'store' })]));
    assert.match(conflict(() => composeConfigSchema([defineConfigSection({ ...archiveSection, key: 'agent' })])), /"agent", which is the core's own/);
    assert.match(conflict(() => composeConfigSchema([defineConfigSection({ ...replicaSection, key: 'path' })])), /"stores\[\]\.path", which is the core's own/);
  });

  it('refuses a malformed section where it is declared', () => {
    assert.throws(() => defineConfigSection({ ...archiveSection, key: 'Archive' }), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && /key must be a camelCase name/.test(err.message));
    assert.throws(() => defineConfigSection({ ...archiveSection, scope: 'global' as 'root' }), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && /scope must be "root" or "store"/.test(err.message));
    assert.throws(() => defineConfigSection({ ...archiveSection, schema: {} as z.ZodType }), (err: unknown) => isRaError(err, 'RA_ERR_PLUGIN_LOAD') && /schema must be a zod schema/.test(err.message));
  });

  it('the light list of built-in sections is the one the built-in plugins declare', () => {
    const declared = builtinPlugins.flatMap((p) => p.config ?? []);
    assert.deepEqual(new Set(builtinConfigSections), new Set(declared));
    for (const p of builtinPlugins) for (const s of p.config ?? []) assert.equal(s.plugin, p.id, `${p.id} declares the section ${s.key} as its own`);
  });
});

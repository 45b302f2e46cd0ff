// stores[].replication: the schema's rules and defaults, and the secret's (secret.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { replicationSection, type PrimaryConfig } from '../../../plugins/replication/configSection.js';
import { readSecret } from '../../../plugins/replication/secret.js';

const parse = (v: unknown) => replicationSection.schema.safeParse(v);

describe('replication config', () => {
  it('takes a primary with its defaults: async, block on sync timeout', () => {
    const r = parse({ role: 'primary', listen: '127.0.0.1:7400', secret: 'sixteen-bytes-ok' });
    assert.ok(r.success, JSON.stringify(r.error?.issues));
    const p = r.data as PrimaryConfig;
    assert.deepEqual({ mode: p.mode, onSyncTimeout: p.onSyncTimeout, syncReplicas: p.syncReplicas, syncTimeoutMs: p.syncTimeoutMs }, { mode: 'async', onSyncTimeout: 'block', syncReplicas: 1, syncTimeoutMs: 10_000 });
  });

  it('refuses a short secret, both secret and secretFile, neither, a bad role or field', () => {
    for (const bad of [
      { role: 'primary', listen: '127.0.0.1:7400', secret: 'too-short' },
      { role: 'replica', primary: '127.0.0.1:7400', secret: 'sixteen-bytes-ok', secretFile: '/x' },
      { role: 'replica', primary: '127.0.0.1:7400' },
      { role: 'standby', primary: '127.0.0.1:7400', secret: 'sixteen-bytes-ok' },
      { role: 'replica', primary: '127.0.0.1:7400', secret: 'sixteen-bytes-ok', listen: '127.0.0.1:1' },
      { role: 'primary', listen: '127.0.0.1:7400', secret: 'sixteen-bytes-ok', onSyncTimeout: 'wait' },
    ]) {
      assert.equal(parse(bad).success, false, JSON.stringify(bad));
    }
  });

  it('reads a secretFile (trailing newline dropped), refuses a short one without showing it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-repl-secret-'));
    writeFileSync(path.join(dir, 'good'), 'a-secret-of-enough-bytes\n');
    writeFileSync(path.join(dir, 'short'), 'shortsecret\n');
    assert.equal(readSecret('s', { secretFile: path.join(dir, 'good') }), 'a-secret-of-enough-bytes');
    assert.throws(() => readSecret('s', { secretFile: path.join(dir, 'short') }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_SECRET') && !e.message.includes('shortsecret'));
    assert.throws(() => readSecret('s', { secretFile: path.join(dir, 'missing') }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_SECRET'));
  });
});

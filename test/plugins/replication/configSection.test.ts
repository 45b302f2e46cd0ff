// stores[].replication: the schema's rules and defaults, and the secret's (secret.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isRaError } from '../../../core/errors.js';
import { replicationSection, type PrimaryConfig } from '../../../plugins/replication/configSection.js';
import { readSecret } from '../../../plugins/replication/secret.js';
import { primarySettings } from '../../../plugins/replication/primarySettings.js';
import { parseReplicationConfig } from '../../../plugins/pagestore/replicationConfig.js';

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

  it('member keepDiverged: 2 by default; a whole number of at least 1, else refused saying so', () => {
    const member = { role: 'member', listen: '127.0.0.1:7401', secret: 'sixteen-bytes-ok' };
    const d = parse(member);
    assert.ok(d.success, JSON.stringify(d.error?.issues));
    assert.equal((d.data as { keepDiverged: number }).keepDiverged, 2);
    const five = parse({ ...member, keepDiverged: 5 });
    assert.equal((five.data as { keepDiverged: number } | undefined)?.keepDiverged, 5);
    for (const bad of [0, -1, 1.5, 'two', null]) {
      const r = parse({ ...member, keepDiverged: bad });
      assert.equal(r.success, false, JSON.stringify(bad));
      assert.match(JSON.stringify(r.error!.issues), /keepDiverged must be a whole number, at least 1/, JSON.stringify(bad));
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

  it('refuses what the owner would refuse (the store would not open): syncTimeoutMs not whole ms from 1 ms to 24 h', () => {
    const base = { role: 'primary', listen: '127.0.0.1:7400', secret: 'sixteen-bytes-ok', mode: 'sync' };
    for (const v of [0, '0s', '1.5ms', '2d', 0.5, 86_400_001]) {
      const r = parse({ ...base, syncTimeoutMs: v });
      assert.equal(r.success, false, `syncTimeoutMs ${JSON.stringify(v)}`);
      assert.match(JSON.stringify(r.error!.issues), /syncTimeoutMs must be a whole number of milliseconds from 1ms to 24h/);
    }
    // What it takes, the owner takes too (what the agent writes for it: replication.json).
    for (const v of [1, '1ms', '250ms', '24h', 86_400_000]) {
      const r = parse({ ...base, syncTimeoutMs: v });
      assert.ok(r.success, `syncTimeoutMs ${JSON.stringify(v)}: ${JSON.stringify(r.error?.issues)}`);
      const owner = parseReplicationConfig(JSON.stringify(primarySettings(r.data as PrimaryConfig, base.secret)));
      assert.equal(owner.role === 'primary' && owner.syncTimeoutMs, (r.data as PrimaryConfig).syncTimeoutMs);
    }
  });

  it('refuses port 0 where something is connected to (a replica\'s primary, a member\'s advertise), takes it to listen on', () => {
    const secret = 'sixteen-bytes-ok';
    const refused = parse({ role: 'replica', primary: '10.0.0.1:0', secret });
    assert.equal(refused.success, false);
    assert.match(JSON.stringify(refused.error!.issues), /port from 1 to 65535/);
    assert.equal(parse({ role: 'replica', primary: '10.0.0.1:65536', secret }).success, false);
    assert.equal(parse({ role: 'member', listen: '0.0.0.0:7401', advertise: '10.0.0.1:0', secret }).success, false);
    assert.equal(parse({ role: 'primary', listen: '127.0.0.1:70000', secret }).success, false);
    assert.ok(parse({ role: 'replica', primary: '10.0.0.1:7400', secret }).success);
    assert.ok(parse({ role: 'primary', listen: '127.0.0.1:0', secret }).success);
  });

  it('counts an inline secret in UTF-8 bytes, as the owner does, and refuses one of only whitespace', () => {
    const at = (secret: string) => parse({ role: 'replica', primary: '10.0.0.1:7400', secret });
    assert.equal(Buffer.byteLength('éééééééé'), 16);
    assert.ok(at('éééééééé').success, '8 characters, 16 bytes: enough');
    assert.equal(at('ééééééé').success, false, '14 bytes');
    assert.equal(at('a'.repeat(15)).success, false, '15 bytes');
    const blank = at(' '.repeat(16));
    assert.equal(blank.success, false, '16 spaces');
    assert.match(JSON.stringify(blank.error!.issues), /only whitespace/);
    assert.equal(at('\t \n'.repeat(8)).success, false, 'whitespace of any kind');
  });

  it('refuses a secretFile of only whitespace, without showing it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-repl-secret-'));
    writeFileSync(path.join(dir, 'blank'), ' '.repeat(20) + '\n');
    assert.throws(() => readSecret('s', { secretFile: path.join(dir, 'blank') }), (e: unknown) => isRaError(e, 'RA_ERR_REPL_SECRET') && /only whitespace/.test(e.message));
  });
});

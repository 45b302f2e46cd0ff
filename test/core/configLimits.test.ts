import assert from 'node:assert/strict';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { MAX_CONFIG_BYTES, parseConfigText } from '../../cli/config.js';
import { isRaError } from '../../core/errors.js';
import { cli } from '../helpers/cli.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-cfglimits-'));

/** "Billion laughs": nine levels of nine aliases each, 9^9 strings once expanded. */
const ALIAS_BOMB = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
  .concat('bcdefghi'.split('').map((c, i) => {
    const prev = 'abcdefghi'[i]!;
    return `${c}: &${c} [${Array(9).fill(`*${prev}`).join(',')}]`;
  }))
  .join('\n') + '\n';

/** Runs a CLI command on a config that must be refused quickly, as a config error naming it. */
function assertRefused(args: string[], file: string, what: RegExp): void {
  const t0 = performance.now();
  const r = cli(args);
  const ms = performance.now() - t0;
  assert.equal(r.status, 2, `${args.join(' ')}: exit ${r.status}, stderr: ${r.stderr.slice(0, 2000)}`);
  assert.ok(r.stderr.includes(file), `names the file: ${r.stderr.slice(0, 2000)}`);
  assert.match(r.stderr, /RA_ERR_CONFIG/);
  assert.match(r.stderr, what);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.ok(ms < 10_000, `${args.join(' ')} took ${Math.round(ms)} ms`);
}

describe('config resource limits', () => {
  it('refuses a YAML alias bomb ("billion laughs") as a bad config naming the file: config check and run', () => {
    const file = path.join(tmp(), 'bomb.yaml');
    writeFileSync(file, ALIAS_BOMB);
    assertRefused(['config', 'check', file], file, /alias/);
    assertRefused(['run', '--config', file], file, /alias/);
  });

  it(`refuses a config file over ${MAX_CONFIG_BYTES} bytes before reading it: config check and run`, () => {
    const file = path.join(tmp(), 'huge.yaml');
    writeFileSync(file, 'agent: { workers: 1 }\n');
    truncateSync(file, 200 * 2 ** 20); // 200 MiB, sparse: the size alone must be enough to refuse it
    assertRefused(['config', 'check', file], file, new RegExp(`${200 * 2 ** 20} bytes.*at most ${MAX_CONFIG_BYTES}`));
    assertRefused(['run', '--config', file], file, /at most/);
  });

  it('refuses a config of tens of thousands of keys under the byte cap fast, and keeps the error short', () => {
    // The YAML parser's duplicate-key check is quadratic in one mapping's keys: 60 000 took a minute.
    const many = path.join(tmp(), 'many.yaml');
    writeFileSync(many, Array.from({ length: 60_000 }, (_, i) => `k${i}: v\n`).join(''));
    assertRefused(['config', 'check', many], many, /60001 lines; a config may have at most 10000/);
    const unknown = path.join(tmp(), 'unknown.yaml');
    writeFileSync(unknown, Array.from({ length: 5000 }, (_, i) => `k${i}: v\n`).join(''));
    const r = cli(['config', 'check', unknown]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.length < 5000, `a short error (${r.stderr.length} characters)`);
    assert.match(r.stderr, /unknown keys "k0", "k1".*more characters/);
  });

  it('refuses an endless file that is not a regular file (no size to check) once it passes the cap', () => {
    assertRefused(['config', 'check', '/dev/zero'], '/dev/zero', /at most/);
  });

  it('refuses flow collections nested deeper than a config ever needs, quickly', () => {
    const file = path.join(tmp(), 'deep.yaml');
    writeFileSync(file, `a: ${'['.repeat(400_000)}${']'.repeat(400_000)}\n`);
    assertRefused(['config', 'check', file], file, /nested/);
  });

  it('parseConfigText applies the same limits to text given directly', () => {
    const refused = (text: string, what: RegExp) =>
      assert.throws(() => parseConfigText(text, '/etc/ra/x.yaml', {}), (e: unknown) => isRaError(e, 'RA_ERR_CONFIG') && e.message.includes('/etc/ra/x.yaml') && what.test(e.message));
    refused(ALIAS_BOMB, /alias/);
    refused('a: ' + 'x'.repeat(MAX_CONFIG_BYTES), /at most/);
    // A config that uses a few anchors and aliases, as people do to share settings, is fine.
    const ok = parseConfigText('processes:\n  - { id: a, command: a, restart: &r { policy: always } }\n  - { id: b, command: b, restart: *r }\n', '/etc/ra/x.yaml', {});
    assert.equal(ok.processes[1]!.restart.policy, 'always');
  });
});

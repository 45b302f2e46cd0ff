import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseConfigText, validateConfig } from '../../cli/config.js';
import { describeError, isRaError } from '../../core/errors.js';
import { repoRoot } from '../helpers/paths.js';

const SRC = '/etc/ra/agent.yaml';
const TOKEN = 'a-token-of-24-characters';

function configError(text: string, env: NodeJS.ProcessEnv): string {
  try {
    parseConfigText(text, SRC, env);
  } catch (err) {
    assert.ok(isRaError(err, 'RA_ERR_CONFIG'), `expected RA_ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail('config was accepted');
}

/** The first YAML example under "## Configuration" in README.md, verbatim. */
function readmeConfigExample(): string {
  const readme = readFileSync(path.join(repoRoot(), 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration\n'));
  const m = /```yaml\n([\s\S]*?)```/.exec(section);
  assert.ok(m, 'README.md has a YAML example under "## Configuration"');
  return m[1]!;
}

describe('config: ${ENV} substitution', () => {
  it("parses the README's config example verbatim, a ${VAR} inside a flow map included", () => {
    const text = readmeConfigExample();
    assert.match(text, /\{[^}\n]*\$\{RECOVERY_AGENT_TOKEN\}[^\n]*\}/, 'the example still puts ${RECOVERY_AGENT_TOKEN} in a flow map');
    const cfg = parseConfigText(text, path.join(repoRoot(), 'agent.yaml'), { RECOVERY_AGENT_TOKEN: TOKEN });
    assert.equal(cfg.agent.http.token, TOKEN);
    assert.equal(cfg.agent.http.listen, '127.0.0.1:9464');
    assert.equal(cfg.agent.workers, 2);
    assert.equal(cfg.stores[0]!.id, 'demo');
    assert.equal(cfg.plugins[0]!.module, path.join(repoRoot(), 'examples', 'plugins', 'notify-file.js'));
  });

  it('fills numbers, booleans and durations from variables where the schema expects them, in block and flow style', () => {
    const cfg = parseConfigText(
      'agent:\n  workers: ${W}\n  maxConcurrentRecoveries: ${MCR:-7}\n  rto: { P0: ${P0}, P1: ${P1} }\n  http: { enabled: ${HTTP}, listen: "127.0.0.1:${PORT}" }\nhealth: { prediction: { guard: ${G} } }\n',
      SRC,
      { W: '3', P0: '1500', P1: '2m', HTTP: 'false', PORT: '9999', G: '0.25' },
    );
    assert.equal(cfg.agent.workers, 3);
    assert.equal(cfg.agent.maxConcurrentRecoveries, 7);
    assert.equal(cfg.agent.rto.P0, 1500);
    assert.equal(cfg.agent.rto.P1, 120_000);
    assert.equal(cfg.agent.http.enabled, false);
    assert.equal(cfg.agent.http.listen, '127.0.0.1:9999');
    assert.equal(cfg.health.prediction.guard, 0.25);
  });

  it('keeps text where the schema wants text, even text that looks like a number', () => {
    const digits = '1234567890123456789';
    const cfg = parseConfigText('agent: { http: { token: ${T} } }\nprocesses:\n  - { id: p, command: ${CMD}, env: { N: ${N} } }\n', SRC, { T: digits, CMD: '42', N: '5' });
    assert.equal(cfg.agent.http.token, digits);
    assert.equal(cfg.processes[0]!.command, '42');
    assert.equal(cfg.processes[0]!.env.N, '5');
  });

  it('never lets a value inject YAML structure: it stays one scalar, and is refused where a number is expected', () => {
    for (const value of ['{a: 1}', '[1, 2]', 'x\nfoo: bar', 'a, workers: 9', '*alias', '&anchor x', '!!int 5', '"3"', '# 4']) {
      const block = parseConfigText('agent:\n  dataDir: ${D}\n  workers: 1\n', SRC, { D: value });
      assert.equal(block.agent.dataDir, path.resolve('/etc/ra', value), `block: ${JSON.stringify(value)}`);
      assert.equal(block.agent.workers, 1);
      const flow = parseConfigText('agent: { dataDir: ${D}, workers: 1 }\n', SRC, { D: value });
      assert.equal(flow.agent.dataDir, path.resolve('/etc/ra', value), `flow: ${JSON.stringify(value)}`);
      assert.equal(flow.agent.workers, 1);
      const msg = configError('agent: { workers: ${W} }\n', { W: value });
      assert.match(msg, /agent\.workers: .*expected number/);
      assert.ok(msg.includes(JSON.stringify(value)), `names the value: ${msg}`);
      assert.match(msg, /from \$\{W\}/, 'names the variable');
    }
  });

  it('names the key, the value and the variable when a number does not fit', () => {
    const msg = configError('agent: { workers: ${W} }\n', { W: '0' });
    assert.match(msg, /agent\.workers: .*(>=1|at least|too small).*\(got 0, from \$\{W\}\)/i);
    assert.match(configError('agent: { workers: ${W} }\n', { W: 'two' }), /agent\.workers: .*expected number.*\(got "two", from \$\{W\}\)/);
    // Where the key wants text, the error is about the text, not about a number made of it.
    assert.match(configError('agent: { http: { listen: ${L} } }\n', { L: '8080' }), /agent\.http\.listen: expected host:port.*\(got "8080", from \$\{L\}\)/);
  });

  it('never echoes a credential or an environment value in an error: only its size', () => {
    const secret = 'prod-secret-9f8';
    const msg = configError('agent: { http: { token: ${T} } }\n', { T: secret });
    assert.match(msg, /agent\.http\.token: .*\(got a string of 15 characters, not shown, from \$\{T\}\)/);
    assert.doesNotMatch(msg, /prod-secret/);
    const inline = configError('agent: { http: { token: 12345 } }\n', {});
    assert.match(inline, /agent\.http\.token: .*\(got a value of type number, not shown\)/);
    const env = configError('processes: [{ id: p, command: x, env: { DB_PASS: { nested: hunter2 } } }]\n', {});
    assert.match(env, /processes\[0\]\.env\.DB_PASS: .*not shown/);
    assert.doesNotMatch(env, /hunter2/);
  });

  it('leaves keys, comments and escaped references alone; a missing variable names its key', () => {
    const cfg = parseConfigText('# ${NOT_SET} in a comment needs no variable\nagent: { dataDir: "$${HOME}/x", http: { token: "${T}" } }\n', SRC, { T: TOKEN });
    assert.equal(cfg.agent.dataDir, '/etc/ra/${HOME}/x');
    assert.equal(cfg.agent.http.token, TOKEN);
    assert.match(configError('agent: { ${K}: 1 }\n', { K: 'workers' }), /agent: unknown key "\$\{K\}"/);
    assert.match(configError('agent: { http: { token: ${NOPE} } }\n', {}), /agent\.http\.token: environment variable NOPE is not set/);
  });

  it('shows a YAML syntax error with the text as written, in the error and in its cause', () => {
    assert.match(configError('agent: { dataDir: ${D}\n', { D: 'x' }), /\$\{D\}/);
    try {
      parseConfigText('agent: { dataDir: ${D}\n', SRC, { D: 'x' });
      assert.fail('accepted');
    } catch (err) {
      const all = describeError(err);
      assert.match(all, /caused by: .*/);
      assert.doesNotMatch(all, /[\uE000-\uF8FF]/u, 'no marker characters');
      assert.equal(all.match(/\$\{D\}/g)?.length, 2, all);
    }
  });

  it('validateConfig substitutes in an object given directly, once (a value holding ${…} is not expanded again)', () => {
    const cfg = validateConfig({ agent: { workers: '${W}', dataDir: '${D}' } }, SRC, { W: '2', D: '/x/${W}' });
    assert.equal(cfg.agent.workers, 2);
    assert.equal(cfg.agent.dataDir, '/x/${W}');
  });
});

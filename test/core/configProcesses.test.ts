import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { configJsonSchema, parseConfigText, SAMPLE_CONFIG } from '../../cli/config.js';
import { isRaError } from '../../core/errors.js';

const SRC = '/etc/ra/agent.yaml';

function configError(text: string): string {
  try {
    parseConfigText(text, SRC, {});
  } catch (err) {
    assert.ok(isRaError(err, 'RA_ERR_CONFIG'), `expected RA_ERR_CONFIG, got ${String(err)}`);
    return err.message;
  }
  assert.fail('config was accepted');
}

describe('config: processes', () => {
  it('applies defaults, parses durations and resolves cwd and pidFile against the config file', () => {
    const cfg = parseConfigText(
      `stores: [{ id: demo, path: ./store }]
processes:
  - id: writer
    command: node
    args: [dist/examples/demo-writer.js, --store, ./store]
    env: { PORT: 8080, DEBUG: true, NAME: w }
    store: demo
    heartbeat: { udp: 127.0.0.1:9465, timeout: 5s }
  - id: legacy
    pidFile: ./run/legacy.pid
    heartbeat: { http: http://127.0.0.1:8080/healthz, interval: 500ms, timeout: 3s }
    restart: { policy: never }
  - { id: tool, command: /usr/bin/tool, cwd: ../work, restart: { policy: always, backoff: { initial: 1s, max: 1m, resetAfter: 5m }, limit: { burst: 10, within: 10m } }, stopGrace: 2s }
`,
      SRC,
      {},
    );
    const [writer, legacy, tool] = cfg.processes;
    assert.equal(writer!.cwd, '/etc/ra', 'cwd defaults to the config directory');
    assert.deepEqual(writer!.args, ['dist/examples/demo-writer.js', '--store', './store'], 'args stay as written');
    assert.deepEqual(writer!.env, { PORT: '8080', DEBUG: 'true', NAME: 'w' });
    assert.equal(writer!.store, 'demo');
    assert.deepEqual(writer!.heartbeat, { udp: '127.0.0.1:9465', interval: 1000, timeout: 5000 });
    assert.deepEqual(writer!.restart, { policy: 'on-failure', backoff: { initial: 100, max: 15_000, resetAfter: 30_000 }, limit: { burst: 5, within: 60_000 } });
    assert.equal(writer!.stopGrace, 5000);
    assert.equal(legacy!.pidFile, '/etc/ra/run/legacy.pid');
    assert.equal(legacy!.cwd, undefined);
    assert.equal(legacy!.command, undefined);
    assert.deepEqual(legacy!.heartbeat, { http: 'http://127.0.0.1:8080/healthz', interval: 500, timeout: 3000 });
    assert.equal(legacy!.restart.policy, 'never');
    assert.equal(tool!.cwd, '/etc/work');
    assert.deepEqual(tool!.restart, { policy: 'always', backoff: { initial: 1000, max: 60_000, resetAfter: 300_000 }, limit: { burst: 10, within: 600_000 } });
    assert.equal(tool!.stopGrace, 2000);
    assert.deepEqual(parseConfigText('', SRC, {}).processes, [], 'no processes by default');
  });

  it('wants exactly one of command and pidFile, naming the key', () => {
    assert.match(configError('processes: [{ id: p }]'), /processes\[0\]\.command: expected exactly one of command .* or pidFile .*; got neither/);
    assert.match(configError('processes: [{ id: p, command: x, pidFile: y }]'), /processes\[0\]\.pidFile: expected exactly one of .*; got both/);
    assert.match(configError('processes: [{ id: p, pidFile: y, args: [a] }]'), /processes\[0\]\.args: args applies only to a process the agent starts/);
    assert.match(configError('processes: [{ id: p, pidFile: y, cwd: /tmp }]'), /processes\[0\]\.cwd: cwd applies only/);
  });

  it('checks that a process owns an existing store, alone, and that ids are unique', () => {
    const missing = configError('stores: [{ id: demo, path: x }]\nprocesses: [{ id: p, command: x, store: dmeo }]');
    assert.match(missing, /processes\[0\]\.store: expected the id of a store in stores\[\] \(have: demo\) \(got "dmeo"\)/);
    assert.match(configError('processes: [{ id: p, command: x, store: demo }]'), /processes\[0\]\.store: .*\(have: none\)/);
    assert.match(
      configError('stores: [{ id: demo, path: x }]\nprocesses: [{ id: a, command: x, store: demo }, { id: b, command: y, store: demo }]'),
      /processes\[1\]\.store: store "demo" is already owned by process "a"; one writer per store/,
    );
    assert.match(configError('processes: [{ id: a, command: x }, { id: a, command: y }]'), /processes\[1\]\.id: expected process ids to be unique \("a" is also processes\[0\]\.id\)/);
    assert.match(configError('processes: [{ id: "Bad Id", command: x }]'), /processes\[0\]\.id: expected an id/);
  });

  it('validates heartbeats and restart settings with the key path and the bad value', () => {
    assert.match(configError('processes: [{ id: p, command: x, heartbeat: { timeout: 5s } }]'), /processes\[0\]\.heartbeat: expected at least one of udp, http or tcp/);
    assert.match(configError('processes: [{ id: p, command: x, heartbeat: { udp: localhost } }]'), /processes\[0\]\.heartbeat\.udp: expected host:port.*\(got "localhost"\)/);
    assert.match(configError('processes: [{ id: p, command: x, heartbeat: { http: "ftp://h/x" } }]'), /processes\[0\]\.heartbeat\.http: expected an http:\/\/ or https:\/\/ URL \(got "ftp:\/\/h\/x"\)/);
    assert.match(configError('processes: [{ id: p, command: x, heartbeat: { tcp: "h:1", interval: 5s, timeout: 2s } }]'), /processes\[0\]\.heartbeat\.interval: expected .*a timeout longer than the interval \(interval 5000 ms, timeout 2000 ms\)/);
    assert.match(configError('processes: [{ id: p, command: x, heartbeat: { udp: "h:1", timeout: soon } }]'), /processes\[0\]\.heartbeat\.timeout: expected a duration .*\(got "soon"\)/);
    assert.match(configError('processes: [{ id: p, command: x, heartbeat: { udp: "h:1", token: "a b" } }]'), /processes\[0\]\.heartbeat\.token: expected 8 to 256 printable/);
    assert.match(configError('processes: [{ id: p, pidFile: x, heartbeat: { udp: "h:1" } }]'), /processes\[0\]\.heartbeat\.token: expected a token for the udp heartbeat of an attached process/);
    assert.match(configError('processes: [{ id: p, command: x, restart: { policy: sometimes } }]'), /processes\[0\]\.restart\.policy: .*"on-failure"\|"always"\|"never".*\(got "sometimes"\)/);
    assert.match(configError('processes: [{ id: p, command: x, restart: { backoff: { initial: 2s, max: 1s } } }]'), /processes\[0\]\.restart\.backoff\.max: expected backoff\.max \(1000 ms\) to be at least backoff\.initial \(2000 ms\)/);
    assert.match(configError('processes: [{ id: p, command: x, restart: { limit: { burst: 0 } } }]'), /processes\[0\]\.restart\.limit\.burst/);
    assert.match(configError('processes: [{ id: p, command: x, restrat: {} }]'), /processes\[0\]: unknown key "restrat"/);
    assert.match(configError('processes: [{ id: p, command: x, env: { "1BAD": x } }]'), /processes\[0\]\.env\.1BAD: .*\(got "1BAD"\)/);
  });

  it('the sample config validates with its processes example uncommented, and the JSON Schema lists processes', () => {
    // The commented example under `processes: []`, uncommented, with the store it names.
    const lines = SAMPLE_CONFIG.split('\n');
    const from = lines.indexOf('processes: []') + 1;
    const example = lines.slice(from, lines.indexOf('', from)).map((l) => l.slice(1)).filter((l) => !/^\s*#/.test(l));
    const uncommented = `stores: [{ id: demo, path: ./store }]\nprocesses:\n${example.join('\n')}\n`;
    const cfg = parseConfigText(uncommented, SRC, {});
    assert.deepEqual(cfg.processes.map((p) => p.id), ['demo-writer', 'legacy-app']);
    assert.equal(cfg.processes[0]!.store, 'demo');
    assert.equal(cfg.processes[1]!.pidFile, '/run/legacy-app.pid');
    const schema = configJsonSchema() as { properties: Record<string, { items?: { properties?: Record<string, unknown> } }> };
    const item = schema.properties.processes?.items?.properties;
    assert.ok(item?.command && item.pidFile && item.heartbeat && item.restart, 'processes[] items are described');
  });
});

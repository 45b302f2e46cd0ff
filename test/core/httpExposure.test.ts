// The HTTP API on a non-loopback address: refused without a token (config validation, agent
// start, `recovery-agent run` exiting 2), unless agent.http.allowUnauthenticatedRemote says so.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import type { AgentConfig } from '../../core/config/schema.js';
import { validateConfig } from '../../cli/config.js';
import { isRaError } from '../../core/errors.js';
import { exposureProblem, isLoopbackHost } from '../../core/http/exposure.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { cli } from '../helpers/cli.js';
import { captureLogger } from '../helpers/logCapture.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ra-exposure-'));
const configWith = (dir: string, http: Record<string, unknown>): AgentConfig =>
  validateConfig({ agent: { dataDir: path.join(dir, 'agent'), workers: 1, http } }, path.join(dir, 'agent.yaml'), {});

describe('http exposure', () => {
  it('knows loopback addresses from the others', () => {
    for (const h of ['127.0.0.1', '127.8.9.10', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost', 'LOCALHOST']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.20', '128.0.0.1', 'fe80::1', 'myhost', 'localhost.example.com', '']) assert.equal(isLoopbackHost(h), false, h);
    const http = { enabled: true, listen: 'localhost:9464', allowUnauthenticatedRemote: false };
    assert.equal(exposureProblem(http), null);
    assert.equal(exposureProblem(http, '127.0.0.1:9464'), null);
    assert.match(exposureProblem(http, '10.1.2.3:9464') ?? '', /^not a loopback address, and agent\.http\.token is not set/);
    assert.equal(exposureProblem({ ...http, listen: '[::]:1', token: 'x'.repeat(16) }), null);
  });

  it('config validation refuses a non-loopback listen without a token, naming the key and the way out', () => {
    const dir = tmp();
    for (const listen of ['0.0.0.0:9464', '[::]:9464', '10.0.0.1:9464', 'myhost:9464']) {
      assert.throws(
        () => configWith(dir, { listen }),
        (e: unknown) =>
          isRaError(e, 'RA_ERR_CONFIG') &&
          e.message.includes(`agent.http.listen: not a loopback address, and agent.http.token is not set`) &&
          e.message.includes('agent.http.allowUnauthenticatedRemote: true') &&
          e.message.includes(`(got "${listen}")`),
        listen,
      );
    }
    for (const listen of ['127.0.0.1:9464', '[::1]:9464', 'localhost:9464']) assert.equal(configWith(dir, { listen }).agent.http.listen, listen);
    assert.equal(configWith(dir, { listen: '0.0.0.0:9464', token: 'a-token-of-16-chars' }).agent.http.allowUnauthenticatedRemote, false);
    assert.equal(configWith(dir, { listen: '0.0.0.0:9464', allowUnauthenticatedRemote: true }).agent.http.allowUnauthenticatedRemote, true);
    assert.equal(configWith(dir, { listen: '0.0.0.0:9464', enabled: false }).agent.http.enabled, false);
  });

  it('recovery-agent run and config check exit 2 with the reason before starting anything', () => {
    const dir = tmp();
    const cfg = path.join(dir, 'agent.yaml');
    writeFileSync(cfg, "agent: { dataDir: ./state, workers: 1, http: { listen: '0.0.0.0:0' } }\n");
    for (const args of [['run', '--config', cfg], ['config', 'check', cfg]]) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /agent\.http\.listen: not a loopback address, and agent\.http\.token is not set.*\(got "0\.0\.0\.0:0"\)/);
    }
  });

  it('Agent.start refuses a config built in code that skipped validation, and binds nothing', async () => {
    const dir = tmp();
    const valid = configWith(dir, { listen: '127.0.0.1:0' });
    const config = { ...valid, agent: { ...valid.agent, http: { ...valid.agent.http, listen: '0.0.0.0:0' } } };
    const agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await assert.rejects(agent.start(), (e: unknown) => isRaError(e, 'RA_ERR_CONFIG') && /agent\.http\.listen: 0\.0\.0\.0:0 is not a loopback address/.test(e.message));
    assert.equal(agent.httpAddress, null);
    assert.equal(agent.status().state, 'stopped');
  });

  it('with allowUnauthenticatedRemote it serves on all addresses, warns, and still refuses mutating calls', async () => {
    const dir = tmp();
    const logs = captureLogger();
    const agent = new Agent({ config: configWith(dir, { listen: '0.0.0.0:0', allowUnauthenticatedRemote: true }), builtins: builtinPlugins, log: logs.log });
    await agent.start();
    try {
      assert.match(agent.httpAddress!, /^0\.0\.0\.0:\d+$/);
      const base = `http://127.0.0.1:${agent.httpAddress!.split(':')[1]}`;
      assert.equal((await fetch(`${base}/status`)).status, 200);
      assert.equal((await fetch(`${base}/recoveries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 403);
      assert.ok(logs.lines().some((l) => l.level === 40 && /without a token \(agent\.http\.allowUnauthenticatedRemote\)/.test(String(l.msg))), 'a warning says the API is open');
    } finally {
      await agent.stop();
    }
  });
});

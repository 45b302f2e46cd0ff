// POST /recoveries on a store a live writer has open: the writer recovered it when it opened it
// and only it may write it, so nothing is to be done — refused with 409 naming the owner, and
// nothing recorded: no failure, no "recovered", no RTO sample. Once the writer is gone the same
// request is accepted and recovers the store. A real owner: the demo writer, in a child process.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent } from '../../core/agent.js';
import { validateConfig } from '../../cli/config.js';
import { builtinPlugins } from '../../cli/builtins.js';
import { captureLogger } from '../helpers/logCapture.js';
import { repoRoot } from '../helpers/paths.js';
import { tmpStoreDir } from '../helpers/store.js';
import { until } from '../helpers/wait.js';

const TOKEN = 'test-token-0123456789abcdef';
const POST = { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ store: 'live' }) };

describe('POST /recoveries on a store a live process owns', () => {
  let agent: Agent;
  let base: string;
  let writer: ChildProcess;

  before(async () => {
    const store = tmpStoreDir();
    writer = spawn(process.execPath, [path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js'), '--store', store, '--rate', '20', '--pages', '32'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    writer.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    await until(() => out.includes('store open'), 30_000, 'the demo writer to open its store');
    const dir = path.dirname(store);
    const config = validateConfig(
      { agent: { dataDir: path.join(dir, 'agent'), workers: 1, http: { listen: '127.0.0.1:0', token: TOKEN } }, stores: [{ id: 'live', path: store }] },
      path.join(dir, 'agent.yaml'),
      {},
    );
    agent = new Agent({ config, builtins: builtinPlugins, log: captureLogger().log });
    await agent.start();
    base = `http://${agent.httpAddress}`;
  });
  after(async () => {
    writer.kill('SIGKILL');
    await agent.stop();
  });

  it('is refused with 409 naming the owner, and nothing is recorded', async () => {
    const res = await fetch(`${base}/recoveries`, POST);
    assert.equal(res.status, 409);
    const body = (await res.json()) as { error: string; ownerPid: number };
    assert.equal(body.ownerPid, writer.pid);
    assert.match(body.error, new RegExp(`open by live process ${writer.pid}.*no recovery is needed`));
    await agent.orchestrator.idle();
    const stats = agent.orchestrator.snapshot();
    assert.equal(stats.recoveriesSucceeded, 0);
    assert.equal(stats.avgRtoMs, null);
    assert.equal(stats.rtoComplianceRate, null);
    assert.deepEqual(agent.orchestrator.recentRecoveries().filter((r) => r.kind === 'recovery-requested'), []);
    assert.deepEqual(agent.orchestrator.recentFailures().filter((f) => f.kind === 'recovery-requested'), []);
  });

  it('once the owner is gone, the same request is accepted and recovers the store', async () => {
    const exited = new Promise((r) => writer.once('exit', r));
    writer.kill('SIGKILL');
    await exited;
    const res = await fetch(`${base}/recoveries`, POST);
    assert.equal(res.status, 202);
    const { failureId } = (await res.json()) as { failureId: string };
    await until(() => agent.orchestrator.recentRecoveries().some((r) => r.failureId === failureId), 30_000, 'the recovery');
    const r = agent.orchestrator.recentRecoveries().find((x) => x.failureId === failureId)!;
    assert.equal(r.outcome, 'recovered');
    assert.match(r.attempts[0]?.summary ?? '', /^recovered store "live": \d+ transaction\(s\) rolled back/);
  });
});

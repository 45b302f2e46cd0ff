// End to end: a store whose writer creates it only some seconds after it starts. Within
// health.storeGrace nothing is wrong; after it, /health is 503 naming store-missing (an
// escalated P1: no rule can create a store); once the writer has made it, /health is 200 again
// and the failure is `cleared` in /failures — not a recovery, no RTO sample.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface Listed {
  id: string;
  kind: string;
  subject: string;
  evidence: Record<string, unknown>;
  state?: string;
  cleared?: { reason: string };
}

describe('a store its writer creates late, end to end', () => {
  let dir: string;
  let agent: ChildProcess;
  let base: string;
  let log: string;
  const store = () => path.join(dir, 'store');
  const DELAY_S = 6;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ra-late-store-'));
    const writerJs = path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js');
    // The writer sleeps, then makes the store (demo-writer creates a missing store).
    const script = `sleep ${DELAY_S}; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(writerJs)} --store ${JSON.stringify(store())} --rate 50 --pages 64`;
    writeFileSync(
      path.join(dir, 'agent.yaml'),
      `agent: { dataDir: ${JSON.stringify(path.join(dir, 'agent'))}, workers: 1, http: { listen: 127.0.0.1:0 } }
stores: [{ id: late, path: ${JSON.stringify(store())} }]
health: { interval: 200ms, storeGrace: 2s }
processes:
  - id: writer
    command: /bin/sh
    args: ['-c', ${JSON.stringify(script)}]
    store: late
`,
    );
    log = path.join(dir, 'agent.log');
    agent = spawn(process.execPath, [BIN, 'run', '--config', path.join(dir, 'agent.yaml')], { stdio: ['ignore', openSync(log, 'w'), 'inherit'] });
    const ready = await until('the agent to be ready', () => {
      const line = readFileSync(log, 'utf8').split('\n').find((l) => l.includes('"recovery-agent ready"'));
      return line ? (JSON.parse(line) as { http: string }) : undefined;
    });
    base = `http://${ready.http}`;
  });

  after(async () => {
    agent.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => (agent.exitCode !== null ? r(agent.exitCode) : agent.once('exit', r)));
    assert.equal(code, 0, 'the agent stops cleanly on SIGTERM');
  });

  it('is healthy within the grace, 503 with store-missing after it, then 200 and cleared once the store exists', async () => {
    const startedAt = Date.now();
    const first = await fetch(`${base}/health`);
    assert.equal(first.status, 200, 'within the grace period a store not yet created is no failure');
    assert.equal(existsSync(store()), false);
    assert.ok(!readFileSync(log, 'utf8').includes('ESCALATION'), 'no escalation within the grace period');

    const sick = await until('/health to say store-missing', async () => {
      const r = await fetch(`${base}/health`);
      const body = (await r.json()) as { status: string; reasons: string[] };
      return r.status === 503 ? body : undefined;
    });
    assert.ok(Date.now() - startedAt < DELAY_S * 1000, 'the failure came while the store was still missing');
    assert.match(sick.reasons.join('\n'), /P1 store-missing on store:late was not fixed automatically: .*store holds no store/);

    const failures = async () => ((await (await fetch(`${base}/failures`)).json()) as { failures: Listed[] }).failures;
    const missing = (await failures()).find((f) => f.kind === 'store-missing')!;
    assert.deepEqual([missing.subject, missing.evidence.path, missing.evidence.expectedWriter], ['store:late', store(), 'writer']);
    // The store's health probe scores it 0, with the reason.
    const status = (await (await fetch(`${base}/status`)).json()) as { healthMonitor: { probeReasons?: Array<{ id: string; score: number; reason: string }> } };
    assert.deepEqual(status.healthMonitor.probeReasons?.map((p) => `${p.id} ${p.score}`), ['store:late 0']);

    const healthy = await until('/health to be 200 again', async () => ((await fetch(`${base}/health`)).status === 200 ? true : undefined), 30_000);
    assert.ok(healthy);
    assert.ok(existsSync(store()), 'healthy again only once the store exists');
    const cleared = (await failures()).find((f) => f.id === missing.id)!;
    assert.equal(cleared.state, 'cleared');
    assert.match(cleared.cleared!.reason, /store late can be opened now/);

    // Not a recovery: no RTO sample, and the only store-missing recovery record is the escalation.
    const { recoveries, statistics } = (await (await fetch(`${base}/recoveries`)).json()) as { recoveries: Array<{ kind: string; outcome: string }>; statistics: { recoveriesSucceeded: number; avgRtoMs: number | null } };
    assert.deepEqual(recoveries.filter((r) => r.kind === 'store-missing').map((r) => r.outcome), ['no-action']);
    assert.equal(statistics.recoveriesSucceeded, 0);
    assert.equal(statistics.avgRtoMs, null);
    assert.ok(readFileSync(log, 'utf8').includes('failure cleared by its detector'), 'the agent logs the clearing');
  });
});

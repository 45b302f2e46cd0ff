// End to end: the agent CLI supervising the demo writer on a store of ours. kill -9 of the writer
// must be detected, the store recovered, the writer restarted under a new pid and heartbeating,
// and the recovery recorded with its RTO in /recoveries, the journal and /metrics.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN } from '../helpers/cli.js';
import { repoRoot } from '../helpers/paths.js';

interface ProcessStatus {
  id: string;
  pid: number | null;
  state: string;
  lastHeartbeatAt: number | null;
  restarts: number;
}

async function until<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('agent loop, end to end', () => {
  let dir: string;
  let agent: ChildProcess;
  let base: string;
  const status = async () => (await (await fetch(`${base}/status`)).json()) as { processes: ProcessStatus[] };
  const writer = async () => (await status()).processes.find((p) => p.id === 'writer')!;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ra-e2e-'));
    const writerJs = path.join(repoRoot(), 'dist', 'examples', 'demo-writer.js');
    writeFileSync(
      path.join(dir, 'agent.yaml'),
      `agent: { dataDir: ./agent, workers: 1, http: { listen: 127.0.0.1:0 } }
stores: [{ id: demo, path: ./store }]
processes:
  - id: writer
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(writerJs)}, --store, ./store, --rate, '300', --pages, '256']
    store: demo
    heartbeat: { udp: 127.0.0.1:0, timeout: 2s }
    restart: { policy: on-failure, backoff: { initial: 50ms, max: 1s } }
`,
    );
    const out = path.join(dir, 'agent.log');
    agent = spawn(process.execPath, [BIN, 'run', '--config', path.join(dir, 'agent.yaml')], { stdio: ['ignore', openSync(out, 'w'), 'inherit'] });
    const ready = await until('the agent to be ready', () => {
      const line = readFileSync(out, 'utf8').split('\n').find((l) => l.includes('"recovery-agent ready"'));
      return line ? (JSON.parse(line) as { http: string }) : undefined;
    });
    base = `http://${ready.http}`;
  });

  after(async () => {
    agent.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => (agent.exitCode !== null ? r(agent.exitCode) : agent.once('exit', r)));
    assert.equal(code, 0, 'the agent stops cleanly on SIGTERM');
  });

  it('recovers the store and restarts the writer after kill -9, within the RTO', async () => {
    // Let the writer get going: heartbeating, with WAL since its last checkpoint.
    const first = await until('the writer to heartbeat', async () => {
      const w = await writer();
      return w.pid && w.lastHeartbeatAt ? w : undefined;
    });
    await new Promise((r) => setTimeout(r, 1500));
    const killedAt = Date.now();
    process.kill(first.pid!, 'SIGKILL');

    const recovery = await until('the recovery', async () => {
      const { recoveries } = (await (await fetch(`${base}/recoveries`)).json()) as { recoveries: Array<{ kind: string; outcome: string; rtoMs: number; detectedAt: number; withinTarget: boolean; attempts: Array<{ action: string; verified: boolean; details?: unknown }> }> };
      return recoveries.find((r) => r.kind === 'process-crash');
    });
    assert.equal(recovery.outcome, 'recovered');
    assert.deepEqual(recovery.attempts.map((a) => [a.action, a.verified]), [['recover-store', true], ['restart-process', true]]);
    assert.ok(recovery.detectedAt - killedAt < 200, `detected ${recovery.detectedAt - killedAt} ms after the kill`);
    assert.ok(recovery.withinTarget);
    console.log(`# kill -9 → recovered: detection ${recovery.detectedAt - killedAt} ms, RTO ${recovery.rtoMs} ms`);

    const again = await until('the new writer to heartbeat', async () => {
      const w = await writer();
      return w.pid && w.pid !== first.pid && w.state === 'running' && (w.lastHeartbeatAt ?? 0) > killedAt ? w : undefined;
    });
    assert.notEqual(again.pid, first.pid);
    assert.equal(again.restarts, first.restarts + 1);

    // The journal on disk has it, and /metrics counts it.
    const journal = readFileSync(path.join(dir, 'agent', 'journal.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { type: string; recovery?: { kind: string; outcome: string } });
    assert.ok(journal.some((e) => e.type === 'recovery' && e.recovery!.kind === 'process-crash' && e.recovery!.outcome === 'recovered'));
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /recovery_agent_recoveries_total\{outcome="recovered",priority="P1"\} 1/);
    assert.match(metrics, /recovery_agent_process_restarts_total\{process="writer"\} 1/);
    assert.match(metrics, /recovery_agent_failures_detected_total\{kind="process-crash",priority="P1"\} 1/);
  });

  it('treats a writer stopped by SIGSTOP as hung, and restarts it', async () => {
    const before = await until('a running writer', async () => {
      const w = await writer();
      return w.state === 'running' && w.lastHeartbeatAt ? w : undefined;
    });
    process.kill(before.pid!, 'SIGSTOP');
    const recovery = await until(
      'the hang recovery',
      async () => {
        const { recoveries } = (await (await fetch(`${base}/recoveries`)).json()) as { recoveries: Array<{ kind: string; outcome: string; rtoMs: number }> };
        return recoveries.find((r) => r.kind === 'process-hang');
      },
      20_000,
    );
    assert.equal(recovery.outcome, 'recovered');
    const after = await until('the restarted writer', async () => {
      const w = await writer();
      return w.pid !== before.pid && w.state === 'running' ? w : undefined;
    });
    assert.notEqual(after.pid, before.pid);
  });
});

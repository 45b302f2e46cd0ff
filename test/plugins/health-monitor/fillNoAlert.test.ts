// Measured: on a real 64 MiB filesystem, a burst that then stops and a sawtooth (a log file
// truncated each time it reaches 8 MiB) raise no predicted-exhaustion failure, although both
// pass the guard and, for a moment, project exhaustion within the horizon. Same scaled-down
// settings as fillPrediction.test.ts.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import healthMonitor from '../../../plugins/health-monitor/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { mountSmallFs, startFiller, type SmallFs } from '../../helpers/smallFs.js';

const MiB = 2 ** 20;
const HORIZON_S = 10;
const GUARD = 0.5;

interface History {
  timestamps: number[];
  series: Record<string, Array<number | null>>;
}

describe('health monitor: no alert without a lasting trend, on a real filesystem', () => {
  let fs: SmallFs | { skip: string };
  let agent: Agent;
  let base: string;
  let resource: string;

  before(async () => {
    fs = mountSmallFs(64);
    if ('skip' in fs) return;
    const work = mkdtempSync(path.join(os.tmpdir(), 'ra-noalert-'));
    const config = validateConfig(
      {
        agent: { dataDir: path.join(work, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } },
        health: { interval: '200ms', paths: [fs.dir], prediction: { window: '5s', recent: '1s', horizon: `${HORIZON_S}s`, guard: GUARD, sustain: 15 } },
      },
      path.join(work, 'agent.yaml'),
      {},
    );
    agent = new Agent({ config, builtins: [healthMonitor], log: captureLogger().log });
    await agent.start();
    base = `http://${agent.httpAddress}`;
    resource = `disk:${fs.dir}`;
  });
  after(async () => {
    await agent?.stop();
    if (fs && !('skip' in fs)) fs.unmount();
  });

  const predicted = async () => {
    const { failures } = (await (await fetch(`${base}/failures`)).json()) as { failures: Array<{ kind: string; subject: string }> };
    return failures.filter((f) => f.kind === 'predicted-exhaustion' && f.subject === resource);
  };
  /** Samples since `since` where the level was past the guard and the long fit projected exhaustion within the horizon. */
  const alarming = async (since: number) => {
    const q = new URLSearchParams({ metrics: `${resource}.eta_seconds,${resource}.available,disk:${(fs as SmallFs).dir}.total_bytes`, since: String(since) });
    const h = (await (await fetch(`${base}/health/history?${q}`)).json()) as History;
    const eta = h.series[`${resource}.eta_seconds`] ?? [];
    const avail = h.series[`${resource}.available`]!;
    const total = h.series[`${resource}.total_bytes`]!;
    return h.timestamps.filter((_t, i) => eta[i] !== null && eta[i] !== undefined && eta[i]! <= HORIZON_S && avail[i]! / total[i]! <= GUARD).length;
  };

  it('a burst that then stops raises nothing', async () => {
    if ('skip' in fs) assert.fail(`this test needs a small filesystem (root: tmpfs or a loop device): ${fs.skip}`);
    await sleep(3000); // a flat history first
    const since = Date.now();
    const burst = startFiller({ file: path.join(fs.dir, 'burst.bin'), rate: 40 * MiB, stopAfterBytes: 40 * MiB });
    await burst.next('stopped');
    await sleep(6000); // longer than the window: the burst has left every fit
    const seen = await alarming(since);
    console.log(`# burst of 40 MiB in 1 s, then flat: ${seen} sample(s) past the guard with exhaustion projected within the horizon; failures: ${(await predicted()).length}`);
    assert.ok(seen > 0, 'the burst did pass the guard and project exhaustion for a while (else this test proves nothing)');
    assert.deepEqual(await predicted(), []);
    rmSync(path.join(fs.dir, 'burst.bin'));
  });

  it('a sawtooth (log rotation) raises nothing', async () => {
    if ('skip' in fs) assert.fail(`this test needs a small filesystem (root: tmpfs or a loop device): ${fs.skip}`);
    const base36 = startFiller({ file: path.join(fs.dir, 'data.bin'), rate: 200 * MiB, stopAfterBytes: 36 * MiB });
    await base36.next('stopped');
    const since = Date.now();
    // 8 MiB/s into a log truncated at 8 MiB: free space swings between 28 and 20 MiB (past the
    // guard), and within each tooth the disk would be full in under 3.5 s.
    const log = startFiller({ file: path.join(fs.dir, 'app.log'), rate: 8 * MiB, rotateBytes: 8 * MiB, durationMs: 9000 });
    await log.next('stopped');
    const seen = await alarming(since);
    console.log(`# sawtooth 8 MiB/s rotated every 8 MiB for 9 s: ${seen} sample(s) past the guard projecting exhaustion within the horizon; failures: ${(await predicted()).length}`);
    assert.deepEqual(await predicted(), []);
  });
});

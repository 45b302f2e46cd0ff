// Measured: on a real 64 MiB filesystem filled at a steady 4 MiB/s by a child process, the time
// to full that the agent predicts one horizon before the disk is full is within ±10 % of the
// real time, and the predicted-exhaustion failure arrives before the disk is full. The horizon
// is scaled down from 5 min to 10 s (window 5 s, samples every 200 ms) to keep the test short.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { Agent } from '../../../core/agent.js';
import { validateConfig } from '../../../cli/config.js';
import healthMonitor from '../../../plugins/health-monitor/index.js';
import { captureLogger } from '../../helpers/logCapture.js';
import { mountSmallFs, startFiller } from '../../helpers/smallFs.js';

const MiB = 2 ** 20;
const HORIZON_S = 10;

interface History {
  timestamps: number[];
  series: Record<string, Array<number | null>>;
}

describe('health monitor on a real filesystem filled at a steady rate', () => {
  it('predicts the time to full within ±10 %, one horizon ahead, and warns before it is full', async () => {
    const fs = mountSmallFs(64);
    if ('skip' in fs) assert.fail(`this test needs a small filesystem (root: tmpfs or a loop device): ${fs.skip}`);
    const work = mkdtempSync(path.join(os.tmpdir(), 'ra-fill-'));
    const config = validateConfig(
      {
        agent: { dataDir: path.join(work, 'agent'), workers: 1, http: { listen: '127.0.0.1:0' } },
        health: {
          interval: '200ms',
          paths: [fs.dir],
          prediction: { window: '5s', recent: '1s', horizon: `${HORIZON_S}s`, guard: 0.5, sustain: 15 },
        },
      },
      path.join(work, 'agent.yaml'),
      {},
    );
    const agent = new Agent({ config, builtins: [healthMonitor], log: captureLogger().log });
    const filler = { child: null as ReturnType<typeof startFiller>['child'] | null };
    try {
      await agent.start();
      const base = `http://${agent.httpAddress}`;
      const resource = `disk:${fs.dir}`;
      const fill = startFiller({ file: path.join(fs.dir, 'fill.bin'), rate: 4 * MiB });
      filler.child = fill.child;
      const started = await fill.next('started');
      const full = await fill.next('full');
      const realSeconds = (full.at - started.at) / 1000;

      const res = await fetch(`${base}/health/history?metrics=${encodeURIComponent(`${resource}.*`)}&since=${started.at}`);
      assert.equal(res.status, 200);
      const h = (await res.json()) as History;
      const eta = h.series[`${resource}.eta_seconds`]!;
      assert.ok(eta, `history has ${resource}.eta_seconds (has: ${Object.keys(h.series).join(', ')})`);

      // Every prediction made before the disk was full, against the real time left.
      const points = h.timestamps
        .map((at, i) => ({ at, eta: eta[i], left: (full.at - at) / 1000 }))
        .filter((p): p is { at: number; eta: number; left: number } => p.eta !== null && p.eta !== undefined && p.left > 0.5);
      assert.ok(points.length > 10, `enough predictions (${points.length})`);
      const oneHorizonAhead = points.reduce((best, p) => (Math.abs(p.left - HORIZON_S) < Math.abs(best.left - HORIZON_S) ? p : best));
      const error = (oneHorizonAhead.eta - oneHorizonAhead.left) / oneHorizonAhead.left;
      const within = points.filter((p) => p.left <= HORIZON_S + 0.1);
      const errors = within.map((p) => Math.abs(p.eta - p.left) / p.left);
      console.log(
        `# ${fs.kind}: full after ${realSeconds.toFixed(2)} s; read ${oneHorizonAhead.left.toFixed(2)} s before full: predicted ${oneHorizonAhead.eta.toFixed(2)} s, ` +
          `error ${(error * 100).toFixed(2)} %; over the last horizon (${within.length} predictions, down to 0.5 s before full): ` +
          `mean |error| ${((errors.reduce((a, b) => a + b, 0) / errors.length) * 100).toFixed(2)} %, max ${(Math.max(...errors) * 100).toFixed(2)} %`,
      );
      assert.ok(Math.abs(oneHorizonAhead.left - HORIZON_S) < 0.5, `a prediction about one horizon before full (closest: ${oneHorizonAhead.left} s)`);
      assert.ok(Math.abs(error) <= 0.1, `predicted ${oneHorizonAhead.eta} s, real ${oneHorizonAhead.left} s: error ${(error * 100).toFixed(1)} % is beyond ±10 %`);

      const failures = (await (await fetch(`${base}/failures`)).json()) as { failures: Array<{ kind: string; priority: string; subject: string; detectedAt: number; evidence: { etaSeconds: number; probability: number; unit: string } }> };
      const predicted = failures.failures.filter((f) => f.kind === 'predicted-exhaustion' && f.subject === resource);
      assert.equal(predicted.length, 1, 'one predicted-exhaustion failure for the filling filesystem');
      const f = predicted[0]!;
      assert.equal(f.priority, 'P2');
      assert.equal(f.evidence.unit, 'bytes');
      assert.ok(f.detectedAt < full.at, 'the failure arrives before the disk is full');
      const lead = (full.at - f.detectedAt) / 1000;
      console.log(`# predicted-exhaustion published ${lead.toFixed(2)} s before full, saying ${f.evidence.etaSeconds.toFixed(2)} s (probability ${f.evidence.probability.toFixed(3)})`);
      assert.ok(Math.abs(f.evidence.etaSeconds - lead) / lead <= 0.1, `the failure's ETA ${f.evidence.etaSeconds} s vs the real ${lead} s`);
    } finally {
      filler.child?.kill('SIGKILL');
      await agent.stop();
      fs.unmount();
    }
  });
});

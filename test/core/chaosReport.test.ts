// The chaos report as the dashboard gets it (core/http/chaosReport.ts): RTOs binned, failed trials
// left out of the bins, the kinds' rows, and a missing, oversized or malformed file said as such.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { RTO_BIN_EDGES_MS, readChaosReport, rtoHistogram } from '../../core/http/chaosReport.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-chaos-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('chaos report for the dashboard', () => {
  it('bins RTOs by upper edge, the last bin open, per kind', () => {
    const bins = rtoHistogram([{ kind: 'a', rtoMs: 0 }, { kind: 'a', rtoMs: 249 }, { kind: 'b', rtoMs: 250 }, { kind: 'a', rtoMs: 119_999 }, { kind: 'b', rtoMs: 120_000 }, { kind: 'b', rtoMs: 1e9 }]);
    assert.equal(bins.length, RTO_BIN_EDGES_MS.length + 1);
    assert.deepEqual(bins[0], { fromMs: 0, toMs: 250, count: 2, kinds: { a: 2 } });
    assert.deepEqual(bins[1], { fromMs: 250, toMs: 500, count: 1, kinds: { b: 1 } });
    assert.deepEqual(bins[8], { fromMs: 60_000, toMs: 120_000, count: 1, kinds: { a: 1 } });
    assert.deepEqual(bins[9], { fromMs: 120_000, toMs: null, count: 2, kinds: { b: 2 } });
  });

  it('reads a report: passed trials with an RTO in the bins, rows per kind, values that are not numbers dropped', async () => {
    const file = path.join(dir, 'chaos.json');
    writeFileSync(file, JSON.stringify({
      seed: 3, trialsPerKind: 2, at: '2026-12-01T00:00:00.000Z',
      kinds: [{ kind: 'k', trials: 2, passed: 1, failed: 1, unsupported: 0, targetMs: 1000, rtoMs: { p50: 600, p95: '<x>', max: 600 } }, { nokind: true }],
      trials: [{ kind: 'k', status: 'passed', harnessRtoMs: 600 }, { kind: 'k', status: 'failed', harnessRtoMs: 5000 }, { kind: 'k', status: 'passed', harnessRtoMs: null }],
    }));
    const r = await readChaosReport(file);
    assert.ok('view' in r, JSON.stringify(r));
    assert.equal(r.view.measured, 1);
    assert.equal(r.view.bins[2]!.count, 1);
    assert.deepEqual(r.view.kinds, [{ kind: 'k', trials: 2, passed: 1, failed: 1, unsupported: 0, targetMs: 1000, p50Ms: 600, p95Ms: null, maxMs: 600 }]);
    assert.equal(r.view.seed, 3);
  });

  it('says why there is nothing to show: no file, not JSON, not a report', async () => {
    const missing = await readChaosReport(path.join(dir, 'none.json'));
    assert.match('missing' in missing ? missing.missing : '', /no chaos report at .*none\.json \(ENOENT\): run `npm run chaos`/);
    writeFileSync(path.join(dir, 'bad.json'), '{');
    const bad = await readChaosReport(path.join(dir, 'bad.json'));
    assert.match('missing' in bad ? bad.missing : '', /is not JSON/);
    writeFileSync(path.join(dir, 'other.json'), '{"bench":"hash"}');
    const other = await readChaosReport(path.join(dir, 'other.json'));
    assert.match('missing' in other ? other.missing : '', /is not a chaos report/);
  });
});

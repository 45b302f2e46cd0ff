import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Failure, Priority } from '../../core/contracts/Failure.js';
import type { Healer, HealResult } from '../../core/contracts/Healer.js';
import { FailureBus } from '../../core/failureBus.js';
import { Orchestrator } from '../../core/orchestrator/orchestrator.js';
import { captureLogger } from '../helpers/logCapture.js';

const RTO: Record<Priority, number> = { P0: 30_000, P1: 120_000, P2: 300_000, P3: 3_600_000 };

/** A healer that records what it ran and when, taking `ms` per failure. */
function slowHealer(ms: number, outcome: (f: Failure) => HealResult['outcome'] = () => 'recovered') {
  const order: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const overlaps: string[] = [];
  const bySubject = new Set<string>();
  const healer: Healer = {
    id: 'test',
    async heal(f) {
      order.push(f.subject);
      if (bySubject.has(f.subject)) overlaps.push(f.subject);
      bySubject.add(f.subject);
      maxRunning = Math.max(maxRunning, ++running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      bySubject.delete(f.subject);
      return { outcome: outcome(f), attempts: [{ action: 'test', applied: true, verified: outcome(f) === 'recovered', undone: false, durationMs: ms }] };
    },
  };
  return { healer, order, overlaps, maxRunning: () => maxRunning };
}

function setup(healer: Healer | undefined, maxConcurrent = 3, journalFile?: string) {
  const bus = new FailureBus();
  const file = journalFile ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-orch-')), 'journal.jsonl');
  const orch = new Orchestrator({ bus, log: captureLogger().log, journalFile: file, maxConcurrent, rtoTargets: RTO, healer: () => healer });
  return { bus, orch, file };
}

describe('orchestrator', () => {
  it('runs the most urgent first, within the concurrency limit, never two on one subject', async () => {
    const h = slowHealer(40);
    const { bus, orch } = setup(h.healer, 1);
    orch.start();
    bus.publish('t', { kind: 'k', priority: 'P2', subject: 'first' }); // starts at once
    bus.publish('t', { kind: 'k', priority: 'P3', subject: 'p3' });
    bus.publish('t', { kind: 'k', priority: 'P1', subject: 'p1' });
    bus.publish('t', { kind: 'k', priority: 'P0', subject: 'p0' });
    await orch.idle();
    assert.deepEqual(h.order, ['first', 'p0', 'p1', 'p3']);
    await orch.stop();

    const h2 = slowHealer(30);
    const two = setup(h2.healer, 2);
    two.orch.start();
    for (let i = 0; i < 6; i++) two.bus.publish('t', { kind: `k${i}`, priority: 'P1', subject: i % 2 ? 'shared' : `s${i}` });
    await two.orch.idle();
    assert.equal(h2.maxRunning(), 2);
    assert.deepEqual(h2.overlaps, [], 'never two recoveries on the same subject at once');
    assert.equal(two.orch.snapshot().recoveriesSucceeded, 6);
    await two.orch.stop();
  });

  it('never runs two recoveries on one store at once: a crashed owner and a corrupt page of its store, one after the other', async () => {
    const running: string[] = [];
    const overlaps: string[][] = [];
    const order: string[] = [];
    const healer: Healer = {
      id: 'test',
      async heal(f) {
        running.push(f.subject);
        if (running.length > 1) overlaps.push([...running]);
        order.push(f.subject);
        await new Promise((r) => setTimeout(r, 40));
        running.splice(running.indexOf(f.subject), 1);
        return { outcome: 'recovered', attempts: [{ action: 'test', applied: true, verified: true, undone: false, durationMs: 40 }] };
      },
    };
    const { bus, orch } = setup(healer, 3);
    orch.start();
    bus.publish('t', { kind: 'page-corruption', priority: 'P0', subject: 'store:s', evidence: { storeId: 's' } });
    bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:app', evidence: { processId: 'app', store: 's' } });
    bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:other', evidence: { processId: 'other', store: 't' } });
    await orch.idle();
    assert.ok(overlaps.some((o) => o.includes('store:s') && o.includes('process:other')), `another store's recovery ran beside the first: ${JSON.stringify(overlaps)}`);
    assert.ok(!overlaps.some((o) => o.includes('store:s') && o.includes('process:app')), `store s had two recoveries at once: ${JSON.stringify(overlaps)}`);
    assert.ok(order.indexOf('store:s') < order.indexOf('process:app'), order.join(', '));
    await orch.stop();
  });

  it('counts the RTO from the failure\'s start when its detector bounds it (occurredAt), never from after its detection', async () => {
    const h = slowHealer(20);
    const { bus, orch } = setup(h.healer);
    orch.start();
    const now = Date.now();
    const early = bus.publish('t', { kind: 'primary-failure', priority: 'P1', subject: 'early', detectedAt: now, occurredAt: now - 3000 });
    const late = bus.publish('t', { kind: 'k', priority: 'P1', subject: 'late', detectedAt: now, occurredAt: now + 60_000 });
    assert.equal(early.occurredAt, now - 3000);
    assert.equal(late.occurredAt, now, 'a start after the detection counts as the detection');
    assert.throws(() => bus.publish('t', { kind: 'k', priority: 'P1', subject: 'x', occurredAt: 'yesterday' as unknown as number }), /occurredAt must be a time/);
    await orch.idle();
    const by = Object.fromEntries(orch.recentRecoveries().map((r) => [r.subject, r]));
    // The healer's 20 ms timer runs on libuv's loop clock, cached at the loop's turn: measured
    // with Date.now() it may end a millisecond or so early (3019 was seen), hence the 2 ms slack.
    assert.ok(by.early!.rtoMs >= 3018 && by.early!.rtoMs < 10_000, String(by.early!.rtoMs));
    assert.equal(by.early!.occurredAt, now - 3000);
    assert.equal(by.early!.detectedAt, now);
    assert.ok(by.late!.rtoMs >= 18 && by.late!.rtoMs < 3000, String(by.late!.rtoMs));
    await orch.stop();
  });

  it('folds duplicates of an open failure into it', async () => {
    const h = slowHealer(50);
    const { bus, orch } = setup(h.healer);
    orch.start();
    for (let i = 0; i < 5; i++) bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:w' });
    await orch.idle();
    assert.equal(h.order.length, 1);
    const [r] = orch.recentRecoveries();
    assert.equal(r!.duplicates, 4);
    assert.equal(orch.snapshot().failuresDetected, 5);
    assert.equal(orch.snapshot().duplicatesSuppressed, 4);
    // Once closed, the same problem again is a new recovery.
    bus.publish('t', { kind: 'process-crash', priority: 'P1', subject: 'process:w' });
    await orch.idle();
    assert.equal(h.order.length, 2);
    await orch.stop();
  });

  it('measures RTO from detection against the target, and escalates what was not fixed', async () => {
    const h = slowHealer(20, (f) => (f.subject === 'bad' ? 'failed' : 'recovered'));
    const { bus, orch } = setup(h.healer);
    orch.start();
    const escalated: string[] = [];
    orch.on('escalation', (r) => escalated.push(r.subject));
    bus.publish('t', { kind: 'k', priority: 'P0', subject: 'late', detectedAt: Date.now() - 40_000 });
    bus.publish('t', { kind: 'k', priority: 'P0', subject: 'ok' });
    bus.publish('t', { kind: 'k', priority: 'P0', subject: 'bad' });
    await orch.idle();
    const by = Object.fromEntries(orch.recentRecoveries().map((r) => [r.subject, r]));
    assert.ok(by.late!.rtoMs >= 40_000 && !by.late!.withinTarget && by.late!.targetMs === 30_000);
    assert.ok(by.ok!.rtoMs >= 18 && by.ok!.rtoMs < 30_000 && by.ok!.withinTarget, String(by.ok!.rtoMs)); // 2 ms slack: see the occurredAt test above
    assert.equal(by.bad!.outcome, 'failed');
    assert.ok(by.bad!.escalated);
    assert.deepEqual(escalated, ['bad']);
    assert.deepEqual(orch.openFailures().map((o) => [o.failure.subject, o.state]), [['bad', 'escalated']]);
    const s = orch.snapshot();
    assert.equal(s.recoveriesSucceeded, 2);
    assert.equal(s.recoveriesFailed, 1);
    assert.equal(s.rtoComplianceRate, 1 / 3);
    assert.ok(s.p95RtoMs! >= 40_000 && s.avgRtoMs! > 20_000);
    await orch.stop();
  });

  it('keeps its journal across a restart', async () => {
    const h = slowHealer(5);
    const first = setup(h.healer);
    first.orch.start();
    first.bus.publish('t', { kind: 'k', priority: 'P1', subject: 'a' });
    first.bus.publish('t', { kind: 'k', priority: 'P1', subject: 'b' });
    await first.orch.idle();
    await first.orch.stop();
    const second = setup(h.healer, 3, first.file);
    second.orch.start();
    assert.equal(second.orch.snapshot().failuresDetected, 2);
    assert.equal(second.orch.snapshot().recoveriesSucceeded, 2);
    assert.deepEqual(second.orch.recentRecoveries().map((r) => r.subject).sort(), ['a', 'b']);
    await second.orch.stop();
  });

  it('records a low-priority failure nothing handles as unhandled: no escalation, no weight in RTO compliance', async () => {
    const { bus, orch } = setup(undefined);
    orch.start();
    bus.publish('t', { kind: 'health-degraded', priority: 'P3', subject: 'host' });
    await orch.idle();
    const [r] = orch.recentRecoveries();
    assert.equal(r!.outcome, 'no-action');
    assert.equal(r!.escalated, false);
    const s = orch.snapshot();
    assert.equal(s.escalations, 0);
    assert.equal(s.recoveriesUnhandled, 1);
    assert.equal(s.recoveriesFailed, 0);
    assert.equal(s.rtoComplianceRate, null, 'no recovery counts toward compliance');
    assert.equal(orch.openFailures().length, 0, 'not held open as escalated');
    await orch.stop();
  });

  it('escalates when no healer runs', async () => {
    const { bus, orch } = setup(undefined);
    orch.start();
    bus.publish('t', { kind: 'k', priority: 'P1', subject: 'x' });
    await orch.idle();
    const [r] = orch.recentRecoveries();
    assert.equal(r!.outcome, 'no-action');
    assert.ok(r!.escalated);
    assert.match(r!.reason!, /no healer/);
    await orch.stop();
  });
});

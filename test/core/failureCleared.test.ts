// A detector closing its own failure (FailureBus.resolve): the orchestrator records it as
// `cleared` — journaled, emitted, marked in recentFailures — but not as a recovery: no RTO
// sample, no weight in RTO compliance, and /health no longer names it.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { Priority } from '../../core/contracts/Failure.js';
import type { Healer } from '../../core/contracts/Healer.js';
import { FailureBus } from '../../core/failureBus.js';
import { health } from '../../core/http/server.js';
import type { ClearedRecord } from '../../core/orchestrator/journal.js';
import { Orchestrator } from '../../core/orchestrator/orchestrator.js';
import type { PluginHost } from '../../core/pluginHost.js';
import { captureLogger } from '../helpers/logCapture.js';

const RTO: Record<Priority, number> = { P0: 30_000, P1: 120_000, P2: 300_000, P3: 3_600_000 };

/** What the self-healer answers for a kind it has no rule for. */
const noRule: Healer = { id: 'test', heal: async (f) => ({ outcome: 'no-action', attempts: [], reason: `no healing rule for failure kind "${f.kind}"` }) };

function setup(healer: Healer | undefined, journalFile?: string) {
  const bus = new FailureBus();
  const file = journalFile ?? path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-clear-')), 'journal.jsonl');
  const orch = new Orchestrator({ bus, log: captureLogger().log, journalFile: file, maxConcurrent: 2, rtoTargets: RTO, healer: () => healer });
  return { bus, orch, file };
}

const noPlugins = { status: () => [] } as unknown as PluginHost;

describe('a failure its detector resolves', () => {
  it('the bus refuses to resolve an unknown failure, another source’s, or one twice; the sink resolves under its own source', () => {
    const bus = new FailureBus();
    const f = bus.publish('det', { kind: 'store-missing', priority: 'P1', subject: 'store:a' });
    assert.throws(() => bus.resolve('det', 'f-nope-1', 'gone'), /no unresolved failure "f-nope-1"/);
    assert.throws(() => bus.resolve('other', f.id, 'gone'), /other cannot resolve failure .* det published it/);
    const seen: string[] = [];
    bus.subscribe(() => undefined, { onResolve: (r) => seen.push(`${r.failureId} ${r.kind} ${r.subject} ${r.reason} ${r.source}`) });
    const r = bus.sinkFor('det').resolve!(f.id, 'the store exists now');
    assert.equal(r.fingerprint, f.fingerprint);
    assert.deepEqual(seen, [`${f.id} store-missing store:a the store exists now det`]);
    assert.throws(() => bus.resolve('det', f.id, 'again'), /no unresolved failure/);
  });

  it('an escalated P1 is cleared: off the open list, /health healthy again, state cleared, an event, no RTO sample', async () => {
    const { bus, orch, file } = setup(noRule);
    const events: ClearedRecord[] = [];
    orch.on('cleared', (c) => events.push(c));
    orch.start();
    const f = bus.publish('det', { kind: 'store-missing', priority: 'P1', subject: 'store:a', evidence: { reason: '/x holds no store' } });
    await orch.idle();
    assert.deepEqual(orch.openFailures().map((o) => `${o.failure.id} ${o.state}`), [`${f.id} escalated`]);
    const sick = health({ host: noPlugins, orchestrator: orch });
    assert.equal(sick.healthy, false);
    assert.match(sick.reasons.join('\n'), /P1 store-missing on store:a was not fixed automatically: \/x holds no store/);
    const before = orch.snapshot();

    bus.resolve('det', f.id, 'store a can be opened now');
    assert.deepEqual(orch.openFailures(), []);
    assert.deepEqual(health({ host: noPlugins, orchestrator: orch }), { healthy: true, reasons: [] });
    assert.equal(events.length, 1);
    assert.deepEqual({ ...events[0], clearedAt: 0 }, { failureId: f.id, resolvedFailureId: f.id, kind: 'store-missing', priority: 'P1', subject: 'store:a', fingerprint: f.fingerprint, detectedAt: f.detectedAt, clearedAt: 0, reason: 'store a can be opened now', source: 'det' });
    const listed = orch.recentFailures().find((x) => x.id === f.id)!;
    assert.equal(listed.state, 'cleared');
    assert.equal(listed.cleared?.reason, 'store a can be opened now');
    // Not a recovery: the statistics did not move, and /recoveries holds only the escalation.
    assert.deepEqual(orch.snapshot(), before);
    assert.equal(orch.snapshot().avgRtoMs, null);
    assert.deepEqual(orch.recentRecoveries().map((r) => r.outcome), ['no-action']);
    await orch.stop();

    // After a restart the journal says the same: cleared, not escalated, no recovery added.
    const again = setup(noRule, file);
    again.orch.start();
    assert.deepEqual(again.orch.openFailures(), []);
    assert.equal(again.orch.recentFailures().find((x) => x.id === f.id)?.state, 'cleared');
    assert.deepEqual(again.orch.snapshot(), before);
    await again.orch.stop();
  });

  it('a queued failure is cleared before any recovery runs; one being recovered is cleared when its recovery ends', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const ran: string[] = [];
    const slow: Healer = {
      id: 'slow',
      async heal(f) {
        ran.push(f.subject);
        await gate;
        return { outcome: 'failed', attempts: [], reason: 'nothing worked' };
      },
    };
    const { bus, orch } = setup(slow);
    const events: string[] = [];
    orch.on('cleared', (c) => events.push(c.subject));
    orch.start();
    const running = bus.publish('det', { kind: 'k', priority: 'P1', subject: 's1' });
    const other = bus.publish('det', { kind: 'k', priority: 'P1', subject: 's2' });
    const queued = bus.publish('det', { kind: 'k', priority: 'P2', subject: 's3' }); // two at once: this one waits
    assert.deepEqual(orch.openFailures().map((o) => `${o.failure.subject} ${o.state}`), ['s1 running', 's2 running', 's3 queued']);
    bus.resolve('det', queued.id, 'over');
    bus.resolve('det', running.id, 'over');
    assert.deepEqual(events, ['s3']);
    assert.deepEqual(orch.openFailures().map((o) => `${o.failure.subject} ${o.state}`), ['s1 running', 's2 running']);
    release();
    await orch.idle();
    // s1's recovery failed (escalated), then was cleared; s2 stays escalated; s3 never ran.
    assert.deepEqual(events, ['s3', 's1']);
    assert.deepEqual(ran, ['s1', 's2']);
    assert.deepEqual(orch.openFailures().map((o) => `${o.failure.id} ${o.state}`), [`${other.id} escalated`]);
    await orch.stop();
  });

  it('resolving an old occurrence does not clear a newer one of the same fingerprint', async () => {
    const { bus, orch } = setup(noRule);
    orch.start();
    const old = bus.publish('det', { kind: 'store-missing', priority: 'P1', subject: 'store:a', detectedAt: Date.now() - 10_000 });
    await orch.idle();
    bus.resolve('det', old.id, 'over');
    const fresh = bus.publish('det', { kind: 'store-missing', priority: 'P1', subject: 'store:a' });
    await orch.idle();
    assert.deepEqual(orch.openFailures().map((o) => o.failure.id), [fresh.id]);
    await orch.stop();
  });
});

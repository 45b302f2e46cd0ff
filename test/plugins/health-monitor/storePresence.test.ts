// The store-missing detector: nothing during the grace period after start, then one P1 failure
// per store (not one per sample), resolved on the bus when the store opens.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureBus } from '../../../core/failureBus.js';
import { STORE_MISSING, STORE_UNOPENABLE, StorePresence } from '../../../plugins/health-monitor/storePresence.js';
import { captureLogger } from '../../helpers/logCapture.js';

describe('store presence', () => {
  it('publishes store-missing only after the grace period, once, and resolves it when the store opens', () => {
    const bus = new FailureBus();
    const sink = bus.sinkFor('health-monitor');
    let now = 1_000_000;
    const p = new StorePresence({ graceMs: 30_000, log: captureLogger().log, writers: new Map([['a', 'writer']]), sink: () => sink, now: () => now });
    const resolved: string[] = [];
    bus.subscribe(() => undefined, { onResolve: (r) => resolved.push(`${r.kind} ${r.reason}`) });
    const missing = { ok: false, missing: true, reason: '/s/a holds no store' } as const;
    p.observe('a', '/s/a', missing); // not started: nothing
    p.start();
    p.observe('a', '/s/a', missing);
    now += 29_999;
    p.observe('a', '/s/a', missing);
    assert.deepEqual(bus.recent(), [], 'nothing within the grace period');
    now += 1;
    p.observe('a', '/s/a', missing);
    p.observe('a', '/s/a', missing);
    const [f, ...more] = bus.recent();
    assert.equal(more.length, 0, 'one failure, not one per sample');
    assert.deepEqual({ kind: f!.kind, priority: f!.priority, subject: f!.subject, evidence: f!.evidence }, {
      kind: STORE_MISSING,
      priority: 'P1',
      subject: 'store:a',
      evidence: { store: 'a', path: '/s/a', reason: '/s/a holds no store', expectedWriter: 'writer', graceSeconds: 30 },
    });
    p.observe('a', '/s/a', { ok: true });
    assert.deepEqual(resolved, ['store-missing store a can be opened now']);
    p.observe('a', '/s/a', { ok: true });
    assert.equal(resolved.length, 1);

    // Gone again after the grace: at once. Then unopenable instead: the one resolved, the other published.
    p.observe('a', '/s/a', missing);
    p.observe('a', '/s/a', { ok: false, missing: false, reason: 'bad control file' });
    assert.deepEqual(bus.recent().map((x) => x.kind), [STORE_MISSING, STORE_MISSING, STORE_UNOPENABLE]);
    assert.deepEqual(resolved, ['store-missing store a can be opened now', 'store-missing store a: bad control file']);
  });
});

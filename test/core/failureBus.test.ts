import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FailureBus } from '../../core/failureBus.js';
import { isRaError } from '../../core/errors.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { captureLogger } from '../helpers/logCapture.js';

describe('failure bus', () => {
  it('delivers typed failures to subscribers with id, time, source and fingerprint', () => {
    const bus = new FailureBus();
    const got: Failure[] = [];
    const off = bus.subscribe((f) => got.push(f));
    const sink = bus.sinkFor('crash-detector');
    const f = sink.publish({ kind: 'process-crash', priority: 'P1', subject: 'process:writer', evidence: { exitCode: 137 } });
    assert.equal(got.length, 1);
    assert.equal(got[0], f);
    assert.equal(f.source, 'crash-detector');
    assert.equal(f.fingerprint, 'process-crash|process:writer');
    assert.ok(Math.abs(f.detectedAt - Date.now()) < 1000);
    assert.ok(Object.isFrozen(f) && Object.isFrozen(f.evidence));
    off();
    sink.publish({ kind: 'process-crash', priority: 'P1', subject: 'process:writer' });
    assert.equal(got.length, 1, 'unsubscribed listeners hear nothing');
    assert.notEqual(bus.recent()[0]!.id, bus.recent()[1]!.id);
  });

  it('rejects malformed failures with the field at fault', () => {
    const bus = new FailureBus();
    assert.throws(() => bus.publish('d', { kind: 'x', priority: 'P9' as never, subject: 's' }), (err: unknown) => isRaError(err, 'RA_ERR_CONTRACT') && /priority must be one of P0, P1, P2, P3 \(got "P9"\) from d/.test(err.message));
    assert.throws(() => bus.publish('d', { kind: '', priority: 'P0', subject: 's' }), /failure\.kind/);
    assert.throws(() => bus.publish('d', { kind: 'k', priority: 'P0', subject: '' }), /failure\.subject/);
  });

  it('isolates a throwing listener and replays the backlog to late subscribers', () => {
    const cap = captureLogger();
    const bus = new FailureBus(cap.log, 2);
    bus.subscribe(() => { throw new Error('listener bug'); });
    const seen: string[] = [];
    bus.subscribe((f) => seen.push(f.subject));
    bus.publish('d', { kind: 'k', priority: 'P2', subject: 'a' });
    bus.publish('d', { kind: 'k', priority: 'P2', subject: 'b' });
    bus.publish('d', { kind: 'k', priority: 'P2', subject: 'c' });
    assert.deepEqual(seen, ['a', 'b', 'c']);
    assert.ok(cap.lines().some((l) => l.msg === 'failure listener threw'));
    const late: string[] = [];
    bus.subscribe((f) => late.push(f.subject), { replay: true });
    assert.deepEqual(late, ['b', 'c'], 'the backlog is bounded');
  });
});

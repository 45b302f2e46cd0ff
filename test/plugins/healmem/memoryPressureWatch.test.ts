// The memory-pressure watch alone: fires after `sustain` low samples, once per episode, names
// the supervised processes by RSS and their stores, and re-arms after `sustain` good samples.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FailureInput } from '../../../core/contracts/Failure.js';
import type { ProcessStatus } from '../../../core/contracts/ProcessSupervisor.js';
import { MemoryPressureWatch } from '../../../plugins/health-monitor/memoryPressure.js';

const proc = (id: string, pid: number, rssBytes: number, store?: string) => ({ id, pid, rssBytes, store, state: 'running' }) as unknown as ProcessStatus;

describe('MemoryPressureWatch', () => {
  it('publishes once per episode, after sustain samples below the line midpoint', () => {
    const out: FailureInput[] = [];
    const w = new MemoryPressureWatch({ good: 0.25, bad: 0 }, 3, () => [proc('small', 10, 1e6, 'a'), proc('big', 11, 9e6, 'b'), proc('bare', 12, 5e6)]);
    const feed = (ratio: number, n: number) => {
      for (let i = 0; i < n; i++) w.observe({ available_ratio: ratio, available_bytes: ratio * 1e9, total_bytes: 1e9 }, i, (f) => out.push(f));
    };
    feed(0.2, 10); // score 80: no pressure
    feed(0.13, 10); // just above the midpoint (0.125)
    assert.equal(out.length, 0);
    feed(0.1, 2);
    assert.equal(out.length, 0, 'not before sustain samples');
    feed(0.1, 10);
    assert.equal(out.length, 1, 'once per episode');
    const e = out[0]!.evidence as { processId: string; stores: string[]; processes: Array<{ id: string }> };
    assert.equal(out[0]!.kind, 'memory-pressure');
    assert.equal(out[0]!.priority, 'P2');
    assert.equal(e.processId, 'big');
    assert.deepEqual(e.processes.map((p) => p.id), ['big', 'bare', 'small']);
    assert.deepEqual(e.stores, ['b', 'a']);
    feed(0.5, 2);
    feed(0.1, 5);
    assert.equal(out.length, 1, 'two good samples do not end the episode');
    feed(0.5, 3);
    feed(0.1, 3);
    assert.equal(out.length, 2, 'a new episode after sustain good samples');
  });
});

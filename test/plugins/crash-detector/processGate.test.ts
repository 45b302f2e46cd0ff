// Process gates (core/contracts/ProcessGate.ts): the supervisor starts a process only where no
// gate holds it, stops it (a planned stop, no crash) when a gate comes to hold it, starts it when
// the hold is lifted, and refuses a restart while it is held — how the same `processes` entry
// runs only on the member whose store is the primary (#15).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRaError } from '../../../core/errors.js';
import type { ProcessGate } from '../../../core/contracts/ProcessGate.js';
import { childProcessConfig, pidExists, startDetector, waitFor, type Harness } from './harness.js';

/** A gate a test opens and closes by hand. */
function handGate(initial: string | null): ProcessGate & { set(reason: string | null): void } {
  let reason = initial;
  const listeners = new Set<() => void>();
  return {
    id: 'hand',
    hold: (p) => (p.id === 'app' ? reason : null),
    subscribe(l) {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    set(r) {
      reason = r;
      for (const l of listeners) l();
    },
  };
}

const running: Harness[] = [];
after(async () => {
  for (const h of running) await h.stop();
});

describe('crash detector: process gates', () => {
  it('does not start a held process, starts it when released, stops it without a crash when held again', async () => {
    const gate = handGate('store demo is a replica here');
    const h = await startDetector([childProcessConfig('app', {}), childProcessConfig('other', {})], { gates: [gate] });
    running.push(h);
    assert.equal(h.supervisor.get('other')!.state, 'running', 'a process no gate holds starts');
    const held = h.supervisor.get('app')!;
    assert.equal(held.state, 'stopped');
    assert.equal(held.pid, null);
    assert.equal(held.heldBy, 'hand: store demo is a replica here');
    await assert.rejects(h.supervisor.restart('app', 'test'), (e: unknown) => isRaError(e) && e.code === 'RA_ERR_PROCESS_STATE' && /may not run on this host now: hand: store demo is a replica here/.test(e.message));

    gate.set(null);
    const started = await waitFor(() => h.supervisor.get('app')!.pid, 5000, 'the released process to start');
    assert.equal(h.supervisor.get('app')!.heldBy, null);
    assert.ok(pidExists(started));

    gate.set('demoted: epoch 9 belongs to member b');
    await waitFor(() => h.supervisor.get('app')!.state === 'stopped' && h.supervisor.get('app')!.pid === null, 10_000, 'the held process to stop');
    await waitFor(() => !pidExists(started), 5000, 'the old instance to be gone');
    await sleep(100);
    assert.equal(h.failures('process-crash').length, 0, 'a stop by a gate is no crash');
    assert.equal(h.supervisor.get('app')!.crashes, 0);
    assert.equal(h.supervisor.get('other')!.state, 'running', 'the other process is untouched');

    gate.set(null);
    await waitFor(() => h.supervisor.get('app')!.pid, 5000, 'the process to start again');
  });

  it('a gate that throws holds the process, and says so', async () => {
    const gate: ProcessGate = {
      id: 'broken',
      hold: () => {
        throw new Error('etcd client not ready');
      },
      subscribe: () => () => undefined,
    };
    const h = await startDetector([childProcessConfig('app', {})], { gates: [gate] });
    running.push(h);
    const s = h.supervisor.get('app')!;
    assert.equal(s.pid, null);
    assert.match(s.heldBy ?? '', /broken: the gate failed \(.*etcd client not ready/);
  });
});

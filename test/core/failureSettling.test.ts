// A failure published with `settlesWithinMs` (the agent's own answer to it is under way: a deposed
// primary rebuilding itself as a replica, a member that lost etcd stepping down): the orchestrator
// leaves it `settling` and hands it to the healer only if its detector has not resolved it by then.
// Resolved in time, it is cleared — no recovery, no escalation, /health never names it; not
// resolved, it is recovered (here: escalated, as no rule handles it) like any other.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { Priority } from '../../core/contracts/Failure.js';
import type { Healer } from '../../core/contracts/Healer.js';
import { FailureBus } from '../../core/failureBus.js';
import { health } from '../../core/http/server.js';
import type { RecoveryRecord } from '../../core/orchestrator/journal.js';
import { Orchestrator } from '../../core/orchestrator/orchestrator.js';
import type { PluginHost } from '../../core/pluginHost.js';
import { captureLogger } from '../helpers/logCapture.js';

const RTO: Record<Priority, number> = { P0: 30_000, P1: 120_000, P2: 300_000, P3: 3_600_000 };
const noPlugins = { status: () => [] } as unknown as PluginHost;

function setup() {
  const healed: string[] = [];
  const noRule: Healer = {
    id: 'test',
    heal: async (f) => {
      healed.push(f.id);
      return { outcome: 'no-action', attempts: [], reason: `no healing rule for failure kind "${f.kind}"` };
    },
  };
  const bus = new FailureBus();
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'ra-settle-')), 'journal.jsonl');
  const orch = new Orchestrator({ bus, log: captureLogger().log, journalFile: file, maxConcurrent: 2, rtoTargets: RTO, healer: () => noRule });
  const recoveries: RecoveryRecord[] = [];
  orch.on('recovery', (r) => recoveries.push(r));
  return { bus, orch, healed, recoveries };
}

describe('a failure left to settle by itself', () => {
  it('resolved by its detector in time: cleared, never handed to the healer, never escalated', async () => {
    const { bus, orch, healed, recoveries } = setup();
    orch.start();
    const f = bus.publish('replication', { kind: 'replication-refused', priority: 'P1', subject: 'store:s', settlesWithinMs: 600_000 });
    assert.equal(f.settlesWithinMs, 600_000);
    await orch.idle();
    assert.deepEqual(orch.openFailures().map((o) => `${o.failure.id} ${o.state}`), [`${f.id} settling`]);
    assert.equal(health({ host: noPlugins, orchestrator: orch }).healthy, true, 'a settling failure is not a reason to be unhealthy');
    bus.resolve('replication', f.id, 'the replica streams from its primary again');
    await orch.idle();
    assert.deepEqual(healed, []);
    assert.deepEqual(recoveries, []);
    assert.deepEqual(orch.openFailures(), []);
    assert.equal(orch.recentFailures().find((x) => x.id === f.id)?.state, 'cleared');
    assert.equal(orch.snapshot().escalations, 0);
    await orch.stop();
  });

  it('not resolved in time: handed to the healer, and escalated when nothing heals it', async () => {
    const { bus, orch, healed, recoveries } = setup();
    orch.start();
    const escalated = once(orch, 'escalation');
    const f = bus.publish('cluster', { kind: 'network-partition', priority: 'P1', subject: 'cluster:c', settlesWithinMs: 30 });
    assert.deepEqual(orch.openFailures().map((o) => o.state), ['settling']);
    // The orchestrator's timers do not hold a process open (the agent's server does): this one does here.
    const alive = setInterval(() => undefined, 1000);
    const [rec] = (await escalated.finally(() => clearInterval(alive))) as [RecoveryRecord];
    assert.equal(rec.failureId, f.id);
    assert.deepEqual(healed, [f.id]);
    assert.equal(recoveries.length, 1);
    assert.deepEqual(orch.openFailures().map((o) => `${o.failure.id} ${o.state}`), [`${f.id} escalated`]);
    await orch.stop();
  });

  it('without settlesWithinMs an unhandled P1 escalates at once (the behaviour the window is for)', async () => {
    const { bus, orch, recoveries } = setup();
    orch.start();
    bus.publish('replication', { kind: 'replication-refused', priority: 'P1', subject: 'store:s' });
    await orch.idle();
    assert.deepEqual(recoveries.map((r) => r.escalated), [true]);
    await orch.stop();
  });

  it('the bus refuses a window that is not a positive number of ms up to an hour', () => {
    const bus = new FailureBus();
    for (const bad of [0, -1, Number.NaN, 3_600_001, '5' as unknown as number]) {
      assert.throws(() => bus.publish('det', { kind: 'k', priority: 'P1', subject: 's', settlesWithinMs: bad }), /settlesWithinMs must be/);
    }
  });
});

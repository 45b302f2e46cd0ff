// Application-defined healing actions: a supervised application registers actions on its
// store's control socket; the agent lists them, and the app-action plugin runs one when a rule
// maps a failure to it, verified by the application's own verify. A throwing or hanging action
// fails with a clear error within its limit, and neither the agent nor the application falls.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { startAgent, waitFor } from './harness.js';

const rule = (on: string, options: Record<string, unknown>) => ({ on, do: [{ action: 'app-action', options }] });

describe('app-action', () => {
  let h: Awaited<ReturnType<typeof startAgent>>;
  before(async () => {
    h = await startAgent({}, {
      healing: {
        rules: [
          rule('pool-exhausted', { action: 'expand-pool', want: 4, timeout: '2s' }),
          rule('pool-drained', { action: 'expand-pool', want: 1000 }),
          rule('pool-on-fire', { action: 'explode' }),
          rule('pool-stuck', { action: 'hang', timeout: '500ms' }),
          rule('pool-unknown', { action: 'no-such-action' }),
        ],
      },
    });
    await waitFor(() => h.ready().length > 0, 15_000, 'the application to open its store');
  });
  after(() => h?.stop());

  const heal = async (kind: string) => {
    const f = h.agent.bus.publish('test', { kind, priority: 'P2', subject: 'store:demo', evidence: {} });
    await h.agent.orchestrator.idle();
    return h.agent.orchestrator.recentRecoveries().find((r) => r.failureId === f.id)!;
  };

  it('lists the actions the application registered (control op "actions")', async () => {
    const listed = await ControlClient.with(h.store, (c) => c.appActions());
    assert.deepEqual(listed.map((a) => a.name).sort(), ['expand-pool', 'explode', 'hang']);
    assert.equal(listed.find((a) => a.name === 'expand-pool')!.description, 'doubles the connection pool');
  });

  it('runs expand-pool for the failure a rule maps to it, verified by the application', async () => {
    const r = await heal('pool-exhausted');
    assert.equal(r.outcome, 'recovered', JSON.stringify(r));
    assert.deepEqual(r.attempts.map((a) => [a.action, a.verified]), [['app-action', true]]);
    assert.match(r.attempts[0]!.summary!, /application action "expand-pool" applied by the owner of store "demo"/);
  });

  it("fails when the application's verify says no", async () => {
    const r = await heal('pool-drained');
    assert.equal(r.outcome, 'failed', JSON.stringify(r));
    assert.equal(r.attempts[0]!.verified, false);
  });

  it('a throwing action fails with its message; a hanging one within its limit; the agent and the app go on', async () => {
    const fire = await heal('pool-on-fire');
    assert.equal(fire.outcome, 'failed');
    assert.match(fire.attempts[0]!.error!, /application action "explode" \(apply\) failed: .*the pool is on fire/);
    const t0 = performance.now();
    const stuck = await heal('pool-stuck');
    const took = performance.now() - t0;
    assert.equal(stuck.outcome, 'failed');
    assert.match(stuck.attempts[0]!.error!, /application action "hang" \(apply\) did not finish within 500 ms/);
    assert.ok(took < 3000, `the hanging action was given up after ${took.toFixed(0)} ms`);
    const unknown = await heal('pool-unknown');
    assert.match(unknown.attempts[0]!.error!, /registered no action "no-such-action" \(it has: expand-pool, explode, hang\)/);
    // Still up, the same instance, and healing still works.
    const st = await ControlClient.with(h.store, (c) => c.status());
    assert.equal(st.pid, h.ready()[0]);
    assert.equal((await heal('pool-exhausted')).outcome, 'recovered');
  });
});

import 'reflect-metadata';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { container, type DependencyContainer } from 'tsyringe';
import { validateConfig } from '../../../cli/config.js';
import type { Failure } from '../../../core/contracts/Failure.js';
import { HealingAction } from '../../../core/contracts/HealingAction.js';
import { createSelfHealer } from '../../../plugins/self-healer/healer.js';
import { Learning } from '../../../plugins/self-healer/learning.js';
import { compileRules } from '../../../plugins/self-healer/rules.js';
import { captureLogger } from '../../helpers/logCapture.js';

let c: DependencyContainer;
beforeEach(() => {
  c = container.createChildContainer();
});
afterEach(async () => {
  await c.dispose();
});

const failure = (kind = 'k', evidence: Record<string, unknown> = {}): Failure => ({ id: `f-${Math.random()}`, kind, priority: 'P1', subject: 's', evidence, detectedAt: Date.now(), source: 't', fingerprint: 'x' });

/** A recording action: `verifies` decides whether verify says yes. */
function action(id: string, events: string[], opts: { verifies?: boolean | (() => boolean); can?: boolean; hang?: boolean; undo?: boolean } = {}): HealingAction {
  return {
    id,
    canHandle: () => opts.can ?? true,
    apply: async () => {
      events.push(`apply:${id}`);
      if (opts.hang) await new Promise(() => undefined);
      return { summary: `${id} applied` };
    },
    verify: async () => {
      events.push(`verify:${id}`);
      const v = opts.verifies ?? true;
      return typeof v === 'function' ? v() : v;
    },
    ...(opts.undo === false ? {} : { undo: async () => void events.push(`undo:${id}`) }),
  };
}

function healerWith(rules: unknown, actions: HealingAction[], learnAfter = 3, actionTimeout = 5000) {
  for (const a of actions) c.register(HealingAction, { useValue: a });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-heal-'));
  const config = validateConfig({ healing: { rules, learnAfter, actionTimeout } }, path.join(dir, 'a.yaml'), {});
  const learning = new Learning(path.join(dir, 'learning.json'), learnAfter);
  return { healer: createSelfHealer({ container: c, rules: compileRules(config), learning, actionTimeoutMs: config.healing.actionTimeout, log: captureLogger().log }), learning, dir };
}

describe('self-healer', () => {
  it('undoes an action whose verify fails and tries the next alternative', async () => {
    const events: string[] = [];
    const { healer } = healerWith([{ on: 'k', do: [{ anyOf: ['flaky', 'solid'] }] }], [action('flaky', events, { verifies: false }), action('solid', events)]);
    const r = await healer.heal(failure(), new AbortController().signal);
    assert.equal(r.outcome, 'recovered');
    assert.deepEqual(events, ['apply:flaky', 'verify:flaky', 'undo:flaky', 'apply:solid', 'verify:solid']);
    assert.deepEqual(r.attempts.map((a) => [a.action, a.verified, a.undone]), [['flaky', false, true], ['solid', true, false]]);
  });

  it('runs a rule\'s steps in sequence, skipping one no action can handle', async () => {
    const events: string[] = [];
    const { healer } = healerWith([{ on: 'k', do: ['first', 'not-mine', 'second'] }], [action('first', events), action('not-mine', events, { can: false }), action('second', events)]);
    const r = await healer.heal(failure(), new AbortController().signal);
    assert.equal(r.outcome, 'recovered');
    assert.deepEqual(events, ['apply:first', 'verify:first', 'apply:second', 'verify:second']);
  });

  it('fails when a step has no action that verifies, and says which', async () => {
    const events: string[] = [];
    const { healer } = healerWith([{ on: 'k', do: ['ok', 'broken', 'never'] }], [action('ok', events), action('broken', events, { verifies: false }), action('never', events)]);
    const r = await healer.heal(failure(), new AbortController().signal);
    assert.equal(r.outcome, 'failed');
    assert.match(r.reason!, /step 2 \(broken\)/);
    assert.ok(!events.includes('apply:never'));
  });

  it('times out an action that hangs and goes on with the next', async () => {
    const events: string[] = [];
    const { healer } = healerWith([{ on: 'k', do: [{ anyOf: [{ action: 'stuck', timeout: 100 }, 'solid'] }] }], [action('stuck', events, { hang: true }), action('solid', events)]);
    const t0 = Date.now();
    const r = await healer.heal(failure(), new AbortController().signal);
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(r.outcome, 'recovered');
    assert.match(r.attempts[0]!.error!, /timed out after 100 ms/);
  });

  it('learns which alternative works and tries it first once it has enough samples', async () => {
    const events: string[] = [];
    const { healer, learning } = healerWith([{ on: 'k', do: [{ anyOf: ['a', 'b'] }] }], [action('a', events, { verifies: false, undo: false }), action('b', events)], 3);
    for (let i = 0; i < 3; i++) await healer.heal(failure(), new AbortController().signal);
    assert.deepEqual(learning.get('k', 'a'), { attempts: 3, successes: 0, totalMs: learning.get('k', 'a')!.totalMs });
    events.length = 0;
    const r = await healer.heal(failure(), new AbortController().signal);
    assert.equal(r.outcome, 'recovered');
    assert.deepEqual(events, ['apply:b', 'verify:b'], 'the learned best goes first');
    // Another failure kind has not learned anything: configured order.
    events.length = 0;
    await healer.heal({ ...failure(), kind: 'k' }, new AbortController().signal);
    const other = healerWith([{ on: 'z', do: [{ anyOf: ['a', 'b'] }] }], []);
    assert.deepEqual(other.learning.order('z', [{ action: 'a', options: {} }, { action: 'b', options: {} }]).map((x) => x.action), ['a', 'b']);
  });

  it('says so when no rule matches, and names a missing action', async () => {
    const { healer } = healerWith([{ on: 'k', do: ['ghost'] }], []);
    const none = await healer.heal(failure('other'), new AbortController().signal);
    assert.equal(none.outcome, 'no-action');
    assert.match(none.reason!, /no healing rule for failure kind "other"/);
    const ghost = await healer.heal(failure(), new AbortController().signal);
    assert.equal(ghost.outcome, 'no-action');
    assert.match(ghost.attempts[0]!.error!, /no running plugin provides/);
  });

  it('matches conditions on priority, subject and evidence', async () => {
    const events: string[] = [];
    const { healer } = healerWith(
      [
        { on: 'k', when: { evidence: { store: 'a' } }, do: ['for-a'] },
        { on: 'k', when: { subject: '^s$' }, do: ['for-s'] },
      ],
      [action('for-a', events), action('for-s', events)],
    );
    await healer.heal(failure('k', { store: 'a' }), new AbortController().signal);
    await healer.heal(failure('k', { store: 'b' }), new AbortController().signal);
    assert.deepEqual(events.filter((e) => e.startsWith('apply')), ['apply:for-a', 'apply:for-s']);
  });
});

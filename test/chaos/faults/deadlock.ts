/**
 * Deadlocks under load: the writer (armed through writerFaults.ts) runs two transactions that
 * take two pages' locks in opposite orders while its workers keep committing. The store's own
 * deadlock detector (plugins/pagestore/lockManager.ts) must abort one of them (RA_ERR_DEADLOCK)
 * within the seed's 1 s, the other must commit, and the workload must go on. The agent has no
 * part in it — a deadlock is the store's to break, not a failure to report — so the kind expects
 * nothing of it (a failure it reported would be a false one); the RTO is the writer's own measure,
 * both lock requests made → the victim's abort.
 */
import { readFileSync } from 'node:fs';
import { armWriterFault, type DeadlockDrillMessage } from '../writerFaults.js';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

const KIND: FaultKind = {
  name: 'deadlock',
  description: 'two writer transactions lock two pages in opposite orders under load; the store aborts one (the agent need not act)',
  target: 'deadlock',
  expects: { type: 'none', quietMs: 3000 },
};

function drills(record: string): DeadlockDrillMessage[] {
  return readFileSync(record, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{"t":"deadlock-drill"'))
    .map((l) => JSON.parse(l) as DeadlockDrillMessage);
}

export const deadlock: FaultFamily = {
  name: 'deadlock',
  kinds: [KIND],

  /** Nothing outside the store is needed: its lock manager is the subject. */
  async probe() {
    return null;
  },

  async inject(_k: FaultKind, ctx: FaultContext): Promise<Injected> {
    armWriterFault(ctx.store, 'deadlock');
    return { what: 'deadlock drill armed in the writer (two transactions, opposite lock orders)' };
  },

  async heal() {},

  async measure(_k: FaultKind, ctx: FaultContext) {
    const d = drills(ctx.record).pop();
    if (!d) return { rtoMs: null, problems: ['the writer ran no deadlock drill (no deadlock-drill line in its record)'] };
    const problems: string[] = [];
    ctx.log(`deadlock drill on pages ${d.pages.join(' and ')}: victim after ${d.victimMs} ms, committed ${d.committed}`);
    if (d.victimMs === null) problems.push(`no transaction of the drill on pages ${d.pages.join(' and ')} was aborted as a deadlock victim${d.error ? `: ${d.error}` : ''}`);
    if (d.committed === null) problems.push(`neither transaction of the drill committed${d.error ? `: ${d.error}` : ''}`);
    return { rtoMs: d.victimMs === null ? null : Math.ceil(d.victimMs), problems };
  },
};

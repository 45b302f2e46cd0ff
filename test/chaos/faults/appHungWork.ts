/**
 * A hung application that still answers its heartbeat (issue #17): the writer (armed through
 * writerFaults.ts, `hang-work`) gets its work loop stuck — each worker's next transaction waits
 * forever before its commit, its pages written and locked — while its heartbeat timer, its
 * checkpoints and its store's control socket go on. Heartbeats alone would call it alive. The
 * crash detector's work probe (plugins/crash-detector/workWatch.ts) must see that nothing commits
 * while transactions are open — `process-hang` with `reason: 'no-work'` — and `restart-process`
 * must kill and restart it; the stuck transactions were never acknowledged, so the history loses
 * nothing. The probe is scaled down for the trial (a 2 s timeout read every 250 ms; defaults 30 s
 * and 1 s).
 */
import { armWriterFault } from '../writerFaults.js';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

const KIND: FaultKind = {
  name: 'app-hung-work',
  description: "the writer's work loop blocks with transactions open while its heartbeat goes on: process-hang (no-work) → restart-process",
  target: 'instance-crash',
  expects: { type: 'failure', kinds: ['process-hang'] },
  agent: () => ({ process: { workWatch: { interval: '250ms', timeout: '2s' } } }),
};

export const appHungWork: FaultFamily = {
  name: 'app-hung-work',
  kinds: [KIND],

  /** Needs nothing of the machine: the writer hangs itself. */
  async probe() {
    return null;
  },

  async inject(_k: FaultKind, ctx: FaultContext): Promise<Injected> {
    armWriterFault(ctx.store, 'hang-work');
    return { what: `work loop of the writer (pid ${ctx.appPid()}) stuck before its commits, heartbeat left running` };
  },

  async heal() {},
};

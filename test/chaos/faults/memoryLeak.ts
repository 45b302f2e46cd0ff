/**
 * A leaking application: the writer (armed through writerFaults.ts) starts growing its RSS by
 * 30 MiB a second under a `memoryLimit` of 400 MiB in the generated config; at the limit it exits
 * 137 as the OOM killer would make it. The agent's health monitor must predict the exhaustion
 * from the RSS trend (memory-leak, P2) and `graceful-restart` must checkpoint the store through
 * its owner and restart the writer before it gets there — no crash, no acknowledged commit lost.
 * The prediction's horizon and windows are scaled down (a 10 s horizon), as in test/plugins/healmem/.
 */
import os from 'node:os';
import { armWriterFault } from '../writerFaults.js';
import type { FaultContext, FaultFamily, FaultKind, Injected } from './types.js';

const MiB = 2 ** 20;
const LIMIT_MIB = 400;
const RATE_MIB = 30;

const KIND: FaultKind = {
  name: 'memory-leak',
  description: `the writer's RSS grows ${RATE_MIB} MiB/s under memoryLimit ${LIMIT_MIB} MiB (exit 137 at the limit): memory-leak → graceful-restart before it`,
  target: 'memory-leak',
  expects: { type: 'failure', kinds: ['memory-leak'] },
  agent: () => ({
    process: { memoryLimit: `${LIMIT_MIB}MiB` },
    health: { interval: '100ms', sustain: 3000, prediction: { window: '4s', recent: '2s', horizon: '10s', guard: 0.75, sustain: 5, minProbability: 0.5 } },
  }),
};

export const memoryLeak: FaultFamily = {
  name: 'memory-leak',
  kinds: [KIND],

  /** The leak needs the memory to be there: the limit, twice over, free on the host. */
  async probe() {
    const free = os.freemem();
    return free >= 2 * LIMIT_MIB * MiB ? null : `${Math.round(free / MiB)} MiB of memory free, under the ${2 * LIMIT_MIB} MiB a ${LIMIT_MIB} MiB leak needs to stay safe`;
  },

  async inject(_k: FaultKind, ctx: FaultContext): Promise<Injected> {
    armWriterFault(ctx.store, `leak ${RATE_MIB} ${LIMIT_MIB}`);
    return { what: `leak of ${RATE_MIB} MiB/s armed in the writer (pid ${ctx.appPid()}), memoryLimit ${LIMIT_MIB} MiB` };
  },

  async heal() {},
};

/**
 * restart-process: the healing action that starts a crashed or hung supervised process again,
 * through the crash detector's ProcessSupervisor (so its backoff and start-rate limit apply).
 *
 * - canHandle: a `process-crash` or `process-hang` of a configured, supervised process whose
 *   restart policy allows it (never: no; on-failure: a non-zero exit, a signal, a failed start
 *   or a hang; always: any).
 * - apply: a hung process is killed first (SIGKILL) and its exit awaited; then restarted.
 * - verify: the process runs under a new pid and, if it has a heartbeat, has sent one since the
 *   restart (without a heartbeat: it is still up after `settle`). Rule options: `verifyTimeout`
 *   (default: the heartbeat timeout + 1 s, or settle + 1 s) and `settle` (default 250ms).
 * - no undo: a process that does not come back is left to the start-rate limit and escalation.
 */
import { HealingAction, isHealingAction, type HealingContext } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { parseDuration } from '../../core/config/units.js';
import { raError } from '../../core/errors.js';
import type { AgentConfig } from '../../core/config/schema.js';
import { definePlugin } from '../../core/plugin.js';
import { PROCESS_CRASH, PROCESS_HANG, ProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import { sleep } from '../../core/sleep.js';

type ProcessConfig = AgentConfig['processes'][number];

const DEFAULT_SETTLE_MS = 250;
const VERIFY_POLL_MS = 20;

export default definePlugin({
  id: 'restart-process',
  contractVersion: '^1.0.0',
  deps: { supervisor: ProcessSupervisor },
  provides: [HealingAction],
  register(ctx, { supervisor }) {
    const processes = new Map(ctx.config.processes.map((p) => [p.id, p]));

    /** The supervised process a failure is about, if it is one of ours. */
    const processOf = (failure: Failure): ProcessConfig | undefined => {
      if (failure.kind !== PROCESS_CRASH && failure.kind !== PROCESS_HANG) return undefined;
      const id = failure.evidence.processId;
      const cfg = typeof id === 'string' ? processes.get(id) : undefined;
      return cfg?.command !== undefined ? cfg : undefined;
    };

    const action: HealingAction = {
      id: 'restart-process',

      canHandle(failure) {
        const cfg = processOf(failure);
        if (cfg === undefined) return false;
        switch (cfg.restart.policy) {
          case 'never':
            return false;
          case 'always':
            return true;
          case 'on-failure': {
            if (failure.kind === PROCESS_HANG) return true;
            const { exitCode, signal, spawnError, adopted } = failure.evidence;
            // An adopted process (started by an agent that crashed) was not our child: how it
            // ended is unknown, and a writer left down is the worse mistake, so it counts as a failure.
            return (typeof exitCode === 'number' && exitCode !== 0) || typeof signal === 'string' || typeof spawnError === 'string' || adopted === true;
          }
        }
      },

      async apply(failure, hctx) {
        const cfg = processOf(failure);
        if (cfg === undefined) throw raError('RA_ERR_USAGE', `restart-process cannot handle failure ${failure.id} (${failure.kind} of ${failure.subject})`);
        const sup = supervisor;
        const failedPid = failure.evidence.pid;
        const now = sup.get(cfg.id)!;
        if (now.state === 'running' && now.pid !== null && now.pid !== failedPid) {
          return { summary: `process ${cfg.id} already runs again under pid ${now.pid}`, details: { processId: cfg.id, pid: now.pid } };
        }
        if (failure.kind === PROCESS_HANG && now.pid !== null && now.pid === failedPid) {
          hctx.log.info({ processId: cfg.id, processPid: now.pid }, 'killing the hung process before restarting it');
          await abortable(sup.stop(cfg.id, { graceMs: 0 }), hctx.signal);
        }
        const { pid } = await abortable(sup.restart(cfg.id, `${failure.kind} ${failure.id}`), hctx.signal);
        return { summary: `restarted process ${cfg.id}: pid ${String(failedPid)} → ${pid}`, details: { processId: cfg.id, oldPid: failedPid, pid } };
      },

      async verify(failure, hctx) {
        const cfg = processOf(failure);
        if (cfg === undefined) return false;
        const sup = supervisor;
        const settleMs = durationOption(hctx, 'settle') ?? DEFAULT_SETTLE_MS;
        const timeoutMs = durationOption(hctx, 'verifyTimeout') ?? (cfg.heartbeat !== undefined ? cfg.heartbeat.timeout : settleMs) + 1000;
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const s = sup.get(cfg.id)!;
          const fresh = s.state === 'running' && s.pid !== null && s.pid !== failure.evidence.pid && s.startedAt !== null;
          if (fresh) {
            const alive = cfg.heartbeat !== undefined ? s.lastHeartbeatAt !== null && s.lastHeartbeatAt >= s.startedAt! : Date.now() - s.startedAt! >= settleMs;
            if (alive) return true;
          }
          // The instance apply started has exited already: no heartbeat can come from it, so the
          // answer is no now, not at the deadline (a writer failing on a disk that still returns
          // EIO exits within 0.6 s; waiting out the bound kept the next restart 4 s away).
          const died = s.lastExit;
          if (s.state !== 'running' && died !== null && died.pid !== null && died.pid !== failure.evidence.pid && died.at >= failure.detectedAt) {
            hctx.log.warn({ processId: cfg.id, state: s.state, processPid: died.pid, exitCode: died.code, signal: died.signal, uptimeMs: died.uptimeMs }, 'restarted process exited again');
            return false;
          }
          if (Date.now() >= deadline || hctx.signal.aborted) {
            hctx.log.warn({ processId: cfg.id, state: s.state, processPid: s.pid, lastHeartbeatAt: s.lastHeartbeatAt, timeoutMs }, 'restarted process not confirmed alive');
            return false;
          }
          await sleep(VERIFY_POLL_MS, hctx.signal);
        }
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

/** A rule option given as a duration (`2s`) or milliseconds. */
function durationOption(hctx: HealingContext, key: string): number | undefined {
  const v = hctx.options?.[key];
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw raError('RA_ERR_CONFIG', `restart-process option ${key} must be a duration such as 500ms or 5s (got ${JSON.stringify(v)})`);
  return ms;
}

/** Settles like `p`, or rejects when `signal` aborts first (the work itself goes on). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(raError('RA_ERR_PROCESS_STATE', 'restart-process was aborted (timeout or agent stopping)'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(raError('RA_ERR_PROCESS_STATE', 'restart-process was aborted (timeout or agent stopping)'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

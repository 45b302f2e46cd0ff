/**
 * The `graceful-restart` healing action, the default answer to `memory-leak` (the health
 * monitor's RSS trend of a supervised process predicts it reaches its memory limit within the
 * horizon): restart the process on our terms before the OOM killer does it on its own.
 *
 * - apply: the process's store (`processes[].store`) is checkpointed by its owner through the
 *   control socket (so the restart replays little), the process is stopped (SIGTERM, SIGKILL
 *   after its `stopGrace`: the application closes its store), the store is checked to need no
 *   crash recovery, and the process is started again through the ProcessSupervisor (its
 *   start-rate limit applies). A checkpoint that cannot be asked for (no control socket) is
 *   noted and the restart goes on: the restart is what frees the memory. The wait for the
 *   checkpoint is bounded by the predicted exhaustion less `stopGrace` and a margin
 *   (checkpointBudget.ts; rule options `checkpointMargin`, `checkpointTimeout`).
 * - verify: a new pid runs, its RSS (read from /proc) is below the failure's `thresholdBytes`
 *   (the prediction's guard line; else 80 % of `limitBytes`), the store needed no recovery when
 *   the old process had stopped, and — when the old owner served a control socket — the new
 *   one serves it too, as the new pid (it has the store open). Rule options: `verifyTimeout`
 *   (default 10 s).
 */
import { readFile } from 'node:fs/promises';
import { HealingAction, isHealingAction } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { withOwner } from '../../core/contracts/PageEngine.js';
import { checkpointBudgetMs, checkpointWithin, predictedExhaustion } from './checkpointBudget.js';
import { ProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { parseDuration } from '../../core/config/units.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { describeError, raError } from '../../core/errors.js';
import { definePlugin, many } from '../../core/plugin.js';
import { sleep } from '../../core/sleep.js';

const MEMORY_LEAK = 'memory-leak';
const POLL_MS = 50;

async function rssOf(pid: number): Promise<number | null> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => null);
  const m = text ? /^VmRSS:\s+(\d+)\s+kB/m.exec(text) : null;
  return m ? Number(m[1]) * 1024 : null;
}

interface Restarted {
  store: string | null;
  /** The owner answered the checkpoint through its control socket. */
  checkpointed: boolean;
  /** What crash recovery would still have had to do once the old process stopped (null: nothing). */
  pendingAfterStop: string | null;
  pid: number;
}

export default definePlugin({
  id: 'graceful-restart',
  contractVersion: '^1.0.0',
  deps: { supervisor: ProcessSupervisor, engines: many(StorageEngine) },
  provides: [HealingAction],
  register(ctx, { supervisor, engines }) {
    const processes = new Map(ctx.config.processes.map((p) => [p.id, p]));
    const stores = new Map(storesWithPageEngines(engines, ctx.config.stores).usable.map((s) => [s.id, { dir: s.path, engine: s.pageEngine }]));
    const done = new Map<string, Restarted>();
    const processOf = (f: Failure) => {
      const id = f.evidence.processId;
      const cfg = f.kind === MEMORY_LEAK && typeof id === 'string' ? processes.get(id) : undefined;
      return cfg?.command !== undefined ? cfg : undefined;
    };

    const action: HealingAction = {
      id: 'graceful-restart',
      canHandle: (f) => processOf(f) !== undefined,
      async apply(f, hctx) {
        const cfg = processOf(f);
        if (!cfg) throw raError('RA_ERR_USAGE', `graceful-restart cannot handle failure ${f.id} (${f.kind} of ${f.subject})`);
        const store = cfg.store !== undefined && stores.has(cfg.store) ? cfg.store : null;
        const now = supervisor.get(cfg.id)!;
        if (now.state === 'running' && now.pid !== null && now.pid !== f.evidence.pid) {
          throw raError('RA_ERR_PROCESS_STATE', `process ${cfg.id} already runs under another pid (${now.pid}) than the leaking one (${String(f.evidence.pid)})`);
        }
        let checkpointed = false;
        let checkpointError: string | null = null;
        if (store) {
          const { dir, engine } = stores.get(store)!;
          // Bounded by the predicted exhaustion: the restart must come before the OOM killer.
          const budgetMs = checkpointBudgetMs(f, { now: Date.now(), stopGraceMs: cfg.stopGrace, marginMs: durationOption(hctx.options.checkpointMargin), capMs: durationOption(hctx.options.checkpointTimeout) });
          if (budgetMs === 0) {
            checkpointError = 'no time left before the predicted exhaustion';
            hctx.log.warn({ store, predictedAt: predictedExhaustion(f) }, 'no time to checkpoint the store before the restart; restarting at once');
          } else {
            try {
              const k = await checkpointWithin(engine, dir, budgetMs);
              checkpointed = true;
              hctx.log.info({ store, budgetMs, ...k }, 'store checkpointed by its owner before the restart');
            } catch (err) {
              checkpointError = describeError(err);
              hctx.log.warn({ store, budgetMs, err: checkpointError }, 'cannot checkpoint the store before the restart; restarting all the same');
            }
          }
        }
        if (hctx.signal.aborted) throw raError('RA_ERR_PROCESS_STATE', 'graceful-restart was aborted (timeout or agent stopping)');
        await supervisor.stop(cfg.id);
        const pendingAfterStop = store ? await stores.get(store)!.engine.recoveryPending(stores.get(store)!.dir) : null;
        const { pid } = await supervisor.restart(cfg.id, `${f.kind} ${f.id}`);
        done.set(f.id, { store, checkpointed, pendingAfterStop, pid });
        return {
          summary: `restarted process ${cfg.id} (RSS ${String(f.evidence.rssBytes)} of ${String(f.evidence.limitBytes)} bytes): pid ${String(f.evidence.pid)} → ${pid}` + (store ? `; store "${store}" ${checkpointed ? 'checkpointed first' : `not checkpointed (${checkpointError})`}, ${pendingAfterStop === null ? 'clean' : `left needing recovery (${pendingAfterStop})`} after the stop` : ''),
          details: { processId: cfg.id, oldPid: f.evidence.pid, pid, store, checkpointed, checkpointError, pendingAfterStop },
        };
      },
      async verify(f, hctx) {
        const r = done.get(f.id);
        const cfg = processOf(f);
        if (!r || !cfg) return false;
        if (r.pendingAfterStop !== null) return false;
        const timeoutMs = durationOption(hctx.options.verifyTimeout) ?? 10_000;
        const limit = Number(f.evidence.limitBytes);
        const threshold = Number(f.evidence.thresholdBytes) > 0 ? Number(f.evidence.thresholdBytes) : limit * 0.8;
        const deadline = performance.now() + timeoutMs;
        let last: Record<string, unknown> = {};
        for (;;) {
          const s = supervisor.get(cfg.id)!;
          const fresh = s.state === 'running' && s.pid !== null && s.pid !== f.evidence.pid;
          const rss = fresh ? await rssOf(s.pid!) : null;
          let ownerOk = !r.checkpointed;
          if (fresh && r.checkpointed && r.store) {
            const { dir, engine } = stores.get(r.store)!;
            ownerOk = await withOwner(engine, dir, (o) => o.status(), { timeoutMs: 2000 }).then((st) => st.pid === s.pid, () => false);
          }
          last = { state: s.state, pid: s.pid, rss, threshold, ownerOk };
          if (fresh && rss !== null && rss < threshold && ownerOk) {
            done.delete(f.id);
            return true;
          }
          if (performance.now() >= deadline || hctx.signal.aborted) break;
          await sleep(POLL_MS, hctx.signal).catch(() => undefined);
        }
        hctx.log.warn(last, 'restarted process not confirmed: not running, RSS still high, or its store not open');
        return false;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

/** A rule option given as a duration (`2s`) or milliseconds; undefined when absent or not one. */
function durationOption(opt: unknown): number | undefined {
  return typeof opt === 'string' || typeof opt === 'number' ? parseDuration(opt) : undefined;
}

/**
 * How long graceful-restart may wait for the owner's checkpoint before it restarts a leaking
 * process. The checkpoint only makes the restart replay less; the restart is what frees the
 * memory, and it must come before the OOM killer. So the wait is bounded by the predicted time
 * of exhaustion (the failure's `predictedAt`, else its detection plus `etaSeconds`) less a
 * margin: the process's `stopGrace` (the stop may take that long before its SIGKILL) plus the
 * rule's `checkpointMargin` (default 1 s). Never more than `checkpointTimeout` (default 30 s, the
 * control socket's own timeout); with no time left (under 100 ms), no checkpoint is asked for.
 */
import type { Failure } from '../../core/contracts/Failure.js';
import type { LiveOwner, PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';

export const DEFAULT_CHECKPOINT_MARGIN_MS = 1000;
export const DEFAULT_CHECKPOINT_TIMEOUT_MS = 30_000;
/** Below this, a checkpoint is not worth starting. */
export const MIN_CHECKPOINT_MS = 100;

/** When the failure predicts the process reaches its limit (epoch ms), or null if it does not say. */
export function predictedExhaustion(f: Failure): number | null {
  const at = f.evidence.predictedAt;
  if (typeof at === 'number' && Number.isFinite(at)) return at;
  const eta = f.evidence.etaSeconds;
  return typeof eta === 'number' && Number.isFinite(eta) ? f.detectedAt + eta * 1000 : null;
}

/** The time the checkpoint may take from `now`: 0 when none should be asked for. */
export function checkpointBudgetMs(f: Failure, o: { now: number; stopGraceMs: number; marginMs?: number; capMs?: number }): number {
  const cap = o.capMs ?? DEFAULT_CHECKPOINT_TIMEOUT_MS;
  const at = predictedExhaustion(f);
  const left = at === null ? cap : Math.min(cap, at - o.now - o.stopGraceMs - (o.marginMs ?? DEFAULT_CHECKPOINT_MARGIN_MS));
  return left < MIN_CHECKPOINT_MS ? 0 : Math.floor(left);
}

/**
 * The owner's checkpoint of the store in `dir`, given up after `budgetMs` (connecting included):
 * RA_ERR_CONTROL when it takes longer. A checkpoint still running in the owner then finishes or
 * not; the restart does not wait for it.
 */
export async function checkpointWithin(engine: PageEngine, dir: string, budgetMs: number): Promise<Awaited<ReturnType<LiveOwner['checkpoint']>>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(raError('RA_ERR_CONTROL', `the owner's checkpoint took more than ${budgetMs} ms, the time left before the predicted exhaustion less the margin`)), budgetMs);
  });
  let gaveUp = false;
  const connecting = engine.connectOwner(dir, { timeoutMs: budgetMs });
  // A connection that comes after we gave up is closed at once.
  void connecting.then((o) => gaveUp && o.close(), () => undefined);
  try {
    const owner = await Promise.race([connecting, late]);
    try {
      return await Promise.race([owner.checkpoint(), late]);
    } finally {
      owner.close();
    }
  } finally {
    gaveUp = true;
    clearTimeout(timer);
  }
}

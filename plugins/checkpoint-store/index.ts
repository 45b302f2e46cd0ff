/**
 * The `checkpoint-store` healing action: checkpoints the stores a failure names, so their old
 * WAL segments are recycled and the space comes back. The default answer to
 * `predicted-exhaustion` (the health monitor names the stores on a filling filesystem).
 *
 * The agent does not own stores; it reaches them through their engine's page face
 * (core/contracts/PageEngine.ts). A store nobody has open is recovered here (`recover` takes its
 * lock, brings it to a consistent state and ends with a checkpoint that recycles the WAL before
 * the new redo point, handing retired segments to the store's archiver first). A store whose
 * lock a live process holds is checkpointed by that owner, asked through the engine's channel
 * to it (`connectOwner`: the page store's control socket); an owner that serves none makes the
 * action fail with RA_ERR_STORE_LOCKED, naming it, and the healer escalates. A store whose
 * engine has no page face is not taken (logged at start).
 *
 * Verified independently of apply: each store's WAL since its checkpoint is at most one
 * segment, and — when the failure says how fast space went and how far ahead it looked — what
 * is free now lasts at least that horizon at that rate.
 */
import { statfs } from 'node:fs/promises';
import { definePlugin, many, optional } from '../../core/plugin.js';
import { keyedSerialQueues } from '../../core/serial.js';
import { HealingAction, isHealingAction, type HealingContext } from '../../core/contracts/HealingAction.js';
import { type Failure, storesOf } from '../../core/contracts/Failure.js';
import { LogArchiverSource, withOwner, type PageEngine } from '../../core/contracts/PageEngine.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { describeError, isRaError, raError } from '../../core/errors.js';

interface Done {
  store: string;
  walBefore: number;
  walAfter: number;
  segmentsBefore: number;
  segmentsAfter: number;
  durationMs: number;
}

export default definePlugin({
  id: 'checkpoint-store',
  contractVersion: '^1.0.0',
  // The engines, and the log archiver (the WAL a checkpoint retires is archived first), start first.
  deps: { engines: many(StorageEngine), archivers: optional(LogArchiverSource) },
  provides: [HealingAction],
  register(ctx, { engines, archivers }) {
    const { usable, skipped } = storesWithPageEngines(engines, ctx.config.stores);
    for (const { store, reason } of skipped) ctx.log.info({ store: store.id, engine: store.engine }, `store not checkpointed by this action: ${reason}`);
    const stores = new Map(usable.map((s) => [s.id, { dir: s.path, engine: s.pageEngine }]));
    /** One checkpoint at a time per store: two failures about one filesystem must not race for its lock. */
    const serial = keyedSerialQueues();
    const named = (f: Failure) => storesOf(f).filter((id) => stores.has(id));

    const checkpoint = (id: string, signal: AbortSignal): Promise<Done> =>
      serial(id, async () => {
        if (signal.aborted) throw signal.reason;
        const { dir, engine } = stores.get(id)!;
        const t0 = performance.now();
        const before = await engine.logUsage(dir);
        try {
          // The WAL this checkpoint retires must reach the archive first, or restores lose the chain.
          const archiver = archivers?.archiverFor(dir, await engine.files.rememberedArchive(dir));
          // Takes the lock, recovers, checkpoints (recycling the WAL before the new redo point), releases the lock.
          await engine.recover(dir, archiver ? { archiver } : {});
        } catch (err) {
          if (!isRaError(err, 'RA_ERR_STORE_LOCKED')) throw err;
          await checkpointThroughOwner(id, engine, dir, err);
        }
        const after = await engine.logUsage(dir);
        return { store: id, walBefore: before.sinceCheckpointBytes, walAfter: after.sinceCheckpointBytes, segmentsBefore: before.segments, segmentsAfter: after.segments, durationMs: Math.round(performance.now() - t0) };
      });

    /** Asks the live owner to checkpoint, through the engine's channel to it (the page store's control socket). */
    const checkpointThroughOwner = async (id: string, engine: PageEngine, dir: string, locked: { details: Readonly<Record<string, unknown>> }) => {
      const pid = locked.details.pid;
      const k = await withOwner(engine, dir, (owner) => owner.checkpoint()).catch((err: unknown) => {
        if (!isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) throw err;
        throw raError(
          'RA_ERR_STORE_LOCKED',
          `store "${id}" is open by live process ${typeof pid === 'number' ? pid : '?'}, which serves no control socket to ask for a checkpoint; only it can checkpoint the store (it does so by itself every 64 MiB of WAL or 5 minutes)`,
          { cause: err, details: { store: id, ...locked.details } },
        );
      });
      ctx.log.info({ store: id, owner: pid, ...k }, 'store checkpointed by its owner, through its control socket');
    };

    const action: HealingAction = {
      id: 'checkpoint-store',
      canHandle: (f) => named(f).length > 0 && (f.evidence.unit === undefined || f.evidence.unit === 'bytes'),
      async apply(f, hctx: HealingContext) {
        const done: Done[] = [];
        const failed: string[] = [];
        let firstError: unknown;
        for (const id of named(f)) {
          try {
            done.push(await checkpoint(id, hctx.signal));
          } catch (err) {
            firstError ??= err;
            failed.push(`${id}: ${describeError(err)}`);
            hctx.log.warn({ store: id, err: describeError(err) }, 'cannot checkpoint store');
          }
        }
        if (done.length === 0) throw isRaError(firstError) && failed.length === 1 ? firstError : raError('RA_ERR_STORE_LOCKED', `no store could be checkpointed: ${failed.join('; ')}`, { cause: firstError });
        const freed = done.reduce((a, d) => a + Math.max(0, d.walBefore - d.walAfter), 0);
        return {
          summary: `checkpointed ${done.map((d) => `"${d.store}"`).join(', ')}: ${done.reduce((a, d) => a + d.segmentsBefore - d.segmentsAfter, 0)} WAL segment(s) recycled, ${freed} bytes of WAL let go` + (failed.length ? `; not checkpointed: ${failed.join('; ')}` : ''),
          details: { stores: done, failed },
        };
      },
      async verify(f) {
        const ids = named(f);
        const rate = Number(f.evidence.ratePerSecond);
        const horizon = Number(f.evidence.horizonSeconds);
        for (const id of ids) {
          const { dir, engine } = stores.get(id)!;
          const u = await engine.logUsage(dir);
          if (u.sinceCheckpointBytes > u.segmentSize) return false;
          if (rate > 0 && horizon > 0) {
            const s = await statfs(dir);
            if (s.bavail * s.bsize < rate * horizon) return false;
          }
        }
        return ids.length > 0;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

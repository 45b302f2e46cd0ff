/**
 * The `app-action` healing action: runs an action the application registered on its store's
 * control socket (`store.control.registerAction(name, { apply, verify })`, plugins/pagestore/
 * appActions.ts), so a third party heals what only it understands — its connection pool, its
 * own caches — and says itself whether that worked:
 *
 *   healing:
 *     rules:
 *       - on: pool-exhausted
 *         do: [{ action: app-action, options: { action: expand-pool, timeout: 5s } }]
 *
 * Options: `action` (required, the registered name), `timeout` (each phase's limit in the
 * application, default 10 s), `store` (which store's owner to ask; default the one the failure
 * names: `evidence.stores`, `evidence.store`, a subject `store:<id>`, or the store of
 * `evidence.processId`). Every other option, and the failure (`id`, `kind`, `subject`,
 * `evidence`), is handed to the application's `apply` and `verify`.
 *
 * apply runs the app's apply; verify runs the app's verify (its own observation, not apply's
 * word). A throwing action fails with RA_ERR_APP_ACTION and its message; one that overruns its
 * limit with RA_ERR_APP_ACTION_TIMEOUT — the owner answers that itself, so the agent neither
 * waits nor crashes; an owner that does not answer at all is cut off 2 s after the limit.
 */
import { HealingAction, isHealingAction, type HealingContext } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { withOwner } from '../../core/contracts/PageEngine.js';
import { StorageEngine } from '../../core/contracts/StorageEngine.js';
import { parseDuration } from '../../core/config/units.js';
import { storesWithPageEngines } from '../../core/engines.js';
import { raError } from '../../core/errors.js';
import { definePlugin, many } from '../../core/plugin.js';

const DEFAULT_TIMEOUT_MS = 10_000;
/** How long past the action's own limit an owner that answers nothing is waited for. */
const ANSWER_SLACK_MS = 2000;
const OWN_OPTIONS = new Set(['action', 'timeout', 'store']);

export default definePlugin({
  id: 'app-action',
  contractVersion: '^1.0.0',
  deps: { engines: many(StorageEngine) },
  provides: [HealingAction],
  register(ctx, { engines }) {
    const stores = new Map(storesWithPageEngines(engines, ctx.config.stores).usable.map((s) => [s.id, { dir: s.path, engine: s.pageEngine }]));
    const storeOfProcess = new Map(ctx.config.processes.flatMap((p) => (p.store ? [[p.id, p.store] as const] : [])));

    /** The store whose owner to ask: the option's, else the first configured one the failure names. */
    const storeOf = (f: Failure, options: Readonly<Record<string, unknown>> = {}): string | undefined => {
      if (typeof options.store === 'string') return stores.has(options.store) ? options.store : undefined;
      const { stores: many, store, processId } = f.evidence;
      const candidates = [...(Array.isArray(many) ? many : []), store, /^store:(.+)$/.exec(f.subject)?.[1], typeof processId === 'string' ? storeOfProcess.get(processId) : undefined];
      return candidates.find((s): s is string => typeof s === 'string' && stores.has(s));
    };

    const run = async (f: Failure, hctx: HealingContext, phase: 'apply' | 'verify'): Promise<{ store: string; name: string; result: unknown }> => {
      const name = hctx.options.action;
      if (typeof name !== 'string' || name.length === 0) throw raError('RA_ERR_CONFIG', 'app-action needs options.action, the name of the action the application registered');
      const t = hctx.options.timeout;
      const timeoutMs = t === undefined ? DEFAULT_TIMEOUT_MS : typeof t === 'string' || typeof t === 'number' ? parseDuration(t) : undefined;
      if (timeoutMs === undefined) throw raError('RA_ERR_CONFIG', `app-action option timeout must be a duration such as 500ms or 5s (got ${JSON.stringify(t)})`);
      const store = storeOf(f, hctx.options);
      if (!store) throw raError('RA_ERR_USAGE', `app-action: failure ${f.id} names no configured store whose owner could run "${name}"`);
      const { dir, engine } = stores.get(store)!;
      const appOptions = Object.fromEntries(Object.entries(hctx.options).filter(([k]) => !OWN_OPTIONS.has(k)));
      const result = await withOwner(
        engine,
        dir,
        async (o) => {
          if (!o.runAppAction) throw raError('RA_ERR_CONTROL', `the owner of store "${store}" runs no application actions (an older engine)`);
          return o.runAppAction(name, phase, { ...appOptions, failure: { id: f.id, kind: f.kind, subject: f.subject, evidence: f.evidence } }, timeoutMs);
        },
        { timeoutMs: timeoutMs + ANSWER_SLACK_MS },
      );
      return { store, name, result };
    };

    const action: HealingAction = {
      id: 'app-action',
      canHandle: (f) => storeOf(f) !== undefined,
      async apply(f, hctx) {
        const r = await run(f, hctx, 'apply');
        return { summary: `application action "${r.name}" applied by the owner of store "${r.store}"`, details: { store: r.store, action: r.name, result: r.result } };
      },
      async verify(f, hctx) {
        return (await run(f, hctx, 'verify')).result === true;
      },
    };
    ctx.provide(HealingAction, action, isHealingAction);
  },
});

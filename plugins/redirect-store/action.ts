/**
 * The `redirect-store` healing action: a store whose disk failed is moved to its spare path.
 *
 * - canHandle: a `disk-failure` of a configured store with `spare:` and snapshots to restore
 *   from, not already on its spare.
 * - apply: stops the store's supervised processes (ProcessSupervisor); refuses while any other
 *   live process holds the store; restores the newest snapshot chain and the WAL archive — plus
 *   what still reads of the failed store's own log — into the spare (StoreRestorer, which
 *   verifies every page); records the store's new path (StorePaths, durable); restarts the
 *   processes, which find it in RECOVERY_AGENT_STORE_PATH. Rule option `salvage: false` leaves
 *   the failed store's own log out (the archive alone: commits after it are lost).
 * - verify, observed at the spare: every page verifies there (read through the engine's page
 *   face, as a scan does), and each restarted process is running, holds the store at the spare
 *   (its owner answers there under the lock holder's pid, its log not broken) and commits again
 *   (its commit count grows) within `verifyTimeout` (rule option, default 15 s). A store with no
 *   process: nothing is left for recovery to do at the spare.
 * - no undo: the failed disk is no place to go back to; a redirect that does not verify escalates.
 */
import type { HealingAction, HealingContext } from '../../core/contracts/HealingAction.js';
import type { Failure } from '../../core/contracts/Failure.js';
import { DISK_FAILURE } from '../../core/contracts/DiskFailure.js';
import { withOwner, type PageEngine } from '../../core/contracts/PageEngine.js';
import type { ProcessSupervisor } from '../../core/contracts/ProcessSupervisor.js';
import type { StorePaths } from '../../core/contracts/StorePaths.js';
import type { StoreRestorer } from '../../core/contracts/StoreRestorer.js';
import { parseDuration } from '../../core/config/units.js';
import { raError } from '../../core/errors.js';
import { sleep } from '../../core/sleep.js';
import { allPagesVerify } from './pages.js';

export interface RedirectableStore {
  readonly id: string;
  readonly engine: PageEngine;
  readonly spare: string;
  /** The config's processes with `store:` this store. */
  readonly processes: readonly string[];
}

export interface RedirectDeps {
  readonly stores: ReadonlyMap<string, RedirectableStore>;
  readonly paths: StorePaths;
  readonly supervisor: ProcessSupervisor | undefined;
  readonly restorer: StoreRestorer | undefined;
}

const DEFAULT_VERIFY_MS = 15_000;

/** The store id of a `disk-failure`. */
function storeOf(f: Failure): string | undefined {
  return f.kind === DISK_FAILURE ? /^store:(.+)$/.exec(f.subject)?.[1] : undefined;
}

export function redirectStoreAction(d: RedirectDeps): HealingAction {
  const target = (f: Failure) => {
    const id = storeOf(f);
    return id === undefined ? undefined : d.stores.get(id);
  };
  return {
    id: 'redirect-store',

    canHandle(f) {
      const s = target(f);
      return s !== undefined && d.restorer?.canRestore(s.id) === true && d.paths.pathOf(s.id) !== s.spare;
    },

    async apply(f, hctx) {
      const s = target(f);
      if (s === undefined || d.restorer === undefined) throw raError('RA_ERR_USAGE', `redirect-store cannot handle failure ${f.id} (${f.kind} of ${f.subject})`);
      const from = d.paths.pathOf(s.id)!;
      const sup = d.supervisor;
      // Stop what writes the store: a second owner of a second copy would fork its history.
      const stopped: string[] = [];
      for (const p of s.processes) {
        const st = sup?.get(p);
        if (st === undefined || st.state === 'stopped' || st.state === 'exited' || st.state === 'given-up') continue;
        if (st.mode !== 'supervised') throw raError('RA_ERR_REDIRECT', `store "${s.id}" is written by process "${p}", which the agent attached to and cannot stop: stop it, then retry`);
        hctx.log.info({ processId: p, processPid: st.pid }, 'stopping the application on the failed disk');
        await sup!.stop(p);
        stopped.push(p);
      }
      const holder = await s.engine.files.lockHolder(from).catch(() => null);
      if (holder !== null) throw raError('RA_ERR_REDIRECT', `store "${s.id}" at ${from} is still held by pid ${holder}, which the agent does not supervise: stop it, then retry`, { details: { pid: holder } });
      // Rule option `salvage: false`: do not trust what the failing disk still reads (the archive alone).
      const salvage = hctx.options.salvage !== false;
      const r = await d.restorer.restoreTo(s.id, s.spare, { ...(salvage ? { salvageFrom: from } : {}), signal: hctx.signal });
      const moved = await d.paths.redirect(s.id, s.spare, `${f.kind} ${f.id} (${String(f.evidence.errno)} at ${from})`);
      const restarted: Record<string, number> = {};
      if (sup !== undefined) {
        for (const p of s.processes.filter((x) => sup.get(x)?.mode === 'supervised')) restarted[p] = (await sup.restart(p, `store ${s.id} moved to ${s.spare}`)).pid;
      }
      // What the failed disk knew to be durable and the restore could not bring back: the RPO.
      const flushed = typeof f.evidence.flushedLsn === 'number' ? f.evidence.flushedLsn : null;
      const lostLogBytes = flushed === null ? null : Math.max(0, flushed - r.endLsn);
      const details = { store: s.id, from, to: moved.path, restore: { ...r }, stopped, restarted, ownerFlushedLsn: flushed, lostLogBytes };
      hctx.log.info(details, `store "${s.id}" moved to ${s.spare}`);
      return {
        summary:
          `moved store "${s.id}" from ${from} to ${s.spare}: ${r.snapshots.length} snapshot(s), log to LSN ${r.endLsn} (${r.salvagedBytes} bytes read back from the failed disk; ` +
          `${lostLogBytes ?? 'unknown'} bytes of durable log not recovered), ${r.pagesVerified} pages verified; restarted ${Object.entries(restarted).map(([p, pid]) => `${p} (pid ${pid})`).join(', ') || 'no process'}`,
        details,
      };
    },

    async verify(f, hctx) {
      const s = target(f);
      if (s === undefined) return false;
      if (d.paths.pathOf(s.id) !== s.spare) return false;
      const timeoutMs = durationOption(hctx, 'verifyTimeout') ?? DEFAULT_VERIFY_MS;
      const deadline = Date.now() + timeoutMs;
      const pages = await allPagesVerify(s.engine, s.spare);
      if (pages !== null) {
        hctx.log.warn({ store: s.id, problem: pages }, 'the store at the spare does not verify');
        return false;
      }
      const procs = d.supervisor === undefined ? [] : s.processes.filter((p) => d.supervisor!.get(p)?.mode === 'supervised');
      if (procs.length === 0) return (await s.engine.recoveryPending(s.spare)) === null;
      let why = 'not asked yet';
      let firstCommits: number | null = null;
      while (Date.now() < deadline && !hctx.signal.aborted) {
        why = await (async () => {
          for (const p of procs) if (d.supervisor!.get(p)?.state !== 'running') return `process ${p} is ${d.supervisor!.get(p)?.state}`;
          const holder = await s.engine.files.lockHolder(s.spare);
          if (holder === null) return 'nobody holds the store at the spare yet';
          const st = await withOwner(s.engine, s.spare, (o) => o.status(), { timeoutMs: 2000 }).catch((e: Error) => e);
          if (st instanceof Error) return `its owner does not answer: ${st.message}`;
          if (st.pid !== holder) return `the owner answering (pid ${st.pid}) is not the lock holder (pid ${holder})`;
          if (st.broken) return `its log is broken again: ${st.broken.message}`;
          const commits = st.commits ?? null;
          if (commits === null) return 'its owner does not report commits';
          firstCommits ??= commits;
          return commits > firstCommits ? 'ok' : `no commit yet since ${firstCommits}`;
        })();
        if (why === 'ok') return true;
        await sleep(100, hctx.signal).catch(() => undefined);
      }
      hctx.log.warn({ store: s.id, why, timeoutMs }, 'the application does not commit at the spare');
      return false;
    },
  };
}

function durationOption(hctx: HealingContext, key: string): number | undefined {
  const v = hctx.options?.[key];
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const ms = parseDuration(v);
  if (ms === undefined) throw raError('RA_ERR_CONFIG', `redirect-store option ${key} must be a duration such as 500ms or 5s (got ${JSON.stringify(v)})`);
  return ms;
}

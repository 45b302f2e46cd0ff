/**
 * The live WAL's scrub and its repair.
 *
 * Detector: every `scrub.walInterval` (default 1 min; 0 off) each store's live log is checked
 * (walCheck.ts). A break in it is one `wal-corruption` per damaged place, published once while it
 * stays: **P1** when it lies at or after the store's redo LSN — the records are durable and
 * acknowledged, nobody reads them while the owner runs, but a crash now would stop recovery at
 * the break and lose every commit after it (data at risk, not yet lost); **P2** when it lies
 * before it (crash recovery no longer needs it; point-in-time restore through it would fail).
 * Evidence: the segment file, the LSN and offset where the valid records stop, the record's
 * stored and computed checksums, the durable and redo LSNs.
 *
 * Action `checkpoint-past-damage`: asks the store's live owner for a checkpoint (its control
 * socket, through the engine's page face), again while a transaction older than the damage keeps
 * the checkpoint from leaving it behind, so that crash recovery no longer needs the damaged
 * records (redo starts after them, and no transaction to roll back reaches back to them). The
 * damaged segment itself cannot be rewritten: a live segment is never in the archive (segments
 * are archived as they retire), so it is recorded as lost for point-in-time restore — from the
 * damage to the first snapshot taken after it. Verified by reading the store's state and its
 * checkpoint record from disk. A store with no live owner is not taken: its records after the
 * damage are on disk only, and recovery would stop at the break — an escalation, for a person to
 * restore from a snapshot and the archive.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Detector } from '../../core/contracts/Detector.js';
import type { Failure, FailureSink } from '../../core/contracts/Failure.js';
import type { HealingAction } from '../../core/contracts/HealingAction.js';
import { withOwner, type PageEngine } from '../../core/contracts/PageEngine.js';
import { describeError, isRaError, raError } from '../../core/errors.js';
import { StorePasses } from '../../core/storePasses.js';
import { checkLiveWal, type WalCheck } from './walCheck.js';

export const WAL_CORRUPTION = 'wal-corruption';

export interface WalStore {
  id: string;
  dir: string;
  engine: PageEngine;
  /** Interval of the check (ms); 0: not checked. */
  everyMs: number;
}

export class WalScrubDetector implements Detector {
  readonly kinds = [WAL_CORRUPTION];
  readonly stats = { passes: 0, failedPasses: 0, published: 0, bytes: 0 };
  private passes: StorePasses<WalStore> | null = null;
  private published = new Map<string, Set<string>>();

  constructor(readonly id: string, private readonly stores: readonly WalStore[], private readonly log: Logger) {}

  start(sink: FailureSink): void {
    this.passes = new StorePasses((s) => this.pass(s, sink));
    this.passes.start(this.stores);
  }

  async stop(): Promise<void> {
    await this.passes?.stop();
  }

  /** One check of a store's live log; publishes what is newly damaged. Never throws. */
  async pass(s: WalStore, sink: FailureSink): Promise<WalCheck | null> {
    if (!s.engine.files.exists(s.dir)) return null;
    let r: WalCheck;
    try {
      r = await checkLiveWal(s.engine, s.dir);
    } catch (err) {
      this.stats.failedPasses++;
      this.log.warn({ store: s.id, err: describeError(err) }, 'live WAL check failed');
      return null;
    }
    this.stats.passes++;
    this.stats.bytes += r.bytes;
    const before = this.published.get(s.id) ?? new Set<string>();
    const now = new Set<string>();
    for (const d of r.damage) {
      const key = `${d.segmentStartLsn}:${d.lsn}`;
      now.add(key);
      if (before.has(key) || this.passes?.stopped === true) continue;
      const needed = d.lsn >= r.redoLsn;
      const f = sink.publish({
        kind: WAL_CORRUPTION,
        priority: needed ? 'P1' : 'P2',
        subject: `store:${s.id}`,
        evidence: { store: s.id, file: d.file, segmentStartLsn: d.segmentStartLsn, lsn: d.lsn, offset: d.offset, reason: d.reason, expected: d.expected, found: d.found, durableLsn: r.durableLsn, redoLsn: r.redoLsn, neededByRecovery: needed },
        fingerprint: `${WAL_CORRUPTION}:${s.id}:${d.segmentStartLsn}:${d.lsn}`,
      });
      this.stats.published++;
      this.log.error({ store: s.id, failure: f.id, file: d.file, lsn: d.lsn, reason: d.reason }, 'the live WAL is damaged');
    }
    this.published.set(s.id, now);
    return r;
  }
}

/**
 * Why the store's last checkpoint (read from disk) still needs the log at `lsn`, or null when it
 * does not: redo starts after it and no transaction active at the checkpoint began at or before it.
 */
export async function stillNeeded(engine: PageEngine, dir: string, lsn: number): Promise<string | null> {
  for (let attempt = 0; ; attempt++) {
    const state = await engine.files.readState(dir);
    if (state.redoLsn <= lsn) return `redo starts at LSN ${state.redoLsn}, at or before the damage at ${lsn}`;
    let rec: Uint8Array;
    try {
      rec = await engine.log.readRecord(engine.files.logDir(dir), state, state.checkpointLsn);
    } catch (err) {
      // The live owner checkpointed again between the two reads and retired the segment of the
      // checkpoint read first (a chaos trial's verify failed so, and its recovery escalated):
      // read the newer one. A control file that did not move means the record itself is bad.
      if (attempt < 4 && (await engine.files.readState(dir)).checkpointLsn !== state.checkpointLsn) continue;
      // The record lies after the damage in the damaged segment: lost with it (a cut tail took
      // it; a wal-truncated chaos trial's repair escalated on the throw). Still needed: a new
      // checkpoint is what crash recovery now lacks, and what the action asks the owner for.
      const seg = (x: number) => engine.log.segmentStartOf(x, state.segmentSize);
      if (state.checkpointLsn > lsn && seg(state.checkpointLsn) === seg(lsn)) {
        return `the checkpoint record at LSN ${state.checkpointLsn} lies after the damage at ${lsn} in its segment, and does not read (${(err as Error).message})`;
      }
      throw err;
    }
    const older = engine.log.decodeCheckpoint(rec, 0, state.pageSize).activeTransactions.filter(([, first]) => first <= lsn);
    if (older.length > 0) return `transaction(s) ${older.map(([tx]) => tx).join(', ')}, active at the checkpoint, began at or before the damage at ${lsn}`;
    return null;
  }
}

function target(f: Failure, stores: ReadonlyMap<string, WalStore>): { s: WalStore; lsn: number } | null {
  const s = typeof f.evidence.store === 'string' ? stores.get(f.evidence.store) : undefined;
  return s && typeof f.evidence.lsn === 'number' ? { s, lsn: f.evidence.lsn } : null;
}

export function checkpointPastDamageAction(stores: ReadonlyMap<string, WalStore>): HealingAction {
  return {
    id: 'checkpoint-past-damage',
    canHandle: (f) => f.kind === WAL_CORRUPTION && target(f, stores) !== null,
    async apply(f, ctx) {
      const { s, lsn } = target(f, stores)!;
      let why = await stillNeeded(s.engine, s.dir, lsn);
      const checkpoints: Array<{ lsn: number; redoLsn: number }> = [];
      // A transaction that began before the damage holds the checkpoint's undo horizon back: ask again while it runs.
      for (let attempt = 0; why !== null && attempt < 10; attempt++) {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (attempt > 0) await sleep(200, undefined, { signal: ctx.signal });
        const k = await withOwner(s.engine, s.dir, (o) => o.checkpoint()).catch((err: unknown) => {
          if (!isRaError(err, 'RA_ERR_CONTROL_UNAVAILABLE')) throw err;
          throw raError('RA_ERR_CONTROL_UNAVAILABLE', `store "${s.id}" has no live owner to checkpoint past the damaged WAL at LSN ${lsn}: its later records are on disk only, and crash recovery would stop at the damage; restore it from a snapshot and the archive`, { cause: err, details: { store: s.id, lsn } });
        });
        checkpoints.push({ lsn: k.lsn, redoLsn: k.redoLsn });
        why = await stillNeeded(s.engine, s.dir, lsn);
      }
      if (why !== null) throw raError('RA_ERR_STORE_INVALID', `store "${s.id}" still needs its damaged WAL after ${checkpoints.length} checkpoint(s): ${why}`, { details: { store: s.id, lsn } });
      const lost = { fromLsn: lsn, segment: f.evidence.file };
      ctx.log.warn({ store: s.id, lost }, 'damaged live WAL: no longer needed by crash recovery; point-in-time restore through it is lost until a newer snapshot');
      return {
        summary: `checkpointed store "${s.id}" past its damaged WAL at LSN ${lsn}${checkpoints.length ? ` (redo now at ${checkpoints[checkpoints.length - 1]!.redoLsn})` : ' (already past it)'}: crash recovery no longer needs the damaged records; ${String(f.evidence.file)} has no archive copy to be rewritten from (a live segment is archived only as it retires), so point-in-time restore to LSNs from ${lsn} up to the first snapshot taken after the damage is lost`,
        details: { checkpoints, pitrLost: lost },
      };
    },
    async verify(f) {
      const { s, lsn } = target(f, stores)!;
      return (await stillNeeded(s.engine, s.dir, lsn)) === null;
    },
  };
}

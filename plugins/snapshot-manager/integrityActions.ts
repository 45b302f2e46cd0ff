/**
 * The healing actions for the integrity detector's failures (integrityDetector.ts), run while
 * no snapshot or retention of the store runs (SnapshotScheduler.whileIdle):
 *
 * - `repair-snapshot` (snapshot-corruption): the damaged snapshot — and every incremental built
 *   on it, useless without it — goes into `<dir>/quarantine/` (renamed, kept for audit, never
 *   deleted), and a new full snapshot is taken, so a restore to now needs nothing damaged.
 *   Verified by reading the files again: the snapshot is out of `snapshots/`, every snapshot left
 *   has its whole chain, and a full snapshot finished since the detection checks out, every file
 *   decompressed and checked.
 * - `repair-archive` (archive-corruption): the segment archived again from a copy that still
 *   matches the checksum of its raw bytes the sidecar recorded — the store's live WAL, if its
 *   owner still has the segment, else a snapshot's WAL copy of the whole segment — and whose
 *   records run whole to its end (a live segment damaged before it retired has none). With none, the
 *   segment goes into the quarantine and a new full snapshot is taken, whose WAL starts past the
 *   segment, so restore no longer needs it; what is lost is point-in-time restore to any LSN from
 *   the segment's start to the end of the first snapshot past it (the outcome names the range).
 *   Verified by reading again: the archived copy decompresses to the original bytes, or — when
 *   quarantined — it is out of the archive and a full snapshot whose WAL starts past the segment,
 *   finished since the detection, checks out.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Failure } from '../../core/contracts/Failure.js';
import type { HealingAction } from '../../core/contracts/HealingAction.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { raError } from '../../core/errors.js';
import { checkArchived, checkSnapshot, quarantineArchived, quarantineSnapshot, recordsBreak } from './integrity.js';
import { ARCHIVE_CORRUPTION, SNAPSHOT_CORRUPTION } from './integrityDetector.js';
import { archiveDirOf, chainOf, loadAll, snapshotPath, walFileName, xxh3Hex, type Manifest } from './manifest.js';
import type { SnapshotScheduler } from './scheduler.js';
import { archiveRaw, readRaw, type ArchivedSegment } from './walArchive.js';

export interface RepairableStore {
  id: string;
  dir: string;
  engine: PageEngine;
  /** Where the store lives now (it may have moved off a failed disk). */
  readonly path: string;
}

/** The store a failure of ours names, if it is one of `stores`. */
function storeOf(f: Failure, stores: ReadonlyMap<string, RepairableStore>): RepairableStore | undefined {
  const id = typeof f.evidence.store === 'string' ? f.evidence.store : /^store:(.+)$/.exec(f.subject)?.[1];
  return id === undefined ? undefined : stores.get(id);
}

async function manifests(dir: string): Promise<Manifest[]> {
  return (await loadAll(dir)).flatMap((x) => (x.manifest ? [x.manifest] : []));
}

/** True when every file of snapshot `m` reads, decompresses and checks out. */
async function wholeSnapshot(dir: string, m: Manifest): Promise<boolean> {
  if ((await checkSnapshot(dir, m.id)) !== null) return false;
  try {
    for (const e of [...m.chunks, ...m.wal]) await readRaw(path.join(snapshotPath(dir, m.id), e.file), e);
    return true;
  } catch {
    return false;
  }
}

/** The newest full snapshot finished at or after `since` (and whose WAL starts at or after `walFrom`) that checks out whole. */
async function freshFull(dir: string, since: number, walFrom = 0): Promise<Manifest | null> {
  const all = await manifests(dir);
  const m = all.filter((x) => x.kind === 'full' && x.finishedAt >= since && x.walFromLsn >= walFrom).pop();
  return m && (await wholeSnapshot(dir, m)) ? m : null;
}

export function repairSnapshotAction(stores: ReadonlyMap<string, RepairableStore>, scheduler: SnapshotScheduler): HealingAction {
  return {
    id: 'repair-snapshot',
    canHandle: (f) => f.kind === SNAPSHOT_CORRUPTION && typeof f.evidence.snapshotId === 'string' && storeOf(f, stores) !== undefined,
    async apply(f, ctx) {
      const s = storeOf(f, stores)!;
      const id = f.evidence.snapshotId as string;
      return scheduler.whileIdle(s.id, async (_, snapshot) => {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const still = await checkSnapshot(s.dir, id);
        const moved = await quarantineSnapshot(s.dir, id);
        for (const x of moved) ctx.log.warn({ store: s.id, snapshot: x.id, to: x.to }, 'snapshot quarantined');
        const m = await snapshot(false);
        return {
          summary: `quarantined snapshot ${id}${moved.length > 1 ? ` and the ${moved.length - 1} incremental(s) built on it` : ''} (${moved.map((x) => x.to).join(', ') || 'already gone'}); took full snapshot ${m.id}`,
          details: { quarantined: moved, stillDamaged: still !== null, newSnapshot: { id: m.id, endLsn: m.endLsn } },
        };
      });
    },
    async verify(f) {
      const s = storeOf(f, stores)!;
      const id = f.evidence.snapshotId as string;
      return scheduler.whileIdle(s.id, async () => {
        const all = await manifests(s.dir);
        if (all.some((m) => m.id === id)) return false;
        const byId = new Map(all.map((m) => [m.id, m]));
        for (const m of all) {
          try {
            chainOf(m.id, byId);
          } catch {
            return false;
          }
        }
        return (await freshFull(s.dir, f.detectedAt)) !== null;
      });
    },
  };
}

/** The archived segment's sidecar as recorded when it was archived, if it still reads. */
async function sidecar(dir: string, startLsn: number): Promise<ArchivedSegment | null> {
  try {
    const e = JSON.parse(await readFile(path.join(archiveDirOf(dir), `${walFileName(startLsn)}.json`), 'utf8')) as ArchivedSegment;
    return e.startLsn === startLsn && typeof e.rawXxh3 === 'string' ? e : null;
  } catch {
    return null;
  }
}

/** The raw bytes of segment `e` from a copy that still matches its raw checksum: the live WAL, else a snapshot's WAL copy. */
async function goodCopy(s: RepairableStore, e: ArchivedSegment): Promise<{ raw: Buffer; from: string } | null> {
  const logDir = s.engine.files.logDir(s.path);
  if ((await s.engine.log.listSegments(logDir)).includes(e.startLsn)) {
    const file = path.join(logDir, s.engine.log.segmentName(e.startLsn));
    const whole = await readFile(file).catch(() => null);
    // Up to its last record, as it was archived (a segment made at full size ends in zeros).
    const raw = whole && whole.subarray(0, s.engine.log.segmentContent(whole, whole.byteLength, whole.byteLength).length);
    if (raw && raw.byteLength === e.rawBytes && xxh3Hex(raw) === e.rawXxh3 && !recordsBreak(s.engine, raw, e.startLsn)) return { raw, from: file };
  }
  for (const m of (await manifests(s.dir)).reverse()) {
    for (const w of m.wal) {
      if (w.startLsn !== e.startLsn || w.rawBytes !== e.rawBytes || w.rawXxh3 !== e.rawXxh3) continue;
      const file = path.join(snapshotPath(s.dir, m.id), w.file);
      const raw = await readRaw(file, w).catch(() => null);
      if (raw && !recordsBreak(s.engine, raw, e.startLsn)) return { raw, from: file };
    }
  }
  return null;
}

export function repairArchiveAction(stores: ReadonlyMap<string, RepairableStore>, scheduler: SnapshotScheduler): HealingAction {
  return {
    id: 'repair-archive',
    canHandle: (f) => f.kind === ARCHIVE_CORRUPTION && typeof f.evidence.startLsn === 'number' && storeOf(f, stores) !== undefined,
    async apply(f, ctx) {
      const s = storeOf(f, stores)!;
      const start = f.evidence.startLsn as number;
      return scheduler.whileIdle(s.id, async (_, snapshot) => {
        if (ctx.signal.aborted) throw ctx.signal.reason;
        const e = await sidecar(s.dir, start);
        const copy = e ? await goodCopy(s, e) : null;
        if (e && copy) {
          await archiveRaw(s.engine, s.dir, copy.raw, start, e.archivedAt);
          return { summary: `archived WAL segment ${walFileName(start)} again from ${copy.from}`, details: { from: copy.from, startLsn: start, endLsn: start + e.rawBytes } };
        }
        const end = e ? start + e.rawBytes : typeof f.evidence.endLsn === 'number' ? f.evidence.endLsn : null;
        const moved = await quarantineArchived(s.dir, start);
        for (const to of moved) ctx.log.warn({ store: s.id, to }, 'archived WAL segment quarantined');
        const m = await snapshot(false);
        if (end !== null && m.walFromLsn < end) throw raError('RA_ERR_SNAPSHOT_INVALID', `the new full snapshot ${m.id} still needs WAL from ${m.walFromLsn}, inside the quarantined segment [${start}, ${end})`);
        // Point-in-time restore to an LSN in [start, first snapshot past the segment's end) needs the segment.
        const past = (await manifests(s.dir)).filter((x) => end !== null && x.walFromLsn >= end).map((x) => x.endLsn);
        const lostTo = past.length > 0 ? Math.min(...past) : m.endLsn;
        const lost = { fromLsn: start, toLsn: lostTo };
        ctx.log.warn({ store: s.id, segment: walFileName(start), lost }, 'point-in-time restore into this LSN range is lost with the archived segment');
        return {
          summary: `no sound copy of WAL segment ${walFileName(start)} left: quarantined it (${moved.join(', ') || 'already gone'}) and took full snapshot ${m.id}; restore to an LSN in [${lost.fromLsn}, ${lost.toLsn}) is no longer possible`,
          details: { quarantined: moved, newSnapshot: { id: m.id, walFromLsn: m.walFromLsn, endLsn: m.endLsn }, pitrLost: lost },
        };
      });
    },
    async verify(f) {
      const s = storeOf(f, stores)!;
      const start = f.evidence.startLsn as number;
      return scheduler.whileIdle(s.id, async () => {
        const e = await sidecar(s.dir, start);
        if (e) {
          // Archived again: the copy must check out, decompressed, and hold the bytes first archived.
          if ((await checkArchived(s.dir, start, s.engine)) !== null) return false;
          const raw = await readRaw(path.join(archiveDirOf(s.dir), e.file), e).catch(() => null);
          return raw !== null && (typeof f.evidence.rawXxh3 !== 'string' || f.evidence.rawXxh3 === e.rawXxh3);
        }
        if ((await checkArchived(s.dir, start)) !== null) return false; // an unreadable sidecar still there
        const end = typeof f.evidence.endLsn === 'number' ? f.evidence.endLsn : start + 1;
        return (await freshFull(s.dir, f.detectedAt, end)) !== null;
      });
    },
  };
}

/**
 * Damage to what a restore will need, found before the restore: every snapshot's manifest,
 * chunks and WAL copies, and every archived WAL segment, checked against the sizes and XXH3-64
 * checksums their manifest or sidecar recorded when they were written (integrityDetector.ts runs
 * it on a schedule). Only the compressed files are read and hashed — what is on disk is the
 * compressed file, so any flipped bit or lost tail shows there, at disk speed, without
 * decompressing — and nothing is changed.
 *
 * And what the repairs do with what it finds (integrityActions.ts): quarantine, a rename aside
 * into `<dir>/quarantine/` (kept for audit, never deleted, and out of sight of restore, prune
 * and `snapshot verify`), or a new archive copy of a segment from a source that still verifies.
 *
 * The scheduler's snapshots and retention run beside the owner's archiver: a file that vanishes
 * between the listing and the read (pruned, a `.tmp` renamed) is not damage, and is skipped when
 * the manifest or sidecar that named it is gone too.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { fsyncDir } from '../../core/fsyncDir.js';
import { archiveDirOf, chainOf, listSnapshotIds, MANIFEST_FILE, readManifest, snapshotPath, snapshotsDirOf, walFileName, xxh3Hex, type FileEntry, type Manifest } from './manifest.js';
import type { PageEngine } from '../../core/contracts/PageEngine.js';
import { listArchivedStarts, readRaw, type ArchivedSegment } from './walArchive.js';

/** One damaged snapshot (any of its files) or archived segment. */
export interface Damage {
  what: 'snapshot' | 'archive';
  /** The snapshot id, or the archived segment's file name (`<16 hex>.wal.lz4`). */
  id: string;
  /** The archived segment's start LSN (archive damage). */
  startLsn?: number;
  /** Its LSN range and the XXH3-64 of its raw bytes, when its sidecar is readable: [startLsn, endLsn). */
  endLsn?: number;
  rawXxh3?: string;
  /** Where a segment's records break, when the damage is inside a copy that matches its sidecar (record-level). */
  recordLsn?: number;
  /** The first damaged file, and what is wrong with it. */
  file: string;
  problem: string;
  /** What the manifest or sidecar recorded, and what the file holds now (null: unreadable or missing). */
  expected: { bytes: number; xxh3: string } | null;
  found: { bytes: number; xxh3: string } | null;
  /** Every damaged file of the snapshot (the first is `file`). */
  files: string[];
}

const isEnoent = (err: unknown) => (err as NodeJS.ErrnoException | null)?.code === 'ENOENT' || ((err as { cause?: NodeJS.ErrnoException } | null)?.cause?.code === 'ENOENT');

/** Reads `file` and compares it with its entry: null when it matches, else what was found. */
async function compare(file: string, e: FileEntry): Promise<{ found: Damage['found']; problem: string } | null | 'gone'> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    if (isEnoent(err)) return 'gone';
    return { found: null, problem: `cannot read ${file}: ${(err as Error).message}` };
  }
  const found = { bytes: bytes.byteLength, xxh3: xxh3Hex(bytes) };
  if (found.bytes === e.bytes && found.xxh3 === e.xxh3) return null;
  return { found, problem: `${file} fails its checksum: ${found.bytes} bytes with XXH3 ${found.xxh3}, expected ${e.bytes} bytes with XXH3 ${e.xxh3}` };
}

/** Called with a file's size before it is read: waits (or throws to end the pass) to hold a pass's rate. */
export type Pace = (bytes: number) => Promise<void>;

/** Damage of the snapshot `id` in `dir`, or null when it checks out (or was pruned meanwhile). */
export async function checkSnapshot(dir: string, id: string, pace?: Pace): Promise<Damage | null> {
  const manifestFile = path.join(snapshotPath(dir, id), MANIFEST_FILE);
  let m: Manifest;
  try {
    m = await readManifest(dir, id);
  } catch (err) {
    if (!existsSync(manifestFile)) return null; // pruned between the listing and the read
    return { what: 'snapshot', id, file: manifestFile, problem: (err as Error).message, expected: null, found: null, files: [manifestFile] };
  }
  let first: Damage | null = null;
  for (const e of [...m.chunks, ...m.wal]) {
    const file = path.join(snapshotPath(dir, id), e.file);
    await pace?.(e.bytes);
    let bad = await compare(file, e);
    if (bad === 'gone') {
      if (!existsSync(manifestFile)) return null; // pruned while being read
      bad = { found: null, problem: `${file} is missing (its manifest lists ${e.bytes} bytes with XXH3 ${e.xxh3})` };
    }
    if (!bad) continue;
    if (first) first.files.push(file);
    else first = { what: 'snapshot', id, file, problem: bad.problem, expected: { bytes: e.bytes, xxh3: e.xxh3 }, found: bad.found, files: [file] };
  }
  return first;
}

/**
 * Where the records of a segment's raw bytes stop, when they stop before its end: the store cuts
 * its log at the last valid record whenever it opens (recovery truncates the segment there) and
 * only appends, so a retired segment's file ends exactly with its last record. Valid records
 * that stop earlier mean a record was damaged in the live segment before it was archived: the
 * copy matches its sidecar, but a restore through it would fail there. Null when whole.
 */
export function recordsBreak(engine: PageEngine, raw: Uint8Array, startLsn: number): { offset: number; stored: string | null; computed: string | null } | null {
  const hdr = engine.log.segmentHeaderSize;
  if (raw.byteLength <= hdr) return null;
  const end = engine.log.scanRecords(raw, hdr, raw.byteLength, startLsn + hdr);
  if (end >= raw.byteLength) return null;
  const sums = engine.log.recordChecksums?.(raw, end) ?? null;
  return { offset: end, stored: sums?.stored ?? null, computed: sums?.computed ?? null };
}

/**
 * The archiver's own walk of a segment's records (the sidecar's `records`), as a break: null when
 * they run whole, undefined when the sidecar has none (written before it existed) or it does not
 * read as one.
 */
function archivedBreak(e: ArchivedSegment): ReturnType<typeof recordsBreak> | undefined {
  const r = e.records as Partial<ArchivedSegment['records']> | undefined;
  if (!r || !Number.isInteger(r.end) || r.end! < 0 || r.end! > e.rawBytes) return undefined;
  if (r.end === e.rawBytes) return null;
  const sum = (x: unknown) => (typeof x === 'string' ? x : null);
  return { offset: r.end!, stored: sum(r.stored), computed: sum(r.computed) };
}

/**
 * Damage of the archived segment whose sidecar is `<dir>/wal/<name>.json`, or null. With
 * `engine`, a copy that matches its sidecar is also checked record by record: by the archiver's
 * walk of the very bytes it archived (the sidecar's `records`; the copy's checksum says they are
 * unchanged), or — for a sidecar without one — by decompressing the copy and walking its records
 * (`recordsBreak`), once per copy when `whole` remembers the copies found whole.
 */
export async function checkArchived(dir: string, startLsn: number, engine?: PageEngine, whole?: Set<string>, pace?: Pace): Promise<Damage | null> {
  const base = path.join(archiveDirOf(dir), walFileName(startLsn));
  const id = `${walFileName(startLsn)}.lz4`;
  let e: ArchivedSegment;
  try {
    e = JSON.parse(await readFile(`${base}.json`, 'utf8')) as ArchivedSegment;
    if (e.startLsn !== startLsn || typeof e.bytes !== 'number' || typeof e.xxh3 !== 'string') throw new Error(`it names start LSN ${e.startLsn}, not ${startLsn}, or lacks its checksums`);
  } catch (err) {
    if (isEnoent(err)) return null; // pruned meanwhile
    return { what: 'archive', id, startLsn, file: `${base}.json`, problem: `archived WAL sidecar ${base}.json is unreadable: ${(err as Error).message}`, expected: null, found: null, files: [`${base}.json`] };
  }
  await pace?.(e.bytes);
  let bad = await compare(`${base}.lz4`, e);
  if (bad === 'gone') {
    if (!existsSync(`${base}.json`)) return null;
    bad = { found: null, problem: `${base}.lz4 is missing (its sidecar lists ${e.bytes} bytes with XXH3 ${e.xxh3})` };
  }
  if (!bad) {
    const key = `${startLsn}:${e.xxh3}`;
    if (!engine || whole?.has(key)) return null;
    let brk = archivedBreak(e);
    let by = ' (its sidecar: the archiver walked the bytes it archived)';
    if (brk === undefined) {
      let raw: Buffer;
      await pace?.(e.rawBytes);
      try {
        raw = await readRaw(`${base}.lz4`, e);
      } catch (err) {
        if (!existsSync(`${base}.json`)) return null; // pruned meanwhile
        return { what: 'archive', id, startLsn, endLsn: startLsn + e.rawBytes, rawXxh3: e.rawXxh3, file: `${base}.lz4`, problem: (err as Error).message, expected: { bytes: e.bytes, xxh3: e.xxh3 }, found: null, files: [`${base}.lz4`] };
      }
      brk = recordsBreak(engine, raw, startLsn);
      by = '';
    }
    if (!brk) {
      whole?.add(key);
      return null;
    }
    const sums = brk.stored !== null ? `; its checksum is ${brk.computed}, it stores ${brk.stored}` : '';
    return {
      what: 'archive', id, startLsn, endLsn: startLsn + e.rawBytes, rawXxh3: e.rawXxh3, file: `${base}.lz4`,
      problem: `${base}.lz4 matches its sidecar, but its records stop at LSN ${startLsn + brk.offset} (offset ${brk.offset})${by}, ${e.rawBytes - brk.offset} bytes before the segment's end: the live segment was damaged before it was archived${sums}`,
      expected: brk.stored !== null ? { bytes: e.rawBytes, xxh3: brk.stored } : null,
      found: brk.computed !== null ? { bytes: e.rawBytes, xxh3: brk.computed } : null,
      files: [`${base}.lz4`],
      recordLsn: startLsn + brk.offset,
    };
  }
  return { what: 'archive', id, startLsn, endLsn: startLsn + e.rawBytes, rawXxh3: e.rawXxh3, file: `${base}.lz4`, problem: bad.problem, expected: { bytes: e.bytes, xxh3: e.xxh3 }, found: bad.found, files: [`${base}.lz4`] };
}


/** Archived segments a pass checks between two listings of the archive (see findDamage). */
export const kRelistEvery = 64;

/**
 * Every damaged snapshot and archived segment in `dir` (empty when all check out); with
 * `engine`, archived segments are also checked record by record (see checkArchived).
 *
 * Archived segments are checked newest first, and the archive is listed again every
 * `relistEvery` segments, the copies archived meanwhile checked next: a segment that retired
 * damaged has just been archived, and retention prunes it a few snapshot rounds later, so it is
 * looked at within moments, not after every older copy has been read again — a pass over a
 * large archive on a busy machine (a store retiring a hundred segments a second, three agents of
 * a cluster beside it) took seconds, while retention kept a copy for a few.
 */
export async function findDamage(dir: string, engine?: PageEngine, whole?: Set<string>, pace?: Pace, relistEvery = kRelistEvery): Promise<Damage[]> {
  const out: Damage[] = [];
  for (const id of await listSnapshotIds(dir)) {
    const d = await checkSnapshot(dir, id, pace);
    if (d) out.push(d);
  }
  let queue = (await listArchivedStarts(dir)).reverse();
  let newest = queue[0] ?? -1;
  for (let i = 0, checked = 0; i < queue.length; checked++) {
    if (checked > 0 && checked % relistEvery === 0) {
      const arrived = (await listArchivedStarts(dir)).filter((start) => start > newest).reverse();
      if (arrived.length > 0) {
        newest = arrived[0]!;
        queue = [...arrived, ...queue.slice(i)];
        i = 0;
      }
    }
    const d = await checkArchived(dir, queue[i++]!, engine, whole, pace);
    if (d) out.push(d);
  }
  return out;
}

export const quarantineDirOf = (dir: string) => path.join(dir, 'quarantine');

/** A name in the quarantine that says when and what (`<ISO time>-<name>`), unique. */
function quarantineName(dir: string, name: string): string {
  const stamp = new Date().toISOString().replace(/[-:.]/g, '');
  let p = path.join(quarantineDirOf(dir), `${stamp}-${name}`);
  for (let i = 1; existsSync(p); i++) p = path.join(quarantineDirOf(dir), `${stamp}-${i}-${name}`);
  return p;
}

/**
 * Moves snapshot `id`, and every incremental built on it (useless without it, and each would
 * name a missing base), into the quarantine. Returns the ids moved and where they went.
 */
export async function quarantineSnapshot(dir: string, id: string): Promise<Array<{ id: string; to: string }>> {
  const ids = await listSnapshotIds(dir);
  const byId = new Map<string, Manifest>();
  for (const x of ids) {
    try {
      byId.set(x, await readManifest(dir, x));
    } catch {
      // unreadable: it cannot name its base, and is checked (and quarantined) on its own
    }
  }
  const doomed = new Set([id]);
  for (const m of byId.values()) {
    if (m.kind !== 'incremental') continue;
    try {
      if (chainOf(m.id, byId).some((c) => c.id === id)) doomed.add(m.id);
    } catch {
      // a chain already broken elsewhere: only a base on `id` makes it ours (checked by walking by hand)
      for (let cur: Manifest | undefined = m; cur?.baseId; cur = byId.get(cur.baseId)) if (cur.baseId === id) doomed.add(m.id);
    }
  }
  await mkdir(quarantineDirOf(dir), { recursive: true, mode: 0o700 });
  const moved: Array<{ id: string; to: string }> = [];
  // Newest first: an incremental never outlives its base in snapshots/ even if this is cut short.
  for (const x of [...doomed].sort().reverse()) {
    if (!existsSync(snapshotPath(dir, x))) continue;
    const to = quarantineName(dir, `snapshot-${x}`);
    await rename(snapshotPath(dir, x), to);
    moved.push({ id: x, to });
  }
  await fsyncDir(snapshotsDirOf(dir));
  await fsyncDir(quarantineDirOf(dir));
  return moved;
}

/**
 * Moves the archived segment starting at `startLsn` (sidecar first: without it the segment no
 * longer counts as archived) into the quarantine. Returns where each file went.
 */
export async function quarantineArchived(dir: string, startLsn: number): Promise<string[]> {
  await mkdir(quarantineDirOf(dir), { recursive: true, mode: 0o700 });
  const base = path.join(archiveDirOf(dir), walFileName(startLsn));
  const moved: string[] = [];
  for (const f of [`${base}.json`, `${base}.lz4`]) {
    if (!existsSync(f)) continue;
    const to = quarantineName(dir, `archive-${path.basename(f)}`);
    await rename(f, to);
    moved.push(to);
  }
  await fsyncDir(archiveDirOf(dir));
  await fsyncDir(quarantineDirOf(dir));
  return moved;
}

/**
 * The WAL archive: every segment the store retires is compressed into
 * `<snapshotDir>/wal/<16 hex digits of its start LSN>.wal.lz4`, described by a sidecar
 * `<start>.wal.json` (sizes, XXH3-64 of the compressed and raw bytes, when it was archived).
 * Both are written durably (temporary file, fdatasync, rename, fsync of the directory); the
 * sidecar is written last, so a segment counts as archived only once both are on disk.
 *
 * The archiver runs inside the store's checkpoint, before the segment is unlinked; if it throws,
 * the store keeps the segment and offers it again at its next checkpoint.
 *
 * It also records in the sidecar where the segment's valid records end (`records`), from the walk
 * of its records the block index already makes. A retired segment's file ends with its last
 * record, so records that stop earlier mean the live segment was damaged (a bit flipped, its tail
 * cut) before it retired. The segment is archived all the same — it is the only copy there is —
 * and the integrity pass (integrity.ts) publishes the damage from the sidecar at its next pass.
 * Before this, the pass found it only by decompressing and walking each new copy itself, once
 * per copy and per agent: an agent started beside a large archive walked the whole of it first,
 * for longer than retention kept the damaged copy (a mixed chaos schedule's cut segment was
 * pruned unreported).
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { decompressFrame } from 'lz4-napi';
import { raError } from '../../core/errors.js';
import { ensurePrivateDir } from '../../core/privateFiles.js';
import type { LogArchiver, PageEngine, RetiredSegment } from '../../core/contracts/PageEngine.js';
import { encodeIndexed, type BlockIndex } from './archiveBlocks.js';
import { archiveDirOf, walFileName, writeFileDurable, xxh3Hex, type FileEntry, type WalEntry } from './manifest.js';

/** An archived segment, as its sidecar describes it. */
export interface ArchivedSegment extends WalEntry {
  /** Wall-clock time (ms) it was archived: every record in it was written before then. */
  archivedAt: number;
  /**
   * The index of the frame's 1 MiB blocks (archiveBlocks.ts): where each starts, where its first
   * record starts, and which pages its records name, so a page rebuild decodes only the blocks
   * that may hold its records. Absent in sidecars written before it existed.
   */
  blocks?: BlockIndex;
  /**
   * Where the valid records of the bytes archived end, as the archiver walked them. Absent in
   * sidecars written before it existed: the integrity pass then walks the copy itself.
   */
  records?: ArchivedRecords;
}

/** Where an archived segment's valid records end (the sidecar's `records`). */
export interface ArchivedRecords {
  /** Offset in the segment: `rawBytes` when the records run whole to its end. */
  end: number;
  /** The first failing record's stored and computed XXH3-64 (hex), when its length still frames it; null when whole. */
  stored: string | null;
  computed: string | null;
}

/**
 * The archiver for the `archiver` hook of `PageStore.open` and `recover()`, for stores of
 * `engine` (it reads their segments through the engine's log face):
 *
 *   const store = await PageStore.open(dir, { archiver: walArchiver(engine, '/backups/demo') });
 */
export function walArchiver(engine: PageEngine, snapshotDir: string): LogArchiver {
  let ready: Promise<unknown> | null = null;
  const archive = async (segment: RetiredSegment) => {
    ready ??= ensurePrivateDir(snapshotDir).then(() => ensurePrivateDir(archiveDirOf(snapshotDir)));
    await ready;
    await archiveSegment(engine, snapshotDir, segment);
  };
  // The store remembers this target, and archives through it after any later recovery too.
  return Object.assign(archive, { target: path.resolve(snapshotDir) });
}

export async function archiveSegment(engine: PageEngine, snapshotDir: string, segment: RetiredSegment): Promise<ArchivedSegment> {
  const raw = await readFile(segment.file);
  // A segment made at full size is archived up to its last record, as a growing one ends.
  return archiveRaw(engine, snapshotDir, raw.subarray(0, engine.log.segmentContent(raw, raw.byteLength, segment.endLsn - segment.startLsn).length), segment.startLsn);
}

/**
 * Archives the bytes `raw` of the segment starting at `startLsn` (replacing any archived copy):
 * a retired segment, or a damaged copy's segment again from a source that still verifies
 * (integrityActions.ts), then with the `archivedAt` of the copy it replaces.
 */
export async function archiveRaw(engine: PageEngine, snapshotDir: string, raw: Buffer, startLsn: number, archivedAt = Date.now()): Promise<ArchivedSegment> {
  const { frame, index, recordsEnd } = await encodeIndexed(engine, raw, engine.log.segmentHeaderSize, startLsn);
  const sums = recordsEnd < raw.byteLength ? (engine.log.recordChecksums?.(raw, recordsEnd) ?? null) : null;
  const base = path.join(archiveDirOf(snapshotDir), `${walFileName(startLsn)}.lz4`);
  const entry: ArchivedSegment = {
    file: path.basename(base),
    bytes: frame.byteLength,
    xxh3: xxh3Hex(frame),
    rawBytes: raw.byteLength,
    rawXxh3: xxh3Hex(raw),
    startLsn,
    archivedAt,
    blocks: index,
    records: { end: recordsEnd, stored: sums?.stored ?? null, computed: sums?.computed ?? null },
  };
  await writeFileDurable(base, frame, false);
  await writeFileDurable(base.replace(/\.lz4$/, '.json'), Buffer.from(JSON.stringify(entry) + '\n'));
  return entry;
}

/** Every archived segment with a readable sidecar, by start LSN ascending. */
export async function listArchive(snapshotDir: string, fromStart = 0): Promise<ArchivedSegment[]> {
  const dir = archiveDirOf(snapshotDir);
  const out: ArchivedSegment[] = [];
  for (const n of await sidecarNames(dir)) {
    if (parseInt(n.slice(0, 16), 16) < fromStart) continue;
    const file = path.join(dir, n);
    let e: ArchivedSegment;
    try {
      e = JSON.parse(await readFile(file, 'utf8')) as ArchivedSegment;
    } catch (err) {
      // Pruned between the listing and this read (retention runs while a repair or a restore
      // lists the archive): as if listed a moment later. A segment the chain needs and lacks is
      // then named as a gap by whoever walks the chain, not as corruption of a file now gone.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw raError('RA_ERR_SNAPSHOT_CORRUPT', `archived WAL sidecar ${file} is unreadable: ${(err as Error).message}`, { cause: err, details: { file } });
    }
    if (e.startLsn !== parseInt(n.slice(0, 16), 16)) {
      throw raError('RA_ERR_SNAPSHOT_CORRUPT', `archived WAL sidecar ${file} names start LSN ${e.startLsn}, not the one in its name`, { details: { file } });
    }
    out.push(e);
  }
  return out.sort((a, b) => a.startLsn - b.startLsn);
}

/**
 * Start LSNs of the archived segments with a sidecar, ascending, from their names alone: for
 * what needs no sidecar's contents (retention, a snapshot's "already archived"), since reading
 * every sidecar costs a file read per segment, and an archive that grew while nothing pruned it
 * (14,500 segments in a chaos schedule) made each snapshot round take 24 s.
 */
export async function listArchivedStarts(snapshotDir: string): Promise<number[]> {
  return (await sidecarNames(archiveDirOf(snapshotDir))).map((n) => parseInt(n.slice(0, 16), 16)).sort((a, b) => a - b);
}

async function sidecarNames(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.filter((x) => /^[0-9a-f]{16}\.wal\.json$/.test(x));
}

/** Reads a compressed file and checks it against its entry; returns the compressed bytes. */
export async function readChecked(file: string, e: FileEntry): Promise<Buffer> {
  let frame: Buffer;
  try {
    frame = await readFile(file);
  } catch (err) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `cannot read ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  if (frame.byteLength !== e.bytes || xxh3Hex(frame) !== e.xxh3) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file} fails its checksum (${frame.byteLength} bytes, expected ${e.bytes} with XXH3 ${e.xxh3})`, { details: { file } });
  }
  return frame;
}

/**
 * Reads a compressed file, checks it, decompresses it and checks the result: its raw bytes.
 * Any failure is RA_ERR_SNAPSHOT_CORRUPT naming the file.
 */
export async function readRaw(file: string, e: FileEntry): Promise<Buffer> {
  const frame = await readChecked(file, e);
  let raw: Buffer;
  try {
    raw = await decompressFrame(frame);
  } catch (err) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file} is not a valid LZ4 frame: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  checkRaw(file, raw, e);
  return raw;
}

/** Checks decompressed bytes against their entry. */
export function checkRaw(file: string, raw: Uint8Array, e: FileEntry): void {
  if (raw.byteLength !== e.rawBytes || xxh3Hex(raw) !== e.rawXxh3) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file} decompresses to ${raw.byteLength} bytes that fail their checksum (expected ${e.rawBytes} bytes, XXH3 ${e.rawXxh3})`, { details: { file } });
  }
}

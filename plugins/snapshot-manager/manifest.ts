/**
 * The snapshot directory and its manifests (see README.md beside this file):
 *
 *   <dir>/snapshots/<id>/manifest.json   what the snapshot holds, with its own XXH3-64
 *   <dir>/snapshots/<id>/chunk-NNNNN.lz4 page images, ~1 MiB raw each, LZ4 frame format
 *   <dir>/snapshots/<id>/wal/<start>.wal.lz4  the WAL from the snapshot's start to its end LSN
 *   <dir>/wal/<start>.wal.lz4 (+ .json)  the WAL archive: segments retired by the store
 *
 * A snapshot is built in `snapshots/.<id>.<owner>.tmp` (leftovers.ts) and renamed into
 * place once its manifest is durable, so a snapshot directory without the dot is always complete.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir, rename } from 'node:fs/promises';
import path from 'node:path';
import { xxh3 } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';
import { openPrivate } from '../../core/privateFiles.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { writeAll } from '../../core/writeAll.js';

export const MANIFEST_FORMAT = 1;
export const MANIFEST_FILE = 'manifest.json';

/** A run of consecutive page ids: [first, count]. */
export type PageRun = [number, number];

/** One compressed file of a snapshot: a chunk of page images or a piece of WAL. */
export interface FileEntry {
  /** File name relative to the snapshot directory. */
  file: string;
  /** Bytes of the compressed file, and XXH3-64 of them (16 hex digits). */
  bytes: number;
  xxh3: string;
  /** Bytes once decompressed, and XXH3-64 of them. */
  rawBytes: number;
  rawXxh3: string;
}

export interface ChunkEntry extends FileEntry {
  /** The pages the chunk holds, in order, as runs. */
  pages: PageRun[];
}

export interface WalEntry extends FileEntry {
  /** LSN of the segment's byte 0; the entry covers [startLsn, startLsn + rawBytes). */
  startLsn: number;
}

export interface Manifest {
  format: number;
  id: string;
  kind: 'full' | 'incremental';
  /** The snapshot this one adds to (incrementals only). */
  baseId: string | null;
  /** Store id, 32 hex digits. */
  storeId: string;
  pageSize: number;
  pageCount: number;
  segmentSize: number;
  /** The store's redo LSN when the snapshot started: every change before it is in the page copy. */
  startLsn: number;
  /** The checkpoint record the restored control file points at, and its next transaction id. */
  checkpointLsn: number;
  nextTxId: number;
  /** Where the copied WAL starts (min of the redo LSN and the first LSN of active transactions). */
  walFromLsn: number;
  /** End of the copied WAL: the snapshot is consistent at any LSN from here on. */
  endLsn: number;
  /** Wall-clock times (ms since epoch) when the copy started and when endLsn was read. */
  startedAt: number;
  finishedAt: number;
  pagesCopied: number;
  pagesReread: number;
  chunks: ChunkEntry[];
  wal: WalEntry[];
}

export const snapshotsDirOf = (dir: string) => path.join(dir, 'snapshots');
export const archiveDirOf = (dir: string) => path.join(dir, 'wal');
export const snapshotPath = (dir: string, id: string) => path.join(snapshotsDirOf(dir), id);

/**
 * The name of a WAL segment's copy in the archive and in a snapshot's wal/ (then `.lz4`,
 * `.json`): its start LSN in 16 hex digits. The snapshot directory's own naming, whatever the
 * engine calls its segment files.
 */
export function walFileName(startLsn: number): string {
  return `${startLsn.toString(16).padStart(16, '0')}.wal`;
}

export function hex64(v: bigint): string {
  return v.toString(16).padStart(16, '0');
}

export function xxh3Hex(bytes: Uint8Array): string {
  return hex64(xxh3(bytes));
}

/** The manifest as stored: its JSON, then `"xxh3"`: XXH3-64 of the JSON without that key. */
export function encodeManifest(m: Manifest): Buffer {
  const body = JSON.stringify(m);
  return Buffer.from(JSON.stringify({ ...m, xxh3: xxh3Hex(Buffer.from(body)) }, null, 1) + '\n');
}

export function decodeManifest(bytes: Buffer, file: string): Manifest {
  let parsed: Manifest & { xxh3?: unknown };
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as Manifest & { xxh3?: unknown };
  } catch (err) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file} is not valid JSON (truncated or damaged): ${(err as Error).message}`, { cause: err, details: { file } });
  }
  const { xxh3: sum, ...m } = parsed;
  if (typeof sum !== 'string' || sum !== xxh3Hex(Buffer.from(JSON.stringify(m)))) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `${file} fails its checksum (stored ${JSON.stringify(sum)}); the manifest is damaged`, { details: { file } });
  }
  if (m.format !== MANIFEST_FORMAT) {
    throw raError('RA_ERR_SNAPSHOT_INVALID', `${file} has format ${m.format}; this agent reads format ${MANIFEST_FORMAT}`, { details: { file } });
  }
  return m;
}

export async function readManifest(dir: string, id: string): Promise<Manifest> {
  const file = path.join(snapshotPath(dir, id), MANIFEST_FILE);
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw raError('RA_ERR_SNAPSHOT_CORRUPT', `cannot read ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  return decodeManifest(bytes, file);
}

/** Snapshot ids in `dir`, oldest first (ids sort by creation time). */
export async function listSnapshotIds(dir: string): Promise<string[]> {
  const names = await readdir(snapshotsDirOf(dir)).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [] as string[];
    throw err;
  });
  return names.filter((n) => !n.startsWith('.') && existsSync(path.join(snapshotsDirOf(dir), n, MANIFEST_FILE))).sort();
}

/** Every snapshot's manifest, or the error that kept it from being read. */
export async function loadAll(dir: string): Promise<Array<{ id: string; manifest?: Manifest; error?: Error }>> {
  const out: Array<{ id: string; manifest?: Manifest; error?: Error }> = [];
  for (const id of await listSnapshotIds(dir)) {
    try {
      out.push({ id, manifest: await readManifest(dir, id) });
    } catch (err) {
      out.push({ id, error: err as Error });
    }
  }
  return out;
}

/** A snapshot whose manifest cannot be read: what restore skipped (prune and repair ignore them too). */
export interface UnreadableSnapshot {
  id: string;
  /** Path of its manifest. */
  manifest: string;
  /** Why it cannot be read. */
  problem: string;
  error: Error;
}

/** Splits loadAll's result into the readable manifests and the snapshots whose manifest is not. */
export function splitReadable(dir: string, all: ReadonlyArray<{ id: string; manifest?: Manifest; error?: Error }>): { manifests: Manifest[]; unreadable: UnreadableSnapshot[] } {
  const manifests: Manifest[] = [];
  const unreadable: UnreadableSnapshot[] = [];
  for (const s of all) {
    if (s.manifest) manifests.push(s.manifest);
    else unreadable.push({ id: s.id, manifest: path.join(snapshotPath(dir, s.id), MANIFEST_FILE), problem: s.error?.message ?? 'unreadable', error: s.error ?? new Error('unreadable') });
  }
  return { manifests, unreadable };
}

/** Why a snapshot's manifest cannot be read, naming the manifest file. */
export function whyUnreadable(u: UnreadableSnapshot): string {
  return u.problem.includes(u.manifest) ? u.problem : `${u.manifest}: ${u.problem}`;
}

/** A new snapshot id: UTC time to the millisecond, then F (full) or I (incremental). */
export function newSnapshotId(kind: Manifest['kind'], at = new Date()): string {
  return `${at.toISOString().replace(/[-:.]/g, '')}-${kind === 'full' ? 'F' : 'I'}`;
}

/** Writes a file durably: temporary file, fdatasync, rename, fsync of the directory. */
export async function writeFileDurable(file: string, bytes: Uint8Array, syncDir = true): Promise<void> {
  const tmp = `${file}.tmp`;
  const h = await openPrivate(tmp, 'w');
  try {
    await writeAll(h, bytes, 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, file);
  if (syncDir) await fsyncDir(path.dirname(file));
}

/**
 * The chain a restore of `id` needs, full snapshot first. A base that is among `unreadable` is
 * damage the restore cannot do without: RA_ERR_SNAPSHOT_CORRUPT naming its manifest.
 */
export function chainOf(id: string, byId: ReadonlyMap<string, Manifest>, unreadable: readonly UnreadableSnapshot[] = []): Manifest[] {
  const chain: Manifest[] = [];
  let cur = byId.get(id);
  while (cur) {
    chain.unshift(cur);
    if (cur.kind === 'full') return chain;
    if (!cur.baseId || chain.length > 10_000) break;
    const base = byId.get(cur.baseId);
    const damaged = base ? undefined : unreadable.find((u) => u.id === cur!.baseId);
    if (damaged) {
      throw raError('RA_ERR_SNAPSHOT_CORRUPT', `snapshot ${cur.id} is an incremental on ${damaged.id}, whose manifest cannot be read: ${whyUnreadable(damaged)}`, { cause: damaged.error, details: { id: cur.id, baseId: damaged.id, file: damaged.manifest } });
    }
    if (!base) throw raError('RA_ERR_SNAPSHOT_INVALID', `snapshot ${cur.id} is an incremental on ${cur.baseId}, which is missing or unreadable`, { details: { id: cur.id, baseId: cur.baseId } });
    cur = base;
  }
  throw raError('RA_ERR_SNAPSHOT_INVALID', `snapshot ${id} has no full snapshot at the root of its chain`, { details: { id } });
}

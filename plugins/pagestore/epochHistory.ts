/**
 * The log's epoch history (plugins/replication/DESIGN.md, "Roles that change"): which epoch wrote
 * which part of the log, as `[{ epoch, startLsn }]`, ascending. A new primary (a promoted
 * replica) forks the log at a larger epoch: its first record goes into a new segment stamped
 * with that epoch, and the **fork LSN** of epoch E is the start LSN of the first segment whose
 * header says E. Everything below it is the history the new primary shares with the replicas of
 * the epoch before; a replica of that epoch whose log goes past it has records the new primary
 * never had (diverged).
 *
 * Two sources, because checkpoints retire segments:
 * - the **segment headers** of the kept segments: written (and synced) before any record of their
 *   segment, so they are the log itself and cannot disagree with it;
 * - **`epochs.json`** in the WAL directory: the history as it was when the last fork was made
 *   (or the writer last opened), so the starts of epochs whose first segments were retired are
 *   still known.
 *
 * Where both speak, the segments win: the file is written after the segment it describes (a
 * crash in between leaves the file behind the log, never ahead of it in a way the log does not
 * show), and a fork segment that never received a record may be removed by the next open and
 * made again at another epoch, which only the headers tell. The file supplies only what lies
 * below the first kept segment, and the start of the first kept segment's epoch when that epoch
 * began in a retired one.
 *
 * Segments written before headers carried epochs, or by a store not yet replicated, say epoch 0:
 * unstamped. They count as epoch 1, the epoch of a store outside a cluster (a primary's log
 * adopts epoch 1 without a fork), so they add no entry, and a fork is a segment of an epoch
 * larger than both the previous segment's and 1 (`isFork`).
 */
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { xxh3 } from 'recovery-agent/native';
import { raError } from '../../core/errors.js';
import { fsyncDir } from '../../core/fsyncDir.js';
import { openPrivate } from '../../core/privateFiles.js';
import { writeAll } from '../../core/writeAll.js';
import { SEGMENT_MAGIC, listSegments, readSegmentHeader, segmentPosition } from './walSegments.js';

export const EPOCHS_FILE = 'epochs.json';

/** The epoch of unstamped segments (header epoch 0): a store's outside a cluster. */
export const UNSTAMPED_EPOCH = 1;

/** True when a segment of epoch `next` after one of epoch `prev` (header epochs) forks the log. */
export function isFork(prev: number, next: number): boolean {
  return next > Math.max(prev, UNSTAMPED_EPOCH);
}

/** Epoch `epoch` wrote the log from `startLsn` (a segment's start) until the next entry's start. */
export interface EpochStart {
  epoch: number;
  startLsn: number;
}

/**
 * The epoch in a segment's header, or null when the file has no sound header (a segment whose
 * creation a crash cut: it holds no record). Checked by its checksum and magic only: the
 * history needs no store geometry, and recovery checks the rest.
 */
export async function segmentEpoch(walDir: string, start: number): Promise<number | null> {
  const h = await readSegmentHeader(walDir, start);
  if (h === null || h.readUInt32LE(0) !== SEGMENT_MAGIC || h.readBigUInt64LE(56) !== xxh3(h.subarray(0, 56))) return null;
  return segmentPosition(h).epoch;
}

/** The history the kept segments' headers show, and the first kept segment's start (null: no segment). */
async function fromSegments(walDir: string): Promise<{ entries: EpochStart[]; firstKept: number | null }> {
  const starts = await listSegments(walDir);
  const entries: EpochStart[] = [];
  let last = 0;
  for (const start of starts) {
    const epoch = await segmentEpoch(walDir, start);
    if (epoch === null || epoch <= last) continue;
    entries.push({ epoch, startLsn: start });
    last = epoch;
  }
  return { entries, firstKept: starts[0] ?? null };
}

/** The history `epochs.json` holds ([] when there is none). */
export async function readEpochFile(walDir: string): Promise<EpochStart[]> {
  const file = path.join(walDir, EPOCHS_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = (JSON.parse(text) as { epochs?: unknown }).epochs;
  } catch {
    parsed = undefined;
  }
  const ok = (e: unknown): e is EpochStart => {
    const x = e as EpochStart;
    return typeof x === 'object' && x !== null && Number.isSafeInteger(x.epoch) && x.epoch > 0 && Number.isSafeInteger(x.startLsn) && x.startLsn >= 0;
  };
  if (!Array.isArray(parsed) || !parsed.every(ok) || !ascending(parsed)) {
    // A history guessed wrong would let a diverged replica in, or refuse a sound one: refuse.
    throw raError('RA_ERR_STORE_INVALID', `${file} is damaged (expected {"epochs": [{"epoch": N, "startLsn": L}, ...]}, ascending)`);
  }
  return parsed.map((e) => ({ epoch: e.epoch, startLsn: e.startLsn }));
}

function ascending(h: readonly EpochStart[]): boolean {
  for (let i = 1; i < h.length; i++) if (h[i]!.epoch <= h[i - 1]!.epoch || h[i]!.startLsn <= h[i - 1]!.startLsn) return false;
  return true;
}

/** The log's epoch history (see the file's comment for how the two sources combine). */
export async function epochHistory(walDir: string): Promise<EpochStart[]> {
  const [file, segs] = await Promise.all([readEpochFile(walDir), fromSegments(walDir)]);
  if (segs.firstKept === null) return file;
  const out = file.filter((e) => e.startLsn < segs.firstKept!);
  for (const e of segs.entries) {
    const prev = out[out.length - 1];
    // The same epoch begun in a retired segment: the file's earlier start stands.
    if (prev && e.epoch <= prev.epoch) continue;
    out.push(e);
  }
  return out;
}

/**
 * Brings `epochs.json` up to the history the segments show (written only when it differs) and
 * returns that history. Called by the WAL writer at open and at a fork, and by a replica's log
 * when it starts a segment of a newer epoch: before any checkpoint can retire a segment whose
 * header is the only record of a fork.
 */
export async function syncEpochFile(walDir: string): Promise<EpochStart[]> {
  const history = await epochHistory(walDir);
  const file = await readEpochFile(walDir);
  if (JSON.stringify(file) !== JSON.stringify(history)) await writeEpochFile(walDir, history);
  return history;
}

/** Replaces `epochs.json` atomically and durably. */
async function writeEpochFile(walDir: string, history: readonly EpochStart[]): Promise<void> {
  const file = path.join(walDir, EPOCHS_FILE);
  const tmp = `${file}.tmp`;
  const h = await openPrivate(tmp, 'w');
  try {
    await writeAll(h, Buffer.from(JSON.stringify({ epochs: history }) + '\n'), 0);
    await h.datasync();
  } finally {
    await h.close();
  }
  await rename(tmp, file);
  await fsyncDir(walDir);
}

/** The fork LSN of the first epoch after `epoch` in `history` (where that epoch's history ends), or null when none came after it. */
export function forkAfter(history: readonly EpochStart[], epoch: number): { epoch: number; startLsn: number } | null {
  // Epoch 1 taking over unstamped segments is an adoption, not a fork.
  return history.find((e) => isFork(epoch, e.epoch)) ?? null;
}

/**
 * The epoch that wrote `lsn`: the last entry starting at or below it. Below the first entry
 * (unstamped segments, see the file's comment) it is UNSTAMPED_EPOCH; null when the history is
 * empty (the log was never stamped: the caller's current epoch).
 */
export function epochAt(history: readonly EpochStart[], lsn: number): number | null {
  let found: number | null = history.length > 0 ? Math.min(UNSTAMPED_EPOCH, history[0]!.epoch) : null;
  for (const e of history) if (e.startLsn <= lsn) found = e.epoch;
  return found;
}

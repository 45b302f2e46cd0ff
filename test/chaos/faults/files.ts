/**
 * The files of a store and of its snapshot directory that the file fault families (bitFlips.ts,
 * tornFiles.ts) damage, and the damage itself, done through plain pread/pwrite/ftruncate and
 * fsync'd, as a failing disk or a stray writer would leave it.
 */
import { closeSync, existsSync, fstatSync, readFileSync, fsyncSync, ftruncateSync, mkdtempSync, openSync, readSync, readdirSync, rmSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ControlClient } from '../../../plugins/pagestore/controlClient.js';
import { dataFileOf, walDirOf } from '../../../plugins/pagestore/storeFiles.js';
import { SEGMENT_HEADER_SIZE, segmentContentLength } from '../../../plugins/pagestore/walSegments.js';
import type { Prng } from '../../crash/pattern.js';

/** The newest segment in the store's wal/ (the one being appended to) and how far it is written. */
export function liveSegment(store: string): { file: string; bytes: number } {
  const dir = walDirOf(store);
  const names = readdirSync(dir).filter((n) => /^[0-9a-f]{16}\.wal$/.test(n)).sort();
  if (names.length === 0) throw new Error(`no WAL segment in ${dir}`);
  const file = path.join(dir, names[names.length - 1]!);
  // Up to its last record: the writer makes segments at full size, zeros after the records.
  return { file, bytes: segmentContentLength(readFileSync(file)) };
}

/** Archived WAL segments (`<snapshots>/wal/*.wal.lz4`), oldest first. */
export function archivedSegments(snapshots: string): string[] {
  const dir = path.join(snapshots, 'wal');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.endsWith('.wal.lz4')).sort().map((n) => path.join(dir, n));
}

/** Every snapshot's chunk files (`<snapshots>/snapshots/<id>/chunk-NNNNN.lz4`). */
export function snapshotChunks(snapshots: string): string[] {
  const dir = path.join(snapshots, 'snapshots');
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const id of readdirSync(dir).filter((n) => !n.startsWith('.')).sort()) {
    const sub = path.join(dir, id);
    if (!existsSync(path.join(sub, 'manifest.json'))) continue;
    for (const n of readdirSync(sub).filter((x) => /^chunk-\d+\.lz4$/.test(x)).sort()) out.push(path.join(sub, n));
  }
  return out;
}

/**
 * The newest snapshot's chunk files: what a fault damages, since an older snapshot may be pruned
 * by retention (snapshots every second in the chaos config) before a pass comes by, and damage
 * deleted is nothing to detect.
 */
export function newestSnapshotChunks(snapshots: string): string[] {
  const files = snapshotChunks(snapshots);
  const newest = files.length ? path.dirname(files[files.length - 1]!) : null;
  return files.filter((f) => path.dirname(f) === newest);
}

export const dataFile = (store: string): string => dataFileOf(store);

/**
 * Damages a cold page that its owner does not hold in memory (`damage(page)` does it on disk and
 * says what it did), and makes sure the damage holds. The page is drawn at random among the cold
 * ones, the first (wrapping) that the owner says is not cached (control socket `read-page`): a
 * cached page is rewritten by the owner's next checkpoint once the writer changes it, which heals
 * the damage by luck before any scrub comes by (the trial then fails as "not detected"). A page
 * out of memory cannot be: loading it fails while it is bad. But the owner may take the page
 * into its cache, or write it back from an eviction, just as the damage lands (seed 9's long run
 * once, page-bitflip trial 14): so the owner is asked again after the damage, and when it now
 * holds the page, or its copy on disk verifies, another page is damaged instead (at most 8).
 * Without an owner to ask (none serving the socket), the page drawn.
 */
export async function damageColdPage(store: string, cold: { from: number; to: number }, rng: Prng, damage: (page: number) => string): Promise<{ page: number; what: string }> {
  let c: ControlClient;
  try {
    c = await ControlClient.connect(store, { timeoutMs: 2000 });
  } catch {
    const page = rng.int(cold.from, cold.to);
    return { page, what: damage(page) };
  }
  try {
    const n = cold.to - cold.from + 1;
    const undone: number[] = [];
    for (let attempt = 0; ; attempt++) {
      const first = rng.int(cold.from, cold.to);
      let page = first;
      for (let k = 0; k < n; k++) {
        page = cold.from + ((first - cold.from + k) % n);
        if (!undone.includes(page) && !(await c.readPage(page)).cached) break;
      }
      const what = damage(page);
      await sleep(kDamageSettleMs);
      const after = await c.readPage(page);
      if ((!after.cached && after.fault !== null) || attempt === kDamageAttempts - 1) {
        return { page, what: undone.length > 0 ? `${what} (after ${undone.length} page(s) the owner took or rewrote around the damage: ${undone.join(', ')})` : what };
      }
      undone.push(page);
    }
  } finally {
    c.close();
  }
}

/** How long a page's damage must hold, and how many pages are tried (damageColdPage). */
const kDamageSettleMs = 50;
const kDamageAttempts = 8;

export function size(file: string): number {
  const fd = openSync(file, 'r');
  try {
    return fstatSync(fd).size;
  } finally {
    closeSync(fd);
  }
}

/** Flips one bit of byte `at` of `file`; returns what it did. */
export function flipBit(file: string, at: number, bit: number): string {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    if (readSync(fd, b, 0, 1, at) !== 1) throw new Error(`${file} has no byte ${at}`);
    b[0] = b[0]! ^ (1 << bit);
    writeSync(fd, b, 0, 1, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return `bit ${bit} of byte ${at} of ${file}`;
}

/** Overwrites [at, at + len) of `file` with seeded random bytes. */
export function overwrite(file: string, at: number, len: number, rng: Prng): void {
  const data = Buffer.alloc(len);
  for (let i = 0; i < len; i++) data[i] = rng.u32() & 0xff;
  const fd = openSync(file, 'r+');
  try {
    writeSync(fd, data, 0, len, at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export function truncate(file: string, to: number): void {
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, to);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Damages a random byte of the live segment's records (past its header): `act(file, at)` does it
 * and says what it did. Right after a switch to a new segment it holds none yet: the writer is
 * committing, so it will within a few milliseconds. The segment may also be retired (archived
 * and removed by a checkpoint) between the choice and the damage, once the log has moved on: the
 * damage then finds no file (ENOENT) and is done again on the new live segment (seed 9's long
 * run once, wal-live-bitflip trial 14).
 */
export async function damageLiveWal(store: string, rng: Prng, act: (file: string, at: number) => string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const { file, bytes } = liveSegment(store);
      if (bytes > SEGMENT_HEADER_SIZE + 1) return act(file, rng.int(SEGMENT_HEADER_SIZE, bytes - 1));
      if (attempt >= 200) throw new Error(`the live WAL segment ${file} held no record for 2 s`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 200) throw err;
    }
    await sleep(10);
  }
}

/** Probe for the file families: a file we write can be damaged and read back damaged. */
function probeFileDamageIn(dir: string): string | null {
  const file = path.join(dir, 'probe.bin');
  const fd = openSync(file, 'w+');
  try {
    writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 0);
  } finally {
    closeSync(fd);
  }
  flipBit(file, 100, 3);
  truncate(file, 2048);
  const back = Buffer.alloc(4096);
  const fd2 = openSync(file, 'r');
  const n = readSync(fd2, back, 0, 4096, 0);
  closeSync(fd2);
  if (n !== 2048) return `a truncated file reads ${n} bytes, not 2048`;
  if (back[100] !== (0x5a ^ 8)) return 'a flipped bit does not read back flipped';
  return null;
}

/** probeFileDamageIn, in a temporary directory of its own (each file-damage family's `probe`). */
export function probeFileDamage(): string | null {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ra-chaos-probe-'));
  try {
    return probeFileDamageIn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

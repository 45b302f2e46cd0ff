/**
 * For the replica tests: a primary store written by the real writer, with every log segment it
 * ever had kept (retired ones through an archiver that copies them), and the primary's log cut
 * into runs of consecutive records, as the stream's `wal` frames carry them.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { PageStore } from '../../plugins/pagestore/pageStore.js';
import { validRecordAt } from '../../plugins/pagestore/walRecord.js';
import { segmentContentLength } from '../../plugins/pagestore/walSegments.js';
import { copyStoreDir } from './store.js';
import { prng } from './prng.js';

export const PAGE = 4096;
export const SEGMENT = 65536;
export const PAGES = 48;

/** A seeded source of integers below n and of bytes. */
function rngOf(seed: number): { int(n: number): number; bytes(n: number): Uint8Array } {
  const next = prng(seed);
  return {
    int: (n) => next() % n,
    bytes: (n) => Uint8Array.from({ length: n }, () => next() & 0xff),
  };
}

export interface Primary {
  /** The primary store, closed cleanly. */
  dir: string;
  /** Where its retired segments went. */
  archive: string;
  /** A copy of the store taken when it was just created and closed: the replica's base. */
  base: string;
}

/**
 * Creates a primary in `root`, copies it as the base, then writes `commits` transactions (a few
 * pages each, some with two changes to a page, an abort now and then) with a checkpoint every
 * `checkpointEvery`, and closes it cleanly.
 */
export async function writePrimary(root: string, commits: number, checkpointEvery: number, seed = 7): Promise<Primary> {
  const dir = path.join(root, 'primary');
  const archive = path.join(root, 'archive');
  const base = path.join(root, 'base');
  mkdirSync(archive, { recursive: true });
  const created = await PageStore.open(dir, { create: true, pageCount: PAGES, pageSize: PAGE, segmentSize: SEGMENT, controlSocket: false, checkpointIntervalMs: 0 });
  await created.close();
  copyStoreDir(dir, base);
  const store = await PageStore.open(dir, {
    controlSocket: false,
    checkpointIntervalMs: 0,
    checkpointWalBytes: Number.MAX_SAFE_INTEGER,
    cacheBytes: 16 * PAGE,
    archiver: async (seg) => copyFileSync(seg.file, path.join(archive, path.basename(seg.file))),
  });
  const rng = rngOf(seed);
  try {
    for (let i = 0; i < commits; i++) {
      const tx = store.begin();
      const n = 1 + rng.int(4);
      for (let k = 0; k < n; k++) {
        const page = 1 + rng.int(PAGES - 1);
        const len = 1 + rng.int(300);
        await tx.write(page, rng.int(PAGE - 32 - len), Buffer.from(rng.bytes(len)));
      }
      if (i % 17 === 5) await tx.abort();
      else await tx.commit();
      if (i % checkpointEvery === checkpointEvery - 1) await store.checkpoint();
    }
  } finally {
    await store.close();
  }
  return { dir, archive, base };
}

/** A run of the primary's records: bytes `[startLsn, endLsn)`, all in one segment. */
export interface Run {
  bytes: Buffer;
  startLsn: number;
  endLsn: number;
}

/**
 * The primary's records from `fromLsn` on, cut into runs of 1 to `maxRecords` records (drawn
 * from `seed`), never across a segment. Segments come from the archive, or the store's log.
 */
export function primaryRuns(p: Primary, fromLsn: number, maxRecords: number, seed: number): Run[] {
  const rng = rngOf(seed);
  const names = new Set<string>([...readdirSync(p.archive), ...readdirSync(path.join(p.dir, 'wal'))].filter((n) => n.endsWith('.wal')));
  const runs: Run[] = [];
  for (const name of [...names].sort()) {
    const start = parseInt(name.slice(0, 16), 16);
    if (start + SEGMENT <= fromLsn) continue;
    const file = existsSync(path.join(p.dir, 'wal', name)) ? path.join(p.dir, 'wal', name) : path.join(p.archive, name);
    const buf = readFileSync(file);
    const ends: number[] = [];
    let at = 64;
    for (let size; (size = validRecordAt(buf, at, buf.byteLength, start + at)) > 0; at += size) {
      if (start + at >= fromLsn) ends.push(at);
    }
    // A segment made at full size ends its records where its zeros begin.
    if (at !== segmentContentLength(buf)) throw new Error(`segment ${file}: records end at ${at} of ${segmentContentLength(buf)} bytes`);
    ends.push(at);
    for (let i = 0; i + 1 < ends.length; ) {
      const j = Math.min(ends.length - 1, i + 1 + rng.int(maxRecords));
      runs.push({ bytes: buf.subarray(ends[i]!, ends[j]!), startLsn: start + ends[i]!, endLsn: start + ends[j]! });
      i = j;
    }
  }
  return runs;
}

/** The runs from `lsn` on: those that start at or after it (a run never straddles a durable end). */
export function runsFrom(runs: readonly Run[], lsn: number): Run[] {
  return runs.filter((r) => r.startLsn >= lsn);
}

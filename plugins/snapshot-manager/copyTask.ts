/**
 * The page checks of the page copy (copyPages.ts), and its worker task for incrementals. Slabs
 * are views on SharedArrayBuffers; the caller does not touch a slab while its task runs.
 *
 * `checkRun` (full snapshots, on the main thread, right after it read a run): verifies every
 * page (native, one call). A page that fails may be a write in progress: the caller reads the
 * run again after a pause (as the scanner does); only a run that verifies goes to a worker to
 * be compressed (compressTask.ts). Checking here keeps ~0.1 ms per MiB off the worker, whose
 * compression bounds a one-worker snapshot while this thread has a core to itself.
 *
 * `select` (incrementals): reads the candidate pages itself (runs of adjacent ids, scattered
 * over the file: many small preads, cheaper here than as promises on the main thread), verifies
 * them, and moves those whose LSN is at or after `sinceLsn` to the front of the slab, in order.
 * When they fill at least half the slab (pages the WAL named, mostly) it compresses them into
 * `frame` as a chunk of their own; else the caller packs them with others into chunks.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { verifyPages } from 'recovery-agent/native';
import { readU64 } from '../../core/bytes.js';
import { raError } from '../../core/errors.js';
import type { SharedBytes } from '../../core/workerPool.js';
import { compressInto, type CompressResult } from './compressTask.js';
import { freeBlockBuffers } from './lz4Frame.js';

/**
 * Verifies `count` pages from page `firstPage` on; returns the indices of bad ones, and the
 * largest page LSN (a little-endian u64 at `lsnOffset` of each page: the engine's `pages.lsnOffset`).
 */
export function checkRun(raw: Uint8Array, pageSize: number, firstPage: number, count: number, lsnOffset: number): { bad: number[]; maxPageLsn: number } {
  const bad = badPages(raw, pageSize, firstPage, count);
  let maxPageLsn = 0;
  if (bad.length === 0) for (let i = 0; i < count; i++) maxPageLsn = Math.max(maxPageLsn, readU64(raw, i * pageSize + lsnOffset));
  return { bad, maxPageLsn };
}

/** Crosses to the worker (`select`). */
export interface SelectInput {
  [key: string]: SharedBytes | number | string | readonly number[];
  readonly slab: SharedBytes;
  /** Receives the chunk's frame when the task compresses; `frameBound(slab.byteLength)` bytes. */
  readonly frame: SharedBytes;
  readonly dataFile: string;
  /** Candidate runs, flat: first page id, count, first page id, count, …; ascending. */
  readonly runs: readonly number[];
  readonly pageSize: number;
  /** Where each page's LSN (little-endian u64) is: the engine's `pages.lsnOffset` (a task gets numbers, not the engine). */
  readonly lsnOffset: number;
  /** The base snapshot's start LSN: pages older than it are unchanged since the base. */
  readonly sinceLsn: number;
}

/** Comes back from the worker (`select`). */
export interface SelectResult {
  /** Ids of candidate pages that failed verification; nothing was selected if any. */
  bad: number[];
  /** Largest page LSN among the selected pages. */
  maxPageLsn: number;
  /** Ids of the pages now at the front of the slab, in order. */
  selected: number[];
  /** Set when the task compressed the selected pages into `frame`. */
  chunk: CompressResult | null;
}

export async function select(input: SelectInput): Promise<SelectResult> {
  const { slab, runs, pageSize } = input;
  const fd = openSync(input.dataFile, 'r');
  try {
    for (let r = 0, at = 0; r < runs.length; r += 2) {
      const length = runs[r + 1]! * pageSize;
      const position = runs[r]! * pageSize;
      for (let done = 0; done < length; ) {
        const n = readSync(fd, slab, at + done, length - done, position + done);
        if (n === 0) throw raError('RA_ERR_STORE_INVALID', `short read of ${input.dataFile} at byte ${position + done}: the data file is smaller than its control file says`);
        done += n;
      }
      at += length;
    }
  } finally {
    closeSync(fd);
  }
  const bad: number[] = [];
  for (let r = 0, at = 0; r < runs.length; r += 2) {
    const count = runs[r + 1]!;
    for (const i of badPages(slab.subarray(at, at + count * pageSize), pageSize, runs[r]!, count)) bad.push(runs[r]! + i);
    at += count * pageSize;
  }
  if (bad.length > 0) return { bad, maxPageLsn: 0, selected: [], chunk: null };
  const selected: number[] = [];
  let maxPageLsn = 0;
  for (let r = 0, slot = 0; r < runs.length; r += 2) {
    for (let id = runs[r]!; id < runs[r]! + runs[r + 1]!; id++, slot++) {
      const lsn = readU64(slab, slot * pageSize + input.lsnOffset);
      // Page 0, the superblock, is written when the store is created and never changes: the
      // full snapshot at the root of every chain holds it.
      if (lsn < input.sinceLsn || id === 0) continue;
      if (selected.length !== slot) slab.copyWithin(selected.length * pageSize, slot * pageSize, (slot + 1) * pageSize);
      selected.push(id);
      maxPageLsn = Math.max(maxPageLsn, lsn);
    }
  }
  if (2 * selected.length * pageSize < slab.byteLength) return { bad, maxPageLsn, selected, chunk: null };
  const chunk = compressInto(slab.subarray(0, selected.length * pageSize), input.frame);
  await freeBlockBuffers();
  return { bad, maxPageLsn, selected, chunk };
}

/** Indices of the pages in `raw` that fail verification. */
function badPages(raw: Uint8Array, pageSize: number, firstPage: number, count: number): number[] {
  const out = new Uint32Array(2 * count);
  const n = verifyPages(raw, pageSize, firstPage, Number.MAX_SAFE_INTEGER, out);
  return Array.from({ length: n }, (_, k) => out[2 * k]!);
}

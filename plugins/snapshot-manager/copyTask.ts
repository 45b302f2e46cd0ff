/**
 * Worker task for snapshots: reads a run of pages from pages.db straight into a slab (a
 * view on a SharedArrayBuffer), verifies them (native, one call), and — only if every page
 * verifies — compresses the slab into an LZ4 frame file. A page that fails may be a write in
 * progress: the task then writes nothing and reports the pages, and the caller runs it again
 * after a pause (as the scanner does). The main thread only hands out ranges.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { verifyPages } from 'recovery-agent/native';
import type { SharedBytes } from '../../core/workerPool.js';
import { readU64 } from '../pagestore/format.js';
import compressChunk, { type CompressResult } from './compressTask.js';

/** Crosses to the worker. */
export interface CopyInput {
  [key: string]: SharedBytes | number | string;
  readonly slab: SharedBytes;
  readonly dataFile: string;
  readonly firstPage: number;
  readonly count: number;
  readonly pageSize: number;
  /** Where the compressed frame goes (full snapshots). */
  readonly file: string;
  /**
   * -1 for a full snapshot. Otherwise an incremental's base start LSN: the pages whose LSN is at
   * or after it (page 0 never) are moved to the front of the slab, in order, and their ids
   * returned; nothing is compressed (the caller packs them into chunks).
   */
  readonly sinceLsn: number;
}

/** Comes back from the worker. */
export interface CopyResult {
  /** Indices (within the run) of pages that failed verification; nothing was written if any. */
  bad: number[];
  maxPageLsn: number;
  chunk: CompressResult | null;
  /** Incrementals: the ids of the pages now at the front of the slab. */
  selected: number[];
}

export default async function copyChunk(input: CopyInput): Promise<CopyResult> {
  const { slab, firstPage, count, pageSize } = input;
  const length = count * pageSize;
  const fd = openSync(input.dataFile, 'r');
  try {
    for (let done = 0; done < length; ) {
      const n = readSync(fd, slab, done, length - done, firstPage * pageSize + done);
      if (n === 0) throw new Error(`short read of ${input.dataFile} at byte ${firstPage * pageSize + done}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  const out = new Uint32Array(2 * count);
  const nBad = verifyPages(slab.subarray(0, length), pageSize, firstPage, Number.MAX_SAFE_INTEGER, out);
  if (nBad > 0) return { bad: Array.from({ length: nBad }, (_, k) => out[2 * k]!), maxPageLsn: 0, chunk: null, selected: [] };
  let maxPageLsn = 0;
  if (input.sinceLsn >= 0) {
    const selected: number[] = [];
    for (let i = 0; i < count; i++) {
      const lsn = readU64(slab, i * pageSize + 24);
      if (lsn < input.sinceLsn || firstPage + i === 0) continue;
      if (selected.length !== i) slab.copyWithin(selected.length * pageSize, i * pageSize, (i + 1) * pageSize);
      selected.push(firstPage + i);
      maxPageLsn = Math.max(maxPageLsn, lsn);
    }
    return { bad: [], maxPageLsn, chunk: null, selected };
  }
  for (let i = 0; i < count; i++) maxPageLsn = Math.max(maxPageLsn, readU64(slab, i * pageSize + 24));
  return { bad: [], maxPageLsn, chunk: await compressChunk({ slab, length, file: input.file }), selected: [] };
}

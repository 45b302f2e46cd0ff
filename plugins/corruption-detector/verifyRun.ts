/**
 * Reading and checking consecutive pages: shared by the worker task and the inline path on the
 * calling thread (both in scanTask.ts). Both end in the native `verifyPages` kernel.
 */
import { readSync } from 'node:fs';
import { verifyPages } from 'recovery-agent/native';

/** Kernel findings of one run: (index within the run, reason code) pairs, flattened. */
export type RunFindings = number[];

/** What one run found. Crosses from a worker to the main thread as a task result. */
export interface RunResult {
  /** Pages read in full; pages past them were beyond the end of the file. */
  readonly pagesRead: number;
  /** (index, reason code) pairs of the bad pages among those read. */
  readonly bad: RunFindings;
}

/** Reuse one output array per thread: findings are rare, so it is almost never written. */
let outScratch = new Uint32Array(2 * 1024);

/** Verifies the `pagesRead` pages at the start of `view` (page ids from `firstPageId`). */
export function verifyRun(view: Uint8Array, pageSize: number, firstPageId: number, pagesRead: number, maxLsn: number): RunResult {
  if (outScratch.length < 2 * pagesRead) outScratch = new Uint32Array(2 * pagesRead);
  const n = pagesRead === 0 ? 0 : verifyPages(view.subarray(0, pagesRead * pageSize), pageSize, firstPageId, maxLsn, outScratch);
  return { pagesRead, bad: n === 0 ? [] : Array.from(outScratch.subarray(0, 2 * n)) };
}

/** Fills `view` from `fd` at `position` with positional reads; returns the whole pages read. */
export function readRunSync(fd: number, view: Uint8Array, position: number, pageSize: number): number {
  let done = 0;
  while (done < view.byteLength) {
    const n = readSync(fd, view, done, view.byteLength - done, position + done);
    if (n === 0) break; // end of file
    done += n;
  }
  return Math.floor(done / pageSize);
}

/**
 * Why a page is reported corrupt: the reason codes of the native `verifyPages` and `verifyFile`
 * kernels (native/index.d.ts) as the strings scans, failures and `--json` output use.
 */

/** Every reason a scan can give for a page. */
export type CorruptReason = 'checksum' | 'magic' | 'version' | 'page-id' | 'lsn-beyond-wal' | 'short-read';

/**
 * Kernel code → reason. Index = code; 0 means sound. `short-read` (6) is a page the data file
 * ended before (it shrank while being scanned): `verifyFile` reports it, and the lanes of
 * scanTask.ts give it to the pages their reads did not reach.
 */
const BY_CODE: readonly (CorruptReason | null)[] = [null, 'checksum', 'magic', 'version', 'page-id', 'lsn-beyond-wal', 'short-read'];

/** The reason string of a kernel reason code. */
export function reasonOf(code: number): CorruptReason {
  const r = BY_CODE[code];
  if (r === undefined || r === null) throw new RangeError(`unknown verifyPages/verifyFile reason code ${code}`);
  return r;
}

/** A page a scan found corrupt. */
export interface PageFinding {
  readonly pageId: number;
  readonly reason: CorruptReason;
}

/**
 * recovery-agent's native addon (Rust, Node-API): XXH3-64 checksums and page verification.
 *
 * Import as `import { xxh3, xxh3Pages, verifyPages } from 'recovery-agent/native'`. Importing throws an
 * `Error` with `code === 'RA_ERR_NATIVE_MISSING'` when the addon for this platform has not been
 * built (`npm run build:native`) or cannot be loaded.
 *
 * The functions hash with XXH3-64, seed 0 and the default secret: the same values as
 * `xxhsum -H3` and xxhash-addon's `XXHash3.hash` (which returns them as 8 big-endian bytes).
 * They accept views on an `ArrayBuffer` or a `SharedArrayBuffer`, at any `byteOffset`. If
 * another thread writes the bytes while they are hashed, the result is of whatever was read.
 *
 * @packageDocumentation
 */

/**
 * XXH3-64 of the bytes of `view`.
 *
 * @param view - A `Uint8Array` or `Buffer`; only the bytes the view covers are hashed.
 * @returns The 64-bit hash as an unsigned `bigint`.
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) if not called with exactly one
 * `Uint8Array`.
 */
export declare function xxh3(view: Uint8Array): bigint;

/**
 * One XXH3-64 per page: `out[i]` receives the hash of bytes `[i * pageSize, (i + 1) * pageSize)`
 * of `view`. One native call for all pages, with no allocation per page.
 *
 * @param view - The consecutive pages, as a `Uint8Array` or `Buffer`; `view.byteLength` must be a
 * multiple of `pageSize` (0 is allowed and hashes no page).
 * @param pageSize - Bytes per page: a positive integer.
 * @param out - Receives the checksums; needs at least `view.byteLength / pageSize` elements
 * (later elements are left untouched) and must not share memory with `view`.
 * @returns The number of pages hashed.
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a `pageSize` that is not a positive integer;
 * RangeError (`code: 'ERR_INVALID_ARG_VALUE'`) when the length is not a multiple of `pageSize`,
 * `out` is too short, or `out` overlaps `view`.
 */
export declare function xxh3Pages(view: Uint8Array, pageSize: number, out: BigUint64Array): number;

/**
 * Reason codes `verifyPages` writes, one per bad page. Stable: they never change meaning.
 *
 * | code | reason           | the page fails because                                      |
 * |------|------------------|-------------------------------------------------------------|
 * | 1    | `checksum`       | its u64 at 0 is not XXH3-64 of bytes `[8, pageSize)`        |
 * | 2    | `magic`          | its u32 at 8 is not `0x47504152` ("RAPG")                   |
 * | 3    | `version`        | its u16 at 12 is not the format version, 1                  |
 * | 4    | `page-id`        | its u32 at 16 is not its position (`firstPageId + index`)   |
 * | 5    | `lsn-beyond-wal` | its u64 page LSN at 24 is greater than `maxLsn`             |
 *
 * A page that fails several checks gets the first in the order magic, version, page-id,
 * checksum, lsn-beyond-wal: the header checks name what is damaged (a flipped magic bit breaks
 * the checksum too), and the LSN means something only on an otherwise intact page.
 */
export type VerifyReasonCode = 1 | 2 | 3 | 4 | 5;

/**
 * Verifies consecutive pages of the reference page store's format (plugins/pagestore/README.md):
 * header sanity (magic, version, page id = position), XXH3-64 checksum of bytes `[8, pageSize)`,
 * and page LSN ≤ `maxLsn`. One native call for all pages, no allocation; hashes only pages whose
 * header checks pass.
 *
 * For each bad page, in page order, it writes two elements into `out`: the page's index within
 * `view` (0 for the first page of the view) and its reason code ({@link VerifyReasonCode}). Pairs
 * that do not fit in `out` (it holds `Math.floor(out.length / 2)`) are counted but not written.
 *
 * @param view - The pages, as a `Uint8Array` or `Buffer`, on an `ArrayBuffer` or a
 * `SharedArrayBuffer`, at any `byteOffset`; `view.byteLength` must be a multiple of `pageSize`
 * (0 checks nothing).
 * @param pageSize - Bytes per page: an integer of at least 32 (the header).
 * @param firstPageId - The page id (position in the data file) of the view's first page: an
 * integer from 0 to 2^32 − 1, and the view's last page id must not pass 2^32 − 1.
 * @param maxLsn - The largest valid page LSN (the end of the WAL): an integer from 0 to
 * `Number.MAX_SAFE_INTEGER`; pass `Number.MAX_SAFE_INTEGER` to skip the LSN check.
 * @param out - Receives (index, reason) pairs; must not share memory with `view`.
 * @returns The number of bad pages (which may exceed the pairs written).
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a `pageSize`, `firstPageId` or `maxLsn` outside its
 * range; RangeError (`code: 'ERR_INVALID_ARG_VALUE'`) when the length is not a multiple of
 * `pageSize`, the page ids would pass 2^32 − 1, or `out` overlaps `view`.
 */
export declare function verifyPages(view: Uint8Array, pageSize: number, firstPageId: number, maxLsn: number, out: Uint32Array): number;

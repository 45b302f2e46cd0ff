/**
 * recovery-agent's native addon (Rust, Node-API): XXH3-64 checksums.
 *
 * Import as `import { xxh3, xxh3Pages } from 'recovery-agent/native'`. Importing throws an
 * `Error` with `code === 'RA_ERR_NATIVE_MISSING'` when the addon for this platform has not been
 * built (`npm run build:native`) or cannot be loaded.
 *
 * Both functions hash with XXH3-64, seed 0 and the default secret: the same values as
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

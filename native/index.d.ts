/**
 * recovery-agent's native addon (Rust, Node-API): XXH3-64 checksums, page verification, the
 * redo kernels of crash recovery and restore's LZ4 decoder.
 *
 * Import as `import { xxh3, xxh3Pages, verifyPages } from 'recovery-agent/native'` (and
 * `verifyFile`, `redoCheckRecords`, `redoApplyPages`, `redoApplyHeld`, `walScanRecords`, `walAnalyze`,
 * `walScanAnalyze`, `lz4DecodeFrame`, `adviseHugePages`). Importing throws an
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

/**
 * Reason code `verifyFile` writes for a page the data file ended before (a file shorter than the
 * range, or one that shrank during the call). Stable, like {@link VerifyReasonCode}.
 */
export type VerifyFileReasonCode = VerifyReasonCode | 6;

/**
 * The checks of {@link verifyPages} over pages `[firstPageId, firstPageId + pageCount)` of the file
 * open at `fd`, read (`pread`, 1 MiB at a time) and verified by `threads` threads inside this one
 * call, the calling thread among them: the engine of the full-speed scan. It blocks the calling
 * thread until every page is checked, so call it from a process or worker with nothing else to do,
 * or in slices.
 *
 * For each bad page, in page order, it writes two elements into `out`: the page's index within the
 * range (0 for `firstPageId`) and its reason code ({@link VerifyFileReasonCode}); pages the file
 * ended before get 6. Pairs that do not fit in `out` are counted but not written.
 *
 * @param fd - A file descriptor open for reading (e.g. `FileHandle.fd`); not closed.
 * @param pageSize - Bytes per page: an integer of at least 32.
 * @param firstPageId - The first page's id (its position in the file): an integer from 0 to
 * 2^32 − 1; the range's last page id must not pass 2^32 − 1.
 * @param pageCount - Pages to check: an integer from 0 to 2^32.
 * @param maxLsn - As for {@link verifyPages}.
 * @param threads - Threads to use, the calling one included: an integer from 1 to 256 (fewer are
 * used when the range has fewer 1 MiB pieces).
 * @param out - Receives (index, reason) pairs.
 * @returns The number of bad pages (which may exceed the pairs written).
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a number outside its range; RangeError
 * (`code: 'ERR_INVALID_ARG_VALUE'`) when the page ids would pass 2^32 − 1; Error with the errno's
 * name as `code` (`EIO`, `EBADF`, …) when a read fails.
 */
export declare function verifyFile(fd: number, pageSize: number, firstPageId: number, pageCount: number, maxLsn: number, threads: number, out: Uint32Array): number;

/**
 * Problem codes `redoCheckRecords` writes, one per record redo cannot apply. Stable.
 *
 * | code | the record                                                                          |
 * |------|-------------------------------------------------------------------------------------|
 * | 1    | runs past the end of `wal` (its 64-byte minimum, or its total length)               |
 * | 2    | has a total length below 64 or not a multiple of 8, or a body (range images, full   |
 * |      | page image, checksum) longer than that length                                       |
 * | 3    | is not an update (type 1) or a CLR (type 4)                                         |
 * | 4    | names page 0, a page id ≥ `pageCount`, or not the page id it was grouped by         |
 * | 5    | changes a range that starts inside the 32-byte page header or ends past the page    |
 */
export type RedoRecordProblem = 1 | 2 | 3 | 4 | 5;

/**
 * The pre-pass of redo: checks, before any page is touched, that every record can be applied
 * (plugins/pagestore/README.md, "WAL"): the record lies within `wal`, its lengths are consistent,
 * it is an update or CLR, its page id is between 1 and `pageCount − 1` and equals `pageIds[i]`,
 * and its range `[offset, offset + length)` lies within `[32, pageSize)`. The checksum and LSN are
 * not checked again (analysis did). One native call for all records, no allocation.
 *
 * For each bad record, in order, it writes two elements into `out`: its index `i` (into
 * `positions`) and its problem code ({@link RedoRecordProblem}); pairs that do not fit in `out`
 * are counted but not written.
 *
 * @param wal - The log bytes (a `Uint8Array` or `Buffer`, on an `ArrayBuffer` or a
 * `SharedArrayBuffer`); records are read from it, never written.
 * @param positions - Where record `i` starts in `wal`, for `i < count`.
 * @param pageIds - The page id record `i` was grouped by, parallel to `positions`.
 * @param count - Records to check: an integer from 0 to 2^32 − 1, at most the length of
 * `positions` and of `pageIds`.
 * @param pageSize - Bytes per page: an integer of at least 32.
 * @param pageCount - Pages in the store: an integer from 0 to 2^32.
 * @param out - Receives (index, problem) pairs; must not share memory with the other arguments.
 * @returns The number of bad records (which may exceed the pairs written).
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a number outside its range; RangeError
 * (`code: 'ERR_INVALID_ARG_VALUE'`) when `count` passes an array or `out` overlaps an input.
 */
export declare function redoCheckRecords(wal: Uint8Array, positions: Uint32Array, pageIds: Uint32Array, count: number, pageSize: number, pageCount: number, out: Uint32Array): number;

/**
 * Status codes `redoApplyPages` writes, one per page. Stable.
 *
 * | code | the page                                                                           |
 * |------|------------------------------------------------------------------------------------|
 * | 0    | is unchanged: no record newer than its LSN (or no records); nothing to write       |
 * | 1    | changed: records applied, page LSN set, checksum resealed; write it back           |
 * | 2    | is corrupt: fails its checksum and its first record has no full page image         |
 * | 3    | is corrupt: bad magic (with a valid checksum), and no image                        |
 * | 4    | is corrupt: bad format version (with a valid checksum), and no image               |
 * | 5    | is corrupt: its page id is not its position (with a valid checksum), and no image  |
 * | 6    | has a record that fails the {@link redoCheckRecords} checks (page count aside) or  |
 * |      | names another page: its slab bytes are unspecified (never write them back)         |
 *
 * Corrupt pages are left as they were. The records of corrupt and malformed pages count neither
 * as applied nor as skipped. Codes 2–5 are 1 + the {@link VerifyReasonCode} of the failure, checked in
 * redo's order: checksum first (a torn page), then magic, version, page id.
 */
export type RedoPageStatus = 0 | 1 | 2 | 3 | 4 | 5 | 6;

/**
 * Redo of a batch of pages in one native call (plugins/pagestore/redoApply.ts): for each slot
 * `s` from `firstSlot` to `endSlot − 1`, page `pages[s]`, whose bytes are
 * `slab[(s − firstSlot) · pageSize, (s − firstSlot + 1) · pageSize)` and whose records are the WAL
 * positions `ordered[starts[s]] … ordered[starts[s + 1] − 1]`, in LSN order:
 *
 * 1. verifies the page (checksum of bytes `[8, pageSize)`, magic, version, page id); a page that
 *    fails is rebuilt only if its first record carries a full page image (flag 1), and is
 *    otherwise reported corrupt and left alone;
 * 2. applies each record whose LSN is greater than the page LSN (every record from the first on,
 *    for a page being rebuilt): an update's after image (which follows its before image) or a
 *    CLR's after image at its offset, or, with flag 1, the full page image (after those) over the
 *    whole page; the page LSN becomes the record's;
 * 3. reseals (checksum) a page it changed.
 *
 * Every record is bounds-checked again, so no input reads or writes out of bounds; run
 * {@link redoCheckRecords} first to refuse a log with bad records before any page is changed.
 * The page status goes to `status[s − firstSlot]` ({@link RedoPageStatus}). A page with no
 * records is left alone (status 0).
 *
 * @param wal - The log bytes; read only.
 * @param ordered - WAL positions of the records, grouped by page, LSN order within a page.
 * @param starts - Where each slot's records start in `ordered`; `starts[s + 1]` ends slot `s`, so
 * it needs `endSlot + 1` elements, ascending, none past `ordered.length`.
 * @param pages - The page id of each slot.
 * @param firstSlot - First slot of the batch: an integer from 0 to 2^32 − 1.
 * @param endSlot - One past the last slot: an integer from `firstSlot` to `pages.length`.
 * @param slab - The batch's pages, read from the data file, updated in place; at least
 * `(endSlot − firstSlot) · pageSize` bytes (later bytes are untouched).
 * @param pageSize - Bytes per page: an integer of at least 32.
 * @param status - Receives one status per slot of the batch; at least `endSlot − firstSlot`
 * elements.
 * @returns The number of records applied. Skipped records (no newer than their page) are the
 * records of pages with status 0 or 1 less those applied.
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a number outside its range; RangeError
 * (`code: 'ERR_INVALID_ARG_VALUE'`), before any page is touched, when the arrays do not describe
 * the batch (see above) or `slab` or `status` shares memory with another argument.
 */
export declare function redoApplyPages(
  wal: Uint8Array,
  ordered: Uint32Array,
  starts: Uint32Array,
  pages: Uint32Array,
  firstSlot: number,
  endSlot: number,
  slab: Uint8Array,
  pageSize: number,
  status: Uint32Array,
): number;

/**
 * {@link redoApplyPages} for pages the caller keeps in memory across calls (pageRedo.ts
 * `PageRedo`), with `held`: one byte per slot of the batch (`held[s − firstSlot]`), bit 1 set
 * when an earlier call verified the page (or rebuilt it from a full image) and it has stayed in
 * the caller's memory since. Such a page is not verified again (its page LSN is trusted); a page
 * this call verifies or rebuilds gets the bit; and no changed page is resealed (status 1 still
 * says it changed): the caller seals each changed page once, right before writing it
 * (`sealPage`). Saves two page hashes per page per call. Bit 2 set (and bit 1 clear): the caller
 * did not read the page because its first record in this batch carries a full page image; its
 * bytes are not looked at, the image is applied whatever LSN they hold, then every later record
 * (status 6 if that first record has no image). The call clears bit 2 as it sets bit 1. Same arguments, checks and errors
 * otherwise; `held` must have `endSlot − firstSlot` elements and share no memory with another
 * argument.
 */
export declare function redoApplyHeld(
  wal: Uint8Array,
  ordered: Uint32Array,
  starts: Uint32Array,
  pages: Uint32Array,
  firstSlot: number,
  endSlot: number,
  slab: Uint8Array,
  pageSize: number,
  status: Uint32Array,
  held: Uint8Array,
): number;

/**
 * Validates a run of consecutive WAL records of the reference store (plugins/pagestore/README.md,
 * "WAL") in one native call: from position `start` of `buf`, each record must have at least 64
 * bytes before `end`, a total length (u32 at 0) of at least 64, a multiple of 8 and within
 * `end`, its own LSN (u64 at 8) — `startLsn` plus its distance from `start` —, a type (u8 at 4)
 * from 1 to 5, and the XXH3-64 of its bytes before its last 8 in those last 8: the checks of
 * `validRecordAt` in plugins/pagestore/walRecord.ts. Each valid record's position in `buf` goes
 * to `positions[first + k]`; the run stops at the first record that is not valid, at `end`, or
 * when `positions` is full. Deciding what a stop means (the end of the log, a torn tail,
 * corruption) is the caller's.
 *
 * @param buf - The log bytes, as a `Uint8Array` or `Buffer`, on an `ArrayBuffer` or a
 * `SharedArrayBuffer`; read only.
 * @param start - Position of the first record: an integer, at most `end`.
 * @param end - Where the records must end (e.g. the end of the segment): at most
 * `buf.byteLength`.
 * @param startLsn - The LSN of the record at `start`: an integer from 0 to
 * `Number.MAX_SAFE_INTEGER`.
 * @param positions - Receives the positions of the valid records, from index `first`; must not
 * share memory with `buf`. A position that does not fit a u32 ends the run.
 * @param first - Where in `positions` to write the first position: at most `positions.length`.
 * @returns How many valid records it found (and wrote). Where it stopped: the last one's
 * position plus its length, or `start` when it found none.
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a number outside its range; RangeError
 * (`code: 'ERR_INVALID_ARG_VALUE'`) when `start > end`, `end` passes `buf`, `first` passes
 * `positions`, or `positions` overlaps `buf`.
 */
export declare function walScanRecords(buf: Uint8Array, start: number, end: number, startLsn: number, positions: Uint32Array, first: number): number;

/**
 * Recovery's analysis of one chunk of the log (native/src/analysis.rs), over records a scan has
 * already validated (`walScanRecords`), in one call: JavaScript then touches per-transaction and
 * per-chunk data, never per-record. Checkpoint records are skipped (their JSON stays in JS);
 * commit and abort records may carry a body of any length.
 *
 * - `txs` receives 4 numbers per transaction of the chunk, in order of its first record there:
 *   transaction id, first LSN, last LSN, and what its last record is (0 not an end, 1 commit,
 *   2 abort). Only that last record decides: an ended transaction is no loser, an open one's
 *   undo starts at its last LSN.
 * - `redo` receives the (position, page id) pairs of the redo records (update or CLR with an LSN
 *   at or after `redoLsn`), in LSN order within each group: with `workers` > 1, group w holds
 *   the records of the blocks of `blockPages` page ids with `floor(pageId / blockPages) % workers
 *   === w`; with 0 or 1, one group. Group w starts at pair `sum over v < w of (n_v + 1)`, and the
 *   pair after its last is left for the caller (a segment-end marker).
 * - `covered` (a bitmap of page ids, bit `p & 7` of byte `p >> 3`) gets each redo record's page
 *   set; `dirty` receives (page id, LSN) of each page whose bit was clear: its first change.
 * - `summary`: [0] transactions, [1] dirty pages, [2] largest transaction id, [3] the index in
 *   `positions` of the first redo record redo could not apply (`redoCheckRecords`' checks) or -1,
 *   [4] its {@link RedoRecordProblem}, [5..9] records of types 1..5, [10 + w] group w's records.
 *   At a bad record the analysis stops: what follows it is not reported.
 *
 * @param wal - The log bytes (read only).
 * @param positions - Positions of validated records in `wal`, in LSN order; the first `count` are used.
 * @param params - `[redoLsn, pageSize, pageCount, workers, blockPages]`.
 * @param covered - Bitmap of pages redo already touches (read and written).
 * @param txs - At least `4 × count` elements.
 * @param redo - At least `2 × (count + max(workers, 1))` elements.
 * @param dirty - At least `2 × count` elements.
 * @param summary - At least `10 + max(workers, 1)` elements.
 * @returns How many redo records the chunk has (up to a bad one).
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_INVALID_ARG_VALUE'`) for outputs too short, a parameter out of range,
 * or an output sharing memory with another argument.
 */
export declare function walAnalyze(
  wal: Uint8Array,
  positions: Uint32Array,
  count: number,
  params: Float64Array,
  covered: Uint8Array,
  txs: Float64Array,
  redo: Uint32Array,
  dirty: Float64Array,
  summary: Float64Array,
): number;

/**
 * `walScanRecords` and `walAnalyze` in one pass over the log (native/src/analysis.rs
 * `scan_analyse`): validates records from `start` exactly as `walScanRecords` does (same stop,
 * same positions written, same count returned) and analyses each as it is validated, as
 * `walAnalyze` would over the positions written, with the same outputs. At a redo record redo
 * could not apply the analysis stops (`summary[3]` is its index in `positions`, counting from 0,
 * not from `first`) but validation goes on, so the caller still decides first where the log
 * ends and whether what follows is a torn tail or damage.
 *
 * @param params - `[redoLsn, pageSize, pageCount, workers, blockPages]`.
 * @param covered - Bitmap of pages redo already touches (read and written).
 * @param txs - At least `4 × room` elements, where `room = positions.length - first` (the
 * records are not known before the scan, which must not stop for lack of output space).
 * @param redo - At least `2 × (room + max(workers, 1))` elements.
 * @param dirty - At least `2 × room` elements.
 * @param summary - At least `10 + max(workers, 1)` elements; layout as `walAnalyze`'s.
 * @returns How many valid records it found (and wrote into `positions` from `first`).
 * @throws TypeError (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type;
 * RangeError (`code: 'ERR_OUT_OF_RANGE'`) for a number outside its range; RangeError
 * (`code: 'ERR_INVALID_ARG_VALUE'`) for `start > end`, `end` past `buf`, `first` past
 * `positions`, outputs too short, a parameter out of range, or an output sharing memory with
 * another argument.
 */
export declare function walScanAnalyze(
  buf: Uint8Array,
  start: number,
  end: number,
  startLsn: number,
  positions: Uint32Array,
  first: number,
  params: Float64Array,
  covered: Uint8Array,
  txs: Float64Array,
  redo: Uint32Array,
  dirty: Float64Array,
  summary: Float64Array,
): number;

/**
 * Decodes an LZ4 frame of the one shape the snapshot writer makes (plugins/snapshot-manager/lz4Frame.ts:
 * header `04 22 4d 18 60 70 73`, independent blocks, no checksums, no content size) into `dst`,
 * with no allocation: restore's decoder (native/src/lz4.rs). Every length and offset is checked,
 * so a damaged frame throws instead of reading or writing out of bounds; bytes of `dst` past the
 * returned length may have been written (up to 16 past the output's end, when `dst` has room).
 *
 * @param frame - The whole frame, as a `Uint8Array` or `Buffer`; read only.
 * @param dst - Receives the decoded bytes from index 0; must not share memory with `frame`.
 * @returns The bytes decoded, or -1 when the frame's header is another one (decode it some other
 * way, e.g. lz4-napi's `decompressFrame`).
 * @throws Error (`code: 'RA_ERR_SNAPSHOT_CORRUPT'`) naming what is damaged when the frame is not a
 * valid one of that shape or its output does not fit `dst`; TypeError
 * (`code: 'ERR_INVALID_ARG_TYPE'`) for a wrong argument count or type; RangeError
 * (`code: 'ERR_INVALID_ARG_VALUE'`) when `dst` overlaps `frame`.
 */
export declare function lz4DecodeFrame(frame: Uint8Array, dst: Uint8Array): number;

/**
 * Asks the kernel to back the whole 2 MiB-aligned huge pages inside `view`'s memory with
 * transparent huge pages (`madvise(MADV_HUGEPAGE)`), before the memory is first touched: recovery
 * fills hundreds of MiB of fresh buffers, and on a virtual machine each 4 KiB page fault costs
 * tens of microseconds. A hint only: contents are unchanged, and where transparent huge pages
 * are off, or off Linux, it does nothing.
 * @returns The bytes advised (0 when no aligned huge page fits, off Linux, or when refused).
 */
export declare function adviseHugePages(view: Uint8Array): number;

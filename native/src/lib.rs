//! recovery-agent's native addon: XXH3-64 page checksums for Node, over Node-API.
//!
//! No crate dependencies (crates.io is unreachable from our build hosts): the Node-API functions
//! are declared by hand in `napi_sys`, and the hash is written from the XXH3 specification.
//!
//! JS surface (see native/index.d.ts):
//! - `xxh3(view: Uint8Array): bigint`
//! - `xxh3Pages(view: Uint8Array, pageSize: number, out: BigUint64Array): number`
//! - `verifyPages(view: Uint8Array, pageSize: number, firstPageId: number, maxLsn: number, out: Uint32Array): number`
//! - `verifyFile(fd, pageSize, firstPageId, pageCount, maxLsn, threads, out): number`
//! - `redoCheckRecords(wal, positions, pageIds, count, pageSize, pageCount, out): number`
//! - `redoApplyPages(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status): number`
//! - `redoApplyHeld(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status, held): number`
//! - `walScanRecords(buf, start, end, startLsn, positions, first): number`
//! - `walAnalyze(wal, positions, count, params, covered, txs, redo, dirty, summary): number`
//! - `lz4DecodeFrame(frame: Uint8Array, dst: Uint8Array): number`
//! - `adviseHugePages(view: Uint8Array): number`
//!
//! Module map: `xxh3` (short inputs, kernel choice), `long` (long-input loop, scalar kernel),
//! `long_x86` (SSE2/AVX2/AVX-512 kernels), `verify_pages` (page header + checksum verification), `verify_file` (the same over a file
//! range, read by several threads in one call),
//! `redo` (crash-recovery redo of a batch of pages, with its bindings), `wal_scan` (WAL record
//! validation for recovery's analysis pass, with its binding), `analysis` (the analysis pass's
//! per-record work over a chunk of validated records: transactions, dirty pages, redo partition;
//! or over records as the scan validates them, in one pass),
//! `lz4` (decoding restore's LZ4 frames into the caller's buffer), `memory` (huge-page advice),
//! `napi_sys` (declarations), `js` (argument and error helpers).

mod analysis;
mod long;
mod lz4;
mod memory;
#[cfg(target_arch = "x86_64")]
mod long_x86;
mod redo;
mod verify_file;
mod verify_pages;
mod wal_scan;
mod xxh3;

// The Node-API glue is left out of `cargo test` builds: a test executable, unlike the cdylib, may
// not leave the `napi_*` symbols undefined.
#[cfg(not(test))]
mod js;
#[cfg(not(test))]
mod napi_sys;

#[cfg(test)]
mod tests;

pub use lz4::{decode_block as lz4_decode_block, decode_frame as lz4_decode_frame};
pub use redo::{apply_pages as redo_apply_pages, apply_pages_held as redo_apply_pages_held, HELD_VERIFIED as REDO_HELD_VERIFIED, HELD_UNREAD as REDO_HELD_UNREAD, check_records as redo_check_records, ApplyCounts as RedoApplyCounts};
pub use verify_file::{verify_file, FileRange, REASON_SHORT_READ};
pub use verify_pages::{verify_page_with, verify_pages, verify_pages_with};
pub use wal_scan::{scan_records as wal_scan_records, valid_record_at as wal_valid_record_at};
pub use xxh3::{xxh3_64, xxh3_64_pages, xxh3_64_with, Kernel};

#[cfg(not(test))]
mod addon {
    use std::ptr::null_mut;

    use crate::js::{args, bigint_u64, biguint64_arg, bytes_arg, export_function, guard, int_in_range_arg, invalid_value, number, positive_int_arg, range_error, throw, uint32_arg, JsResult};
    use crate::napi_sys::{napi_callback_info, napi_env, napi_value};
    use crate::verify_pages::{verify_pages, PAGE_HEADER_SIZE};
    use crate::xxh3::{xxh3_64, xxh3_64_pages};

    /// Node-API version this addon is written against (Node 20 supports up to 9).
    const NAPI_VERSION: i32 = 8;

    /// Tells Node which Node-API version to give us (looked up by name at load time).
    #[no_mangle]
    pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
        NAPI_VERSION
    }

    /// Called by Node once per environment (main thread, each worker) that loads the addon.
    /// The addon keeps no per-environment state, so loading it in workers is safe.
    ///
    /// # Safety
    /// Called by Node with a valid `env` and `exports` object.
    #[no_mangle]
    pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
        let registered: JsResult<()> = (|| {
            export_function(env, exports, c"xxh3", Some(xxh3))?;
            export_function(env, exports, c"xxh3Pages", Some(xxh3_pages))?;
            export_function(env, exports, c"verifyPages", Some(verify_pages_js))?;
            export_function(env, exports, c"verifyFile", Some(crate::verify_file::binding::verify_file_js))?;
            export_function(env, exports, c"redoCheckRecords", Some(crate::redo::binding::redo_check_records_js))?;
            export_function(env, exports, c"redoApplyPages", Some(crate::redo::binding::redo_apply_pages_js))?;
            export_function(env, exports, c"redoApplyHeld", Some(crate::redo::binding::redo_apply_held_js))?;
            export_function(env, exports, c"walScanRecords", Some(crate::wal_scan::binding::wal_scan_records_js))?;
            export_function(env, exports, c"walAnalyze", Some(crate::analysis::binding::wal_analyze_js))?;
            export_function(env, exports, c"walScanAnalyze", Some(crate::analysis::binding::wal_scan_analyze_js))?;
            export_function(env, exports, c"lz4DecodeFrame", Some(crate::lz4::binding::lz4_decode_frame_js))?;
            export_function(env, exports, c"adviseHugePages", Some(advise_huge_pages_js))
        })();
        match registered {
            Ok(()) => exports,
            Err(err) => {
                throw(env, &err);
                null_mut()
            }
        }
    }

    /// `xxh3(view: Uint8Array): bigint`
    unsafe extern "C" fn xxh3(env: napi_env, info: napi_callback_info) -> napi_value {
        guard(env, "xxh3", || {
            let [view] = args::<1>(env, info, "xxh3", "(view)")?;
            let (ptr, len) = bytes_arg(env, view, "xxh3", "view")?;
            // SAFETY: Node keeps the view (and so its backing store, which never moves) alive for
            // the duration of the call; a zero-length view may have a null pointer. If the buffer
            // is a SharedArrayBuffer that another thread writes meanwhile, the hash is of
            // whatever bytes were read — callers synchronise if they need a stable answer.
            let bytes = if len == 0 { &[][..] } else { std::slice::from_raw_parts(ptr, len) };
            bigint_u64(env, xxh3_64(bytes))
        })
    }

    /// `adviseHugePages(view: Uint8Array): number` (memory.rs)
    unsafe extern "C" fn advise_huge_pages_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "adviseHugePages";
        guard(env, NAME, || {
            let [view] = args::<1>(env, info, NAME, "(view)")?;
            let (ptr, len) = bytes_arg(env, view, NAME, "view")?;
            // SAFETY: the view's backing store is this process's memory for the call; the advice
            // changes no byte of it.
            let advised = if len == 0 { 0 } else { crate::memory::advise_huge_pages(ptr as *mut u8, len) };
            number(env, advised as f64)
        })
    }

    /// `xxh3Pages(view: Uint8Array, pageSize: number, out: BigUint64Array): number`
    unsafe extern "C" fn xxh3_pages(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "xxh3Pages";
        guard(env, NAME, || {
            let [view, page_size, out] = args::<3>(env, info, NAME, "(view, pageSize, out)")?;
            let (ptr, len) = bytes_arg(env, view, NAME, "view")?;
            let page = positive_int_arg(env, page_size, NAME, "pageSize")?;
            let (out_ptr, out_len) = biguint64_arg(env, out, NAME, "out")?;
            if len % page != 0 {
                return Err(invalid_value(format!(
                    "{NAME}: view.byteLength ({len}) must be a multiple of pageSize ({page})"
                )));
            }
            let pages = len / page;
            if out_len < pages {
                return Err(invalid_value(format!(
                    "{NAME}: argument 'out' has {out_len} elements but view holds {pages} pages of {page} bytes"
                )));
            }
            if pages == 0 {
                return number(env, 0.0);
            }
            // Writing checksums into the bytes being hashed would make the result depend on the
            // order of work (and alias a slice we read); refuse it.
            let (view_start, view_end) = (ptr as usize, ptr as usize + len);
            let (out_start, out_end) = (out_ptr as usize, out_ptr as usize + pages * 8);
            if view_start < out_end && out_start < view_end {
                return Err(invalid_value(format!("{NAME}: argument 'out' must not share memory with 'view'")));
            }
            // SAFETY: both ranges are live typed-array memory for the call (see `xxh3`), they do
            // not overlap, and a BigUint64Array's data is always 8-byte aligned.
            let bytes = std::slice::from_raw_parts(ptr, len);
            let sums = std::slice::from_raw_parts_mut(out_ptr, pages);
            let n = xxh3_64_pages(bytes, page, sums);
            number(env, n as f64)
        })
    }

    /// `verifyPages(view: Uint8Array, pageSize: number, firstPageId: number, maxLsn: number, out: Uint32Array): number`
    unsafe extern "C" fn verify_pages_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "verifyPages";
        const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
        const MAX_PAGE_ID: f64 = u32::MAX as f64;
        guard(env, NAME, || {
            let [view, page_size, first_page_id, max_lsn, out] = args::<5>(env, info, NAME, "(view, pageSize, firstPageId, maxLsn, out)")?;
            let (ptr, len) = bytes_arg(env, view, NAME, "view")?;
            let page = positive_int_arg(env, page_size, NAME, "pageSize")?;
            let first = int_in_range_arg(env, first_page_id, NAME, "firstPageId", MAX_PAGE_ID)?;
            let max_lsn = int_in_range_arg(env, max_lsn, NAME, "maxLsn", MAX_SAFE_INTEGER)?;
            let (out_ptr, out_len) = uint32_arg(env, out, NAME, "out")?;
            if page < PAGE_HEADER_SIZE {
                return Err(range_error(format!("{NAME}: argument 'pageSize' must be at least {PAGE_HEADER_SIZE} (the page header), got {page}")));
            }
            if len % page != 0 {
                return Err(invalid_value(format!("{NAME}: view.byteLength ({len}) must be a multiple of pageSize ({page})")));
            }
            let pages = len / page;
            if pages == 0 {
                return number(env, 0.0);
            }
            // Page ids are u32 on disk: a run that would pass u32::MAX names pages that cannot exist.
            if first + (pages as u64 - 1) > u64::from(u32::MAX) {
                return Err(invalid_value(format!(
                    "{NAME}: firstPageId ({first}) + {pages} pages passes the largest page id ({})",
                    u32::MAX
                )));
            }
            let (view_start, view_end) = (ptr as usize, ptr as usize + len);
            let (out_start, out_end) = (out_ptr as usize, out_ptr as usize + out_len * 4);
            if out_len > 0 && view_start < out_end && out_start < view_end {
                return Err(invalid_value(format!("{NAME}: argument 'out' must not share memory with 'view'")));
            }
            // SAFETY: both ranges are live typed-array memory for the call (see `xxh3`), they do
            // not overlap, and a Uint32Array's data is always 4-byte aligned. A zero-length `out`
            // may have a null pointer, so it becomes an empty slice without touching it.
            let bytes = std::slice::from_raw_parts(ptr, len);
            let found: &mut [u32] = if out_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(out_ptr, out_len) };
            let bad = verify_pages(bytes, page, first, max_lsn, found);
            number(env, bad as f64)
        })
    }
}

//! The redo kernels behind `redoCheckRecords` and `redoApplyPages`: crash-recovery redo of the
//! reference store (plugins/pagestore/redoApply.ts, README.md) with no per-record JS call.
//!
//! WAL record, little-endian (plugins/pagestore/walRecord.ts): u32 total length at 0, u8 type at
//! 4 (1 update, 4 CLR are the ones redo applies), u8 flags at 5 (1 = a full page image follows
//! the body), u64 LSN at 8, u32 page id at 32, u32 offset at 36, u32 range length at 40, body at
//! 56 (update: before image, after image; CLR: after image; then the page image with flag 1),
//! padding, u64 checksum in the last 8 bytes.
//!
//! `check_records` is the all-or-nothing pre-pass: it finds every record redo cannot apply
//! before any page is touched. `apply_pages` then applies the records of a batch of pages held
//! in one slab of memory: per page, verify (checksum, magic, version, page id), apply each
//! record newer than the page LSN in LSN order, set the page LSN, re-seal. It bounds-checks
//! every record it applies again, so no input makes it read or write out of bounds; bad input
//! becomes a status code or an `Err` the Node-API layer turns into a RangeError, never a panic.
//!
//! Measured on 600 k records (8 KiB pages, 16–256-byte ranges, one full page image per page)
//! over 258 MiB of log, single-threaded: `check_records` 15 ms, `apply_pages` 50 ms, of which
//! hashing (verify + seal) is 5 ms; the rest is waiting for records the caches do not hold.
//!
//! Record problem codes (`check_records`) and page status codes (`apply_pages`) are part of the
//! JS API (native/index.d.ts) and must never be renumbered.

use crate::verify_pages::{verify_page_with, K_CHECKSUM, K_CHECKSUMMED, K_PAGE_LSN, PAGE_HEADER_SIZE, REASON_CHECKSUM, REASON_MAGIC, REASON_OK, REASON_PAGE_ID, REASON_VERSION};
use crate::xxh3::{r32, r64, xxh3_64_with, Kernel};

pub const RECORD_HEADER_SIZE: usize = 56;
/// Header plus checksum: the smallest record.
pub const RECORD_MIN_SIZE: usize = RECORD_HEADER_SIZE + 8;
pub const TYPE_UPDATE: u8 = 1;
pub const TYPE_CLR: u8 = 4;
pub const FLAG_FULL_PAGE: u8 = 1;

pub(crate) const K_REC_LENGTH: usize = 0;
pub(crate) const K_REC_TYPE: usize = 4;
const K_REC_FLAGS: usize = 5;
pub(crate) const K_REC_LSN: usize = 8;
const K_REC_PAGE_ID: usize = 32;
const K_REC_OFFSET: usize = 36;
const K_REC_RANGE_LENGTH: usize = 40;


// ---- record problems (check_records), stable codes
/// The record's header or its total length runs past the end of the WAL buffer.
pub const RECORD_OUTSIDE_WAL: u32 = 1;
/// Total length below 64 or not a multiple of 8, or the body (images, page image, checksum)
/// does not fit in it.
pub const RECORD_BAD_LENGTH: u32 = 2;
/// Not an update (1) or a CLR (4): nothing redo could apply.
pub const RECORD_BAD_TYPE: u32 = 3;
/// Page id 0 (the superblock), not below the page count, or not the page id it was grouped by.
pub const RECORD_PAGE_ID: u32 = 4;
/// The changed range starts inside the page header (offset < 32) or ends past the page.
pub const RECORD_BAD_RANGE: u32 = 5;

// ---- page status (apply_pages), stable codes
pub const STATUS_UNCHANGED: u32 = 0;
pub const STATUS_CHANGED: u32 = 1;
/// 2..=5: the page failed verification and its first record carries no full page image; it is
/// left as it was. The code is 1 + the `verifyPages` reason (checksum 2, magic 3, version 4,
/// page-id 5); the check order is redoApply.ts's `verifyPage`: checksum first.
pub const STATUS_CORRUPT_CHECKSUM: u32 = 1 + REASON_CHECKSUM;
pub const STATUS_CORRUPT_MAGIC: u32 = 1 + REASON_MAGIC;
pub const STATUS_CORRUPT_VERSION: u32 = 1 + REASON_VERSION;
pub const STATUS_CORRUPT_PAGE_ID: u32 = 1 + REASON_PAGE_ID;
/// A record of the page fails the `check_records` checks (page count aside); the page is left
/// as it was and none of its records is applied.
pub const STATUS_MALFORMED: u32 = 6;

/// The fields of a record redo needs, after the bounds checks.
#[derive(Clone, Copy, Debug)]
struct RedoRecord {
    lsn: u64,
    page_id: u32,
    offset: usize,
    length: usize,
    /// Where the after image starts in the WAL buffer.
    after: usize,
    /// Where the full page image starts, when the record carries one.
    image: Option<usize>,
}

/// Reads and bounds-checks the record at `at`: every byte the record's fields name lies within
/// the record, the record within `wal`, and the range within a `page_size` page, past its header.
/// Page id checks are the caller's (they differ between the two kernels).
fn parse_record(wal: &[u8], at: usize, page_size: usize) -> Result<RedoRecord, u32> {
    if at > wal.len() || wal.len() - at < RECORD_MIN_SIZE {
        return Err(RECORD_OUTSIDE_WAL);
    }
    let total = r32(wal, at + K_REC_LENGTH) as usize;
    if total > wal.len() - at {
        return Err(RECORD_OUTSIDE_WAL);
    }
    if total < RECORD_MIN_SIZE || total % 8 != 0 {
        return Err(RECORD_BAD_LENGTH);
    }
    let kind = wal[at + K_REC_TYPE];
    if kind != TYPE_UPDATE && kind != TYPE_CLR {
        return Err(RECORD_BAD_TYPE);
    }
    let offset = r32(wal, at + K_REC_OFFSET) as usize;
    let length = r32(wal, at + K_REC_RANGE_LENGTH) as usize;
    // u32 + u32 cannot overflow a 64-bit usize; on 32-bit hosts checked_add keeps it honest.
    if offset < PAGE_HEADER_SIZE || offset.checked_add(length).map_or(true, |end| end > page_size) {
        return Err(RECORD_BAD_RANGE);
    }
    let full = wal[at + K_REC_FLAGS] & FLAG_FULL_PAGE != 0;
    let images = if kind == TYPE_UPDATE { 2 * length } else { length };
    // Body: header, range image(s), the page image, then the checksum, all within `total`.
    let body = RECORD_HEADER_SIZE + images + if full { page_size } else { 0 };
    if body.checked_add(8).map_or(true, |need| need > total) {
        return Err(RECORD_BAD_LENGTH);
    }
    let after = at + RECORD_HEADER_SIZE + if kind == TYPE_UPDATE { length } else { 0 };
    Ok(RedoRecord {
        lsn: r64(wal, at + K_REC_LSN),
        page_id: r32(wal, at + K_REC_PAGE_ID),
        offset,
        length,
        after,
        image: if full { Some(at + RECORD_HEADER_SIZE + images) } else { None },
    })
}

/// Asks the CPU to start loading the cache line of `wal` at `at` (no effect past the end, and
/// none off x86_64). In a log far larger than the caches nearly every record is a cache miss
/// (visited by page, also a TLB miss); starting the loads early overlaps them (measured:
/// `check_records` 28 → 15 ms, `apply_pages` 58 → 39 ms on the loop alone).
#[inline(always)]
fn prefetch(wal: &[u8], at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < wal.len() {
        // SAFETY: a prefetch is a hint that never faults, and the address is within `wal`.
        unsafe { std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(wal.as_ptr().add(at) as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (wal, at);
}

/// How many records ahead `check_records` prefetches (its header line).
const CHECK_PREFETCH_AHEAD: usize = 16;

/// One record of `check_records`' pre-pass: `Err(problem)` when redo could not apply it to page
/// `page_id` (the page it was grouped by) of a store of `page_count` pages. Shared with the
/// analysis kernel (analysis.rs), which checks each redo record as it finds it.
pub(crate) fn check_record(wal: &[u8], at: usize, page_size: usize, page_id: u32, page_count: u64) -> Result<(), u32> {
    match parse_record(wal, at, page_size) {
        Err(code) => Err(code),
        Ok(rec) if rec.page_id == 0 || u64::from(rec.page_id) >= page_count || rec.page_id != page_id => Err(RECORD_PAGE_ID),
        Ok(_) => Ok(()),
    }
}

/// The pre-pass over the first `count` records: `positions[i]` is where record i starts in `wal`,
/// `page_ids[i]` the page it was grouped by. A record is bad when `parse_record` rejects it, or
/// its page id is 0, at least `page_count`, or not `page_ids[i]`. For each bad record, in order,
/// writes the pair (i, problem code) into `out` while pairs fit; returns how many are bad.
///
/// `count` beyond either array is cut to the shorter array (the Node-API layer rejects it first).
pub fn check_records(wal: &[u8], positions: &[u32], page_ids: &[u32], count: usize, page_size: usize, page_count: u64, out: &mut [u32]) -> usize {
    let n = count.min(positions.len()).min(page_ids.len());
    let slots = out.len() / 2;
    let mut bad = 0usize;
    for i in 0..n {
        if i + CHECK_PREFETCH_AHEAD < n {
            prefetch(wal, positions[i + CHECK_PREFETCH_AHEAD] as usize + K_REC_LSN);
        }
        let Err(problem) = check_record(wal, positions[i] as usize, page_size, page_ids[i], page_count) else {
            continue;
        };
        if bad < slots {
            out[2 * bad] = i as u32;
            out[2 * bad + 1] = problem;
        }
        bad += 1;
    }
    bad
}

/// Why a page read from position `page_id` fails, in redoApply.ts's order (checksum, magic,
/// version, page id), as a `verifyPages` reason code; `REASON_OK` when sound. `verify_page_with`
/// checks the header first; for a page whose header check fails, the checksum decides whether
/// the reason is the checksum (a torn or damaged page: the usual case) or the header field.
fn page_fault(page: &[u8], page_id: u32, kernel: Kernel) -> u32 {
    match verify_page_with(page, u64::from(page_id), u64::MAX, kernel) {
        REASON_OK => REASON_OK,
        REASON_CHECKSUM => REASON_CHECKSUM,
        header => {
            if r64(page, K_CHECKSUM) != xxh3_64_with(&page[K_CHECKSUMMED..], kernel) {
                REASON_CHECKSUM
            } else {
                header
            }
        }
    }
}

/// What a call of `apply_pages` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyCounts {
    /// Records applied (newer than their page).
    pub applied: u64,
    /// Records of sound (or rebuilt) pages not applied: no newer than their page.
    pub skipped: u64,
}

/// Redo of the pages `first..end` of a grouping: page `s` is `pages[s]`, its records (positions
/// in `wal`, in LSN order) are `ordered[starts[s]..starts[s + 1]]`, its bytes are
/// `slab[(s - first) * page_size..][..page_size]`, and its status goes to `status[s - first]`.
///
/// Per page: a page that fails verification (checksum first, then magic, version, page id) is
/// rebuilt when its first record carries a full page image (every record then applies from that
/// one on, whatever LSN the damaged page claims), and is otherwise reported (`STATUS_CORRUPT_*`)
/// and left alone. Each record whose LSN is greater than the page LSN is applied (its after image
/// at its offset; with a full page image, the image replaces the whole page) and the page LSN
/// becomes the record's. A changed page is re-sealed (checksum of bytes [8, page_size)) and gets
/// `STATUS_CHANGED`; a page with no newer record (or no record) `STATUS_UNCHANGED`. A record
/// that fails the bounds checks of `check_records` (page count aside), or names another page,
/// makes its page `STATUS_MALFORMED`: its slab bytes are then unspecified (not to be written),
/// and none of its records counts as applied or skipped.
///
/// The log is far larger than the caches and a page's records lie all over it, so nearly every
/// record is a cache and TLB miss; the loop prefetches the record `APPLY_PREFETCH_AHEAD` places
/// ahead in `ordered` (across pages), which overlaps the misses (measured on 600 k records over
/// 258 MiB of log: 58 → 39 ms; streaming the log in LSN order instead measured as fast only when
/// the whole store fits one batch).
///
/// `Err` (before any page is touched) when the arguments do not describe a batch: `first > end`,
/// `pages`, `starts` or `status` too short, `starts` not ascending or past `ordered`, the slab
/// shorter than `(end - first) * page_size`, or `page_size` below the header.
#[allow(clippy::too_many_arguments)]
pub fn apply_pages(
    wal: &[u8],
    ordered: &[u32],
    starts: &[u32],
    pages: &[u32],
    first: usize,
    end: usize,
    slab: &mut [u8],
    page_size: usize,
    status: &mut [u32],
    kernel: Kernel,
) -> Result<ApplyCounts, String> {
    apply_pages_held(wal, ordered, starts, pages, first, end, slab, page_size, status, None, kernel)
}

/// `held` bit: the page was verified (or rebuilt from a full image) by an earlier call and has
/// stayed in the caller's memory since, unsealed (`apply_pages_held`).
pub const HELD_VERIFIED: u8 = 1;

/// `held` bit: the caller did not read the page, because its first record here carries a full
/// page image (as PostgreSQL restores a block from its image without reading it). The page's
/// bytes are not looked at: the image is applied whatever LSN they hold, then every later
/// record, which is the page's history from that image on. A page so marked whose first record
/// has no image is refused (`STATUS_MALFORMED`), never guessed at.
pub const HELD_UNREAD: u8 = 2;

/// `apply_pages` for pages a caller keeps in memory across calls (plugins/pagestore/pageRedo.ts
/// `PageRedo`, which applies every few segments of the log to the same pages): with `held`
/// (one byte per page of the batch, `held[s - first]`), a page whose `HELD_VERIFIED` bit is set
/// is not verified again (its LSN is trusted), a page verified sound or rebuilt by this call gets
/// the bit, and no changed page is re-sealed: the caller seals it once, before writing it
/// (`xxh3Pages`, `sealPage`). Verifying and re-sealing every held page at every call cost two
/// 8 KiB hashes per page per call: most of a redo worker's CPU after the page reads (measured on
/// the TPC-B bench log: ~150 ms of ~700 per worker). Without `held`, exactly `apply_pages`.
#[allow(clippy::too_many_arguments)]
pub fn apply_pages_held(
    wal: &[u8],
    ordered: &[u32],
    starts: &[u32],
    pages: &[u32],
    first: usize,
    end: usize,
    slab: &mut [u8],
    page_size: usize,
    status: &mut [u32],
    mut held: Option<&mut [u8]>,
    kernel: Kernel,
) -> Result<ApplyCounts, String> {
    if page_size < PAGE_HEADER_SIZE {
        return Err(format!("pageSize ({page_size}) must be at least {PAGE_HEADER_SIZE} (the page header)"));
    }
    if first > end {
        return Err(format!("firstSlot ({first}) is after endSlot ({end})"));
    }
    let n = end - first;
    if end > pages.len() {
        return Err(format!("endSlot ({end}) passes the {} page ids in 'pages'", pages.len()));
    }
    if starts.len() <= end {
        return Err(format!("'starts' has {} elements; endSlot {end} needs {}", starts.len(), end + 1));
    }
    if n.checked_mul(page_size).map_or(true, |need| need > slab.len()) {
        return Err(format!("'slab' holds {} bytes; {n} pages of {page_size} need {}", slab.len(), n as u128 * page_size as u128));
    }
    if status.len() < n {
        return Err(format!("'status' has {} elements; {n} pages need one each", status.len()));
    }
    if let Some(h) = held.as_deref() {
        if h.len() < n {
            return Err(format!("'held' has {} elements; {n} pages need one each", h.len()));
        }
    }
    for s in first..end {
        if starts[s] > starts[s + 1] || starts[s + 1] as usize > ordered.len() {
            return Err(format!(
                "'starts' must ascend within the {} records of 'ordered' (starts[{s}] = {}, starts[{}] = {})",
                ordered.len(),
                starts[s],
                s + 1,
                starts[s + 1]
            ));
        }
    }

    let ahead = &ordered[..starts[end] as usize];
    let mut counts = ApplyCounts::default();
    for (k, s) in (first..end).enumerate() {
        let page = &mut slab[k * page_size..(k + 1) * page_size];
        let (from, to) = (starts[s] as usize, starts[s + 1] as usize);
        status[k] = apply_page(wal, ordered, from, to, ahead, pages[s], page, held.as_deref_mut().map(|h| &mut h[k]), kernel, &mut counts);
    }
    Ok(counts)
}

/// How many records ahead (in `ordered`, across pages) `apply_pages` prefetches.
const APPLY_PREFETCH_AHEAD: usize = 8;
/// Bytes of that record it prefetches: the header and, for most records, the after image.
const APPLY_PREFETCH_BYTES: usize = 192;

/// One page of `apply_pages`: the records `ordered[from..to]`; prefetches from `ahead`. Returns
/// its status and adds its records to `counts` unless it is corrupt or malformed.
#[allow(clippy::too_many_arguments)]
fn apply_page(wal: &[u8], ordered: &[u32], from: usize, to: usize, ahead: &[u32], page_id: u32, page: &mut [u8], held: Option<&mut u8>, kernel: Kernel, counts: &mut ApplyCounts) -> u32 {
    let page_size = page.len();
    if from == to {
        return STATUS_UNCHANGED;
    }
    let parse = |at: u32| match parse_record(wal, at as usize, page_size) {
        Ok(rec) if rec.page_id == page_id => Some(rec),
        _ => None,
    };
    let Some(first) = parse(ordered[from]) else {
        return STATUS_MALFORMED;
    };
    let flags = held.as_deref().copied().unwrap_or(0);
    let unread = flags & HELD_VERIFIED == 0 && flags & HELD_UNREAD != 0;
    if unread && first.image.is_none() {
        return STATUS_MALFORMED; // the caller's mistake: nothing to rebuild the page from
    }
    // An unread page goes the way of one that fails verification: rebuilt from the image.
    let fault = if flags & HELD_VERIFIED != 0 {
        REASON_OK
    } else if unread {
        REASON_CHECKSUM
    } else {
        page_fault(page, page_id, kernel)
    };
    if fault != REASON_OK && first.image.is_none() {
        return match fault {
            REASON_MAGIC => STATUS_CORRUPT_MAGIC,
            REASON_VERSION => STATUS_CORRUPT_VERSION,
            REASON_PAGE_ID => STATUS_CORRUPT_PAGE_ID,
            _ => STATUS_CORRUPT_CHECKSUM,
        };
    }
    // A page that fails verification is rebuilt from the image, whatever LSN it claims.
    let mut lsn = if fault == REASON_OK { Some(r64(page, K_PAGE_LSN)) } else { None };
    let (mut applied, mut skipped) = (0u64, 0u64);
    for (j, &at) in (from..to).zip(&ordered[from..to]) {
        if let Some(&next) = ahead.get(j + APPLY_PREFETCH_AHEAD) {
            for line in (0..APPLY_PREFETCH_BYTES).step_by(64) {
                prefetch(wal, next as usize + line);
            }
        }
        let Some(rec) = (if j == from { Some(first) } else { parse(at) }) else {
            return STATUS_MALFORMED;
        };
        if lsn.is_some_and(|l| rec.lsn <= l) {
            skipped += 1;
            continue;
        }
        match rec.image {
            Some(img) => page.copy_from_slice(&wal[img..img + page_size]),
            None => page[rec.offset..rec.offset + rec.length].copy_from_slice(&wal[rec.after..rec.after + rec.length]),
        }
        page[K_PAGE_LSN..K_PAGE_LSN + 8].copy_from_slice(&rec.lsn.to_le_bytes());
        lsn = Some(rec.lsn);
        applied += 1;
    }
    counts.applied += applied;
    counts.skipped += skipped;
    if let Some(h) = held {
        // Sound, or rebuilt from the image its first record carries (that record always applies
        // to a page that failed verification); the caller seals it before it leaves memory.
        *h = (*h | HELD_VERIFIED) & !HELD_UNREAD;
        return if applied == 0 { STATUS_UNCHANGED } else { STATUS_CHANGED };
    }
    if applied == 0 {
        return STATUS_UNCHANGED;
    }
    let sum = xxh3_64_with(&page[K_CHECKSUMMED..], kernel);
    page[K_CHECKSUM..K_CHECKSUM + 8].copy_from_slice(&sum.to_le_bytes());
    STATUS_CHANGED
}

#[cfg(test)]
#[path = "redo_tests.rs"]
mod tests;

/// The Node-API bindings (left out of `cargo test` builds, like the rest of the glue).
#[cfg(not(test))]
#[path = "redo_binding.rs"]
pub(crate) mod binding;

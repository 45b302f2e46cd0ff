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

use crate::verify_pages::{verify_page_with, PAGE_HEADER_SIZE, REASON_CHECKSUM, REASON_MAGIC, REASON_OK, REASON_PAGE_ID, REASON_VERSION};
use crate::xxh3::{r32, r64, xxh3_64_with, Kernel};

pub const RECORD_HEADER_SIZE: usize = 56;
/// Header plus checksum: the smallest record.
pub const RECORD_MIN_SIZE: usize = RECORD_HEADER_SIZE + 8;
pub const TYPE_UPDATE: u8 = 1;
pub const TYPE_CLR: u8 = 4;
pub const FLAG_FULL_PAGE: u8 = 1;

const K_REC_LENGTH: usize = 0;
const K_REC_TYPE: usize = 4;
const K_REC_FLAGS: usize = 5;
const K_REC_LSN: usize = 8;
const K_REC_PAGE_ID: usize = 32;
const K_REC_OFFSET: usize = 36;
const K_REC_RANGE_LENGTH: usize = 40;

const K_PAGE_CHECKSUM: usize = 0;
const K_PAGE_LSN: usize = 24;
const K_CHECKSUMMED: usize = 8;

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
        let problem = match parse_record(wal, positions[i] as usize, page_size) {
            Err(code) => code,
            Ok(rec) if rec.page_id == 0 || u64::from(rec.page_id) >= page_count || rec.page_id != page_ids[i] => RECORD_PAGE_ID,
            Ok(_) => continue,
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
            if r64(page, K_PAGE_CHECKSUM) != xxh3_64_with(&page[K_CHECKSUMMED..], kernel) {
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
        status[k] = apply_page(wal, ordered, from, to, ahead, pages[s], page, kernel, &mut counts);
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
fn apply_page(wal: &[u8], ordered: &[u32], from: usize, to: usize, ahead: &[u32], page_id: u32, page: &mut [u8], kernel: Kernel, counts: &mut ApplyCounts) -> u32 {
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
    let fault = page_fault(page, page_id, kernel);
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
    if applied == 0 {
        return STATUS_UNCHANGED;
    }
    let sum = xxh3_64_with(&page[K_CHECKSUMMED..], kernel);
    page[K_PAGE_CHECKSUM..K_PAGE_CHECKSUM + 8].copy_from_slice(&sum.to_le_bytes());
    STATUS_CHANGED
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify_pages::{FORMAT_VERSION, PAGE_MAGIC};
    use crate::xxh3::xxh3_64;

    const PAGE: usize = 4096;

    /// Deterministic filler (a 64-bit LCG, top byte of each state).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| (self.next() >> 20) as u8).collect()
        }
    }

    fn seal(page: &mut [u8]) {
        let sum = xxh3_64(&page[K_CHECKSUMMED..]);
        page[..8].copy_from_slice(&sum.to_le_bytes());
    }

    fn make_page(id: u32, lsn: u64, rng: &mut Lcg) -> Vec<u8> {
        let mut p = rng.bytes(PAGE);
        p[8..12].copy_from_slice(&PAGE_MAGIC.to_le_bytes());
        p[12..14].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        p[14..16].fill(0);
        p[16..20].copy_from_slice(&id.to_le_bytes());
        p[20..24].fill(0);
        p[24..32].copy_from_slice(&lsn.to_le_bytes());
        seal(&mut p);
        p
    }

    /// A log under construction: records appended at their own LSN (= position), as the store does.
    struct Wal {
        buf: Vec<u8>,
    }

    struct Rec<'a> {
        kind: u8,
        page_id: u32,
        offset: u32,
        before: &'a [u8],
        after: &'a [u8],
        image: Option<&'a [u8]>,
    }

    impl Wal {
        fn new() -> Wal {
            Wal { buf: vec![0u8; 64] }
        }
        fn push(&mut self, r: &Rec) -> u32 {
            let at = self.buf.len();
            let body = r.before.len() + r.after.len() + r.image.map_or(0, |i| i.len());
            let total = ((RECORD_HEADER_SIZE + body + 7) & !7) + 8;
            let mut rec = vec![0u8; total];
            rec[0..4].copy_from_slice(&(total as u32).to_le_bytes());
            rec[4] = r.kind;
            rec[5] = if r.image.is_some() { FLAG_FULL_PAGE } else { 0 };
            rec[8..16].copy_from_slice(&(at as u64).to_le_bytes());
            rec[32..36].copy_from_slice(&r.page_id.to_le_bytes());
            rec[36..40].copy_from_slice(&r.offset.to_le_bytes());
            rec[40..44].copy_from_slice(&(r.after.len() as u32).to_le_bytes());
            let mut p = RECORD_HEADER_SIZE;
            for part in [r.before, r.after, r.image.unwrap_or(&[])] {
                rec[p..p + part.len()].copy_from_slice(part);
                p += part.len();
            }
            let sum = xxh3_64(&rec[..total - 8]);
            rec[total - 8..].copy_from_slice(&sum.to_le_bytes());
            self.buf.extend_from_slice(&rec);
            at as u32
        }
    }

    /// The reference: the old redoApply.ts loop over one page's records, written plainly.
    fn reference(wal: &[u8], recs: &[u32], page_id: u32, page: &mut [u8]) -> (u32, u64, u64) {
        let fault = page_fault(page, page_id, Kernel::Scalar);
        let first_image = wal[recs[0] as usize + 5] & 1 != 0;
        if fault != 0 && !first_image {
            return (1 + fault, 0, 0);
        }
        let mut lsn: i128 = if fault != 0 { -1 } else { r64(page, 24) as i128 };
        let (mut applied, mut skipped, mut changed) = (0, 0, false);
        for &at in recs {
            let at = at as usize;
            let rec_lsn = r64(wal, at + 8);
            if (rec_lsn as i128) <= lsn {
                skipped += 1;
                continue;
            }
            let len = r32(wal, at + 40) as usize;
            let update = wal[at + 4] == TYPE_UPDATE;
            if wal[at + 5] & 1 != 0 {
                let img = at + 56 + if update { 2 * len } else { len };
                page.copy_from_slice(&wal[img..img + PAGE]);
            } else {
                let off = r32(wal, at + 36) as usize;
                let after = at + 56 + if update { len } else { 0 };
                page[off..off + len].copy_from_slice(&wal[after..after + len]);
            }
            page[24..32].copy_from_slice(&rec_lsn.to_le_bytes());
            lsn = rec_lsn as i128;
            applied += 1;
            changed = true;
        }
        if changed {
            seal(page);
        }
        (if changed { STATUS_CHANGED } else { STATUS_UNCHANGED }, applied, skipped)
    }

    /// A random store of `n` pages (ids 1..=n) and a random log over them, grouped: `ids[slot]`
    /// is the page of each slot, `per_slot` its records, flattened into `ordered` and `starts`.
    #[derive(Clone)]
    struct Case {
        wal: Vec<u8>,
        ordered: Vec<u32>,
        starts: Vec<u32>,
        ids: Vec<u32>,
        per_slot: Vec<Vec<u32>>,
        slab: Vec<u8>,
    }

    fn random_case(seed: u64, n: usize, records: usize) -> Case {
        let mut rng = Lcg(seed);
        let mut wal = Wal::new();
        // Slots in a shuffled page order: the kernel must not assume ascending page ids.
        let mut ids: Vec<u32> = (1..=n as u32).collect();
        for i in (1..n).rev() {
            ids.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut slab = Vec::new();
        for &id in &ids {
            slab.extend(make_page(id, 0, &mut rng));
        }
        let mut per_slot: Vec<Vec<u32>> = vec![Vec::new(); n];
        for _ in 0..records {
            let s = rng.below(n as u64) as usize;
            let len = rng.below(300) as usize;
            let offset = PAGE_HEADER_SIZE as u32 + rng.below((PAGE - PAGE_HEADER_SIZE - len) as u64 + 1) as u32;
            let before = rng.bytes(len);
            let after = rng.bytes(len);
            // Most pages' first record carries an image, as the first change after a checkpoint does.
            let image_bytes;
            let image = if per_slot[s].is_empty() && rng.below(4) != 0 {
                image_bytes = make_page(ids[s], 0, &mut rng);
                Some(&image_bytes[..])
            } else {
                None
            };
            let kind = if rng.below(5) == 0 { TYPE_CLR } else { TYPE_UPDATE };
            let at = wal.push(&Rec { kind, page_id: ids[s], offset, before: if kind == TYPE_UPDATE { &before } else { &[] }, after: &after, image });
            per_slot[s].push(at);
        }
        // Some pages already hold the changes up to a middle record: those up to it are skipped.
        for (s, recs) in per_slot.iter().enumerate() {
            if recs.len() > 2 && rng.below(3) == 0 {
                let mid = r64(&wal.buf, recs[recs.len() / 2] as usize + 8);
                let p = &mut slab[s * PAGE..(s + 1) * PAGE];
                p[24..32].copy_from_slice(&mid.to_le_bytes());
                seal(p);
            }
        }
        let mut starts = vec![0u32];
        let mut ordered = Vec::new();
        for recs in &per_slot {
            ordered.extend_from_slice(recs);
            starts.push(ordered.len() as u32);
        }
        Case { wal: wal.buf, ordered, starts, ids, per_slot, slab }
    }

    fn run(c: &mut Case, first: usize, end: usize, kernel: Kernel) -> (Vec<u32>, ApplyCounts) {
        let mut status = vec![99u32; end - first];
        let slab = &mut c.slab[first * PAGE..end * PAGE];
        let counts = apply_pages(&c.wal, &c.ordered, &c.starts, &c.ids, first, end, slab, PAGE, &mut status, kernel).unwrap();
        (status, counts)
    }

    fn run_reference(c: &mut Case) -> (Vec<u32>, u64, u64) {
        let (mut applied, mut skipped) = (0, 0);
        let mut status = Vec::new();
        for s in 0..c.ids.len() {
            if c.per_slot[s].is_empty() {
                status.push(STATUS_UNCHANGED);
                continue;
            }
            let (st, a, sk) = reference(&c.wal, &c.per_slot[s], c.ids[s], &mut c.slab[s * PAGE..(s + 1) * PAGE]);
            status.push(st);
            applied += a;
            skipped += sk;
        }
        (status, applied, skipped)
    }

    #[test]
    fn agrees_with_the_reference_on_random_logs_in_any_batching() {
        for seed in 1..6u64 {
            for kernel in Kernel::available() {
                let mut want = random_case(seed, 40, 600);
                // Tear a few pages: those whose first record has an image are rebuilt from it.
                for s in [3usize, 11, 17, 29] {
                    want.slab[s * PAGE + 1000] ^= 0x20;
                }
                let mut got = want.clone();
                let (ref_status, applied, skipped) = run_reference(&mut want);
                let n = got.ids.len();
                let mut status = Vec::new();
                let mut counts = ApplyCounts::default();
                // Batches of 7 pages, each after an empty batch.
                let mut s = 0;
                while s < n {
                    let e = (s + 7).min(n);
                    assert_eq!(run(&mut got, s, s, kernel), (vec![], ApplyCounts::default()));
                    let (st, c) = run(&mut got, s, e, kernel);
                    status.extend(st);
                    counts.applied += c.applied;
                    counts.skipped += c.skipped;
                    s = e;
                }
                assert_eq!(status, ref_status, "seed {seed} {kernel:?}");
                assert_eq!(counts, ApplyCounts { applied, skipped }, "seed {seed} {kernel:?}");
                assert!(got.slab == want.slab, "seed {seed} {kernel:?}: pages differ");
                assert!(skipped > 0 && applied > 0);
                for s in [3usize, 11, 17, 29] {
                    let has_image = got.wal[got.per_slot[s][0] as usize + K_REC_FLAGS] & FLAG_FULL_PAGE != 0;
                    assert_eq!(status[s], if has_image { STATUS_CHANGED } else { STATUS_CORRUPT_CHECKSUM }, "seed {seed} slot {s}");
                }
                for (k, &st) in status.iter().enumerate() {
                    if st == STATUS_CHANGED {
                        assert_eq!(page_fault(&got.slab[k * PAGE..(k + 1) * PAGE], got.ids[k], kernel), REASON_OK);
                    }
                }
            }
        }
    }

    #[test]
    fn torn_page_rebuilt_from_its_image_and_one_without_reported() {
        let mut rng = Lcg(7);
        let mut wal = Wal::new();
        let image = make_page(5, 0, &mut rng);
        let a = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 5, offset: 100, before: &[0; 4], after: &[1, 2, 3, 4], image: Some(&image) });
        let c = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 6, offset: 300, before: &[0], after: &[7], image: None });
        let b = wal.push(&Rec { kind: TYPE_CLR, page_id: 5, offset: 200, before: &[], after: &[9, 9], image: None });
        let mut slab = make_page(5, 10_000_000, &mut rng); // claims a newer LSN, but is torn
        slab[4000] ^= 1;
        let mut p6 = make_page(6, 0, &mut rng);
        p6[9] ^= 0x40; // magic damaged: reported as checksum, as verifyPage does
        slab.extend(&p6);
        let mut status = [0u32; 2];
        let counts = apply_pages(&wal.buf, &[a, b, c], &[0, 2, 3], &[5, 6], 0, 2, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
        assert_eq!(status, [STATUS_CHANGED, STATUS_CORRUPT_CHECKSUM]);
        assert_eq!(counts, ApplyCounts { applied: 2, skipped: 0 });
        let mut want = image.clone();
        want[200..202].copy_from_slice(&[9, 9]);
        want[24..32].copy_from_slice(&(b as u64).to_le_bytes());
        seal(&mut want);
        assert!(slab[..PAGE] == want[..], "rebuilt from the image, then the CLR");
        assert!(slab[PAGE..] == p6[..], "the corrupt page is left alone");
        // A sound page with a newer LSN than every record: all skipped, unchanged.
        let mut slab = make_page(5, u64::from(b), &mut rng);
        let before = slab.clone();
        let counts = apply_pages(&wal.buf, &[a, b, c], &[0, 2, 3], &[5, 6], 0, 1, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
        assert_eq!((status[0], counts), (STATUS_UNCHANGED, ApplyCounts { applied: 0, skipped: 2 }));
        assert!(slab == before);
    }

    #[test]
    fn header_faults_with_a_valid_checksum_keep_their_reason() {
        let mut rng = Lcg(9);
        let mut wal = Wal::new();
        let recs: Vec<u32> = (1..=3).map(|id| wal.push(&Rec { kind: TYPE_CLR, page_id: id, offset: 40, before: &[], after: &[1], image: None })).collect();
        let mut slab = Vec::new();
        for (id, (at, v)) in [(8usize, 0x1u8), (12, 0x2), (16, 0x3)].into_iter().enumerate() {
            let mut p = make_page(id as u32 + 1, 0, &mut rng);
            p[at] ^= v;
            seal(&mut p);
            slab.extend(p);
        }
        let mut status = [0u32; 3];
        apply_pages(&wal.buf, &recs, &[0, 1, 2, 3], &[1, 2, 3], 0, 3, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
        assert_eq!(status, [STATUS_CORRUPT_MAGIC, STATUS_CORRUPT_VERSION, STATUS_CORRUPT_PAGE_ID]);
    }

    #[test]
    fn malformed_records_are_found_and_never_counted() {
        let mut rng = Lcg(11);
        let mut wal = Wal::new();
        let good = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 1, offset: 64, before: &[0; 8], after: &[5; 8], image: None });
        let at_header = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 1, offset: 31, before: &[0], after: &[5], image: None });
        let past_end = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: (PAGE - 4) as u32, before: &[], after: &[5; 5], image: None });
        let commit = wal.push(&Rec { kind: 2, page_id: 1, offset: 64, before: &[], after: &[], image: None });
        let superblock = wal.push(&Rec { kind: TYPE_CLR, page_id: 0, offset: 64, before: &[], after: &[1], image: None });
        let beyond = wal.push(&Rec { kind: TYPE_CLR, page_id: 50, offset: 64, before: &[], after: &[1], image: None });
        // A range length that promises more body than the record holds.
        let long = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1; 16], image: None });
        wal.buf[long as usize + 40..long as usize + 44].copy_from_slice(&1000u32.to_le_bytes());
        // A full-page flag without room for the image.
        let no_image = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1], image: None });
        wal.buf[no_image as usize + 5] = FLAG_FULL_PAGE;
        // A total length that is not a multiple of 8.
        let odd = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1], image: None });
        wal.buf[odd as usize] -= 1;
        let len = wal.buf.len() as u32;
        let positions = [good, at_header, past_end, commit, superblock, beyond, long, no_image, odd, len - 8, len + 100, u32::MAX];
        let mut ids = [1u32; 12];
        ids[4] = 0;
        ids[5] = 50;
        let mut out = [0u32; 64];
        let bad = check_records(&wal.buf, &positions, &ids, positions.len(), PAGE, 40, &mut out);
        let pairs: Vec<(u32, u32)> = out.chunks_exact(2).take(bad).map(|p| (p[0], p[1])).collect();
        assert_eq!(
            pairs,
            vec![
                (1, RECORD_BAD_RANGE),
                (2, RECORD_BAD_RANGE),
                (3, RECORD_BAD_TYPE),
                (4, RECORD_PAGE_ID),
                (5, RECORD_PAGE_ID),
                (6, RECORD_BAD_LENGTH),
                (7, RECORD_BAD_LENGTH),
                (8, RECORD_BAD_LENGTH),
                (9, RECORD_OUTSIDE_WAL),
                (10, RECORD_OUTSIDE_WAL),
                (11, RECORD_OUTSIDE_WAL)
            ]
        );
        // The page id it was grouped by must match the record's; the page count bounds it.
        assert_eq!(check_records(&wal.buf, &[good], &[2], 1, PAGE, 40, &mut out), 1);
        assert_eq!(check_records(&wal.buf, &[good], &[1], 1, PAGE, 1, &mut out), 1);
        assert_eq!(check_records(&wal.buf, &[good], &[1], 1, PAGE, 2, &mut out), 0);
        // A count past the arrays is cut to them; a short out is counted, not written.
        assert_eq!(check_records(&wal.buf, &[good], &[1], 5, PAGE, 2, &mut out), 0);
        assert_eq!(check_records(&wal.buf, &positions, &ids, positions.len(), PAGE, 40, &mut [0u32; 1]), 11);

        // apply_pages: a page with any malformed record, before or after good ones, is
        // malformed and none of its records counts; the other page of the batch is applied.
        let other = wal.push(&Rec { kind: TYPE_CLR, page_id: 2, offset: 64, before: &[], after: &[3], image: None });
        for bad_at in [at_header, past_end, commit, long, no_image, odd, len + 100, u32::MAX] {
            for order in [[good, bad_at, other], [bad_at, good, other]] {
                let mut slab = make_page(1, 0, &mut rng);
                slab.extend(make_page(2, 0, &mut rng));
                let mut status = [0u32; 2];
                let c = apply_pages(&wal.buf, &order, &[0, 2, 3], &[1, 2], 0, 2, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
                assert_eq!((status, c), ([STATUS_MALFORMED, STATUS_CHANGED], ApplyCounts { applied: 1, skipped: 0 }), "record at {bad_at}");
            }
        }
        // A record in the slot of another page.
        let mut slab = make_page(2, 0, &mut rng);
        let mut status = [0u32; 1];
        apply_pages(&wal.buf, &[good], &[0, 1], &[2], 0, 1, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
        assert_eq!(status[0], STATUS_MALFORMED);
    }

    #[test]
    fn bad_batches_are_errors_not_panics() {
        let mut rng = Lcg(13);
        let mut wal = Wal::new();
        let a = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1], image: None });
        let mut slab = make_page(1, 0, &mut rng);
        let mut status = [0u32; 2];
        let k = Kernel::best();
        let w = &wal.buf;
        assert!(apply_pages(w, &[a], &[0, 1], &[1], 1, 0, &mut slab, PAGE, &mut status, k).unwrap_err().contains("after endSlot"));
        assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 2, &mut slab, PAGE, &mut status, k).unwrap_err().contains("passes the 1 page ids"));
        assert!(apply_pages(w, &[a], &[0], &[1], 0, 1, &mut slab, PAGE, &mut status, k).unwrap_err().contains("'starts'"));
        assert!(apply_pages(w, &[a], &[0, 2], &[1], 0, 1, &mut slab, PAGE, &mut status, k).unwrap_err().contains("ascend"));
        assert!(apply_pages(w, &[a, a], &[1, 0], &[1], 0, 1, &mut slab, PAGE, &mut status, k).unwrap_err().contains("ascend"));
        assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 1, &mut slab[..PAGE - 1], PAGE, &mut status, k).unwrap_err().contains("'slab'"));
        assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 1, &mut slab, PAGE, &mut [], k).unwrap_err().contains("'status'"));
        assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 1, &mut slab, 16, &mut status, k).unwrap_err().contains("pageSize"));
        // A page with no records is left alone; the slab may be longer than the batch; records
        // of slots outside the batch are never read (the one at u32::MAX would fail).
        let mut big = slab.clone();
        big.extend(vec![0u8; PAGE]);
        let before = big.clone();
        let (ordered, starts) = ([a, u32::MAX], [0u32, 0, 1, 2]);
        assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 0, 1, &mut big, PAGE, &mut status, k), Ok(ApplyCounts::default()));
        assert_eq!(status[0], STATUS_UNCHANGED);
        assert!(big == before);
        assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 1, 2, &mut big, PAGE, &mut status, k), Ok(ApplyCounts { applied: 1, skipped: 0 }));
        assert_eq!(status[0], STATUS_CHANGED);
        assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 2, 3, &mut big, PAGE, &mut status, k), Ok(ApplyCounts::default()));
        assert_eq!(status[0], STATUS_MALFORMED);
        // An empty batch.
        assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 3, 3, &mut [], PAGE, &mut [], k), Ok(ApplyCounts::default()));
    }
}

/// The Node-API bindings (left out of `cargo test` builds, like the rest of the glue).
#[cfg(not(test))]
pub(crate) mod binding {
    use super::{apply_pages, check_records};
    use crate::js::{args, bytes_arg, guard, int_in_range_arg, invalid_value, number, positive_int_arg, range_error, uint32_arg, JsResult};
    use crate::napi_sys::{napi_callback_info, napi_env, napi_value};
    use crate::verify_pages::PAGE_HEADER_SIZE;
    use crate::xxh3::Kernel;

    const MAX_U32: f64 = u32::MAX as f64;
    /// Page ids are u32; a page count may be one past the largest.
    const MAX_PAGE_COUNT: f64 = u32::MAX as f64 + 1.0;

    /// A typed array's memory as a byte range, for the overlap checks.
    #[derive(Clone, Copy)]
    struct Span {
        start: usize,
        bytes: usize,
    }

    impl Span {
        fn of<T>(ptr: *const T, len: usize) -> Span {
            Span { start: ptr as usize, bytes: len * std::mem::size_of::<T>() }
        }
        fn overlaps(self, other: Span) -> bool {
            self.bytes > 0 && other.bytes > 0 && self.start < other.start + other.bytes && other.start < self.start + self.bytes
        }
    }

    /// Refuses an output argument that shares memory with any other argument: the kernel would
    /// read what it writes (and Rust may not hold a `&mut` and a `&` on the same bytes).
    fn disjoint(name: &str, out: (&str, Span), others: &[(&str, Span)]) -> JsResult<()> {
        for &(arg, span) in others {
            if out.1.overlaps(span) {
                return Err(invalid_value(format!("{name}: argument '{}' must not share memory with '{arg}'", out.0)));
            }
        }
        Ok(())
    }

    /// SAFETY (for both): a slice over typed-array memory Node keeps alive for the call; a
    /// zero-length view may have a null pointer, so it becomes an empty slice without touching it.
    unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
        if len == 0 {
            &[]
        } else {
            std::slice::from_raw_parts(ptr, len)
        }
    }

    unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
        if len == 0 {
            &mut []
        } else {
            std::slice::from_raw_parts_mut(ptr, len)
        }
    }

    fn check_page_size(name: &str, page: usize) -> JsResult<()> {
        if page < PAGE_HEADER_SIZE {
            return Err(range_error(format!("{name}: argument 'pageSize' must be at least {PAGE_HEADER_SIZE} (the page header), got {page}")));
        }
        Ok(())
    }

    /// `redoCheckRecords(wal, positions, pageIds, count, pageSize, pageCount, out): number`
    pub(crate) unsafe extern "C" fn redo_check_records_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "redoCheckRecords";
        guard(env, NAME, || {
            let [wal, positions, page_ids, count, page_size, page_count, out] =
                args::<7>(env, info, NAME, "(wal, positions, pageIds, count, pageSize, pageCount, out)")?;
            let (wal_ptr, wal_len) = bytes_arg(env, wal, NAME, "wal")?;
            let (pos_ptr, pos_len) = uint32_arg(env, positions, NAME, "positions")?;
            let (ids_ptr, ids_len) = uint32_arg(env, page_ids, NAME, "pageIds")?;
            let count = int_in_range_arg(env, count, NAME, "count", MAX_U32)? as usize;
            let page = positive_int_arg(env, page_size, NAME, "pageSize")?;
            let page_count = int_in_range_arg(env, page_count, NAME, "pageCount", MAX_PAGE_COUNT)?;
            let (out_ptr, out_len) = uint32_arg(env, out, NAME, "out")?;
            check_page_size(NAME, page)?;
            if count > pos_len || count > ids_len {
                return Err(invalid_value(format!(
                    "{NAME}: count ({count}) passes 'positions' ({pos_len} elements) or 'pageIds' ({ids_len} elements)"
                )));
            }
            disjoint(
                NAME,
                ("out", Span::of(out_ptr, out_len)),
                &[("wal", Span::of(wal_ptr, wal_len)), ("positions", Span::of(pos_ptr, pos_len)), ("pageIds", Span::of(ids_ptr, ids_len))],
            )?;
            // SAFETY: live typed-array memory for the call (see `slice`); `out` overlaps none of
            // the others; Uint32Array data is always 4-byte aligned. If another thread writes a
            // SharedArrayBuffer meanwhile, the result is of whatever was read (every index is
            // bounds-checked, so that can never read out of bounds).
            let bad = check_records(
                slice(wal_ptr, wal_len),
                slice(pos_ptr, pos_len),
                slice(ids_ptr, ids_len),
                count,
                page,
                page_count,
                slice_mut(out_ptr, out_len),
            );
            number(env, bad as f64)
        })
    }

    /// `redoApplyPages(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status): number`
    pub(crate) unsafe extern "C" fn redo_apply_pages_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "redoApplyPages";
        guard(env, NAME, || {
            let [wal, ordered, starts, pages, first, end, slab, page_size, status] =
                args::<9>(env, info, NAME, "(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status)")?;
            let (wal_ptr, wal_len) = bytes_arg(env, wal, NAME, "wal")?;
            let (ord_ptr, ord_len) = uint32_arg(env, ordered, NAME, "ordered")?;
            let (st_ptr, st_len) = uint32_arg(env, starts, NAME, "starts")?;
            let (pg_ptr, pg_len) = uint32_arg(env, pages, NAME, "pages")?;
            let first = int_in_range_arg(env, first, NAME, "firstSlot", MAX_U32)? as usize;
            let end = int_in_range_arg(env, end, NAME, "endSlot", MAX_U32)? as usize;
            let (slab_ptr, slab_len) = bytes_arg(env, slab, NAME, "slab")?;
            let page = positive_int_arg(env, page_size, NAME, "pageSize")?;
            let (out_ptr, out_len) = uint32_arg(env, status, NAME, "status")?;
            check_page_size(NAME, page)?;
            let inputs = [
                ("wal", Span::of(wal_ptr, wal_len)),
                ("ordered", Span::of(ord_ptr, ord_len)),
                ("starts", Span::of(st_ptr, st_len)),
                ("pages", Span::of(pg_ptr, pg_len)),
            ];
            let slab_span = Span::of(slab_ptr, slab_len);
            let status_span = Span::of(out_ptr, out_len);
            disjoint(NAME, ("slab", slab_span), &inputs)?;
            disjoint(NAME, ("status", status_span), &inputs)?;
            disjoint(NAME, ("status", status_span), &[("slab", slab_span)])?;
            // SAFETY: as in `redoCheckRecords`; `slab` and `status` overlap nothing else. The
            // slab's bytes are writable (a Uint8Array is never read-only memory in Node 20).
            let counts = apply_pages(
                slice(wal_ptr, wal_len),
                slice(ord_ptr, ord_len),
                slice(st_ptr, st_len),
                slice(pg_ptr, pg_len),
                first,
                end,
                slice_mut(slab_ptr as *mut u8, slab_len),
                page,
                slice_mut(out_ptr, out_len),
                Kernel::best(),
            )
            .map_err(|msg| invalid_value(format!("{NAME}: {msg}")))?;
            number(env, counts.applied as f64)
        })
    }
}

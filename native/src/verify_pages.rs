//! The page-verification kernel behind `verifyPages`: checks a run of consecutive pages of the
//! reference store's format (plugins/pagestore/format.ts) in one call, with no allocation.
//!
//! Page header, little-endian: u64 checksum at 0 (XXH3-64 of bytes [8, pageSize)), u32 magic at
//! 8, u16 version at 12, u16 type at 14, u32 page id at 16, u32 reserved at 20, u64 page LSN at 24.
//!
//! A bad page gets one reason code:
//!
//! | code | reason            | the check                                                  |
//! |------|-------------------|------------------------------------------------------------|
//! | 1    | `checksum`        | the stored checksum equals XXH3-64 of bytes [8, pageSize)  |
//! | 2    | `magic`           | magic is `PAGE_MAGIC`                                      |
//! | 3    | `version`         | version is `FORMAT_VERSION`                                |
//! | 4    | `page-id`         | page id equals the page's position                         |
//! | 5    | `lsn-beyond-wal`  | page LSN ≤ `max_lsn` (the end of the WAL)                  |
//!
//! When a page fails several checks, the first in this order wins: magic, version, page id,
//! checksum, LSN. The cheap header checks come first because they name what is wrong: a flipped
//! magic bit also breaks the checksum, but "magic" says the header is damaged; a valid page
//! written to the wrong place has a good checksum and only "page-id" catches it. The LSN check
//! comes last: a page LSN beyond the log's end means something only on a page that is otherwise
//! intact (the log lost records, or the page came from another history); on a page with a bad
//! checksum the LSN is just noise.
//!
//! The codes are part of the JS API (native/index.d.ts) and must never be renumbered.

use crate::xxh3::{r32, r64, xxh3_64_with, Kernel};

/// Bytes of page header; a page must be at least this long.
pub const PAGE_HEADER_SIZE: usize = 32;
/// "RAPG", little-endian at offset 8.
pub const PAGE_MAGIC: u32 = 0x4750_4152;
pub const FORMAT_VERSION: u16 = 1;

pub(crate) const K_CHECKSUM: usize = 0;
const K_MAGIC: usize = 8;
const K_VERSION: usize = 12;
const K_PAGE_ID: usize = 16;
pub(crate) const K_PAGE_LSN: usize = 24;
/// Where the checksummed bytes start.
pub(crate) const K_CHECKSUMMED: usize = 8;

pub const REASON_OK: u32 = 0;
pub const REASON_CHECKSUM: u32 = 1;
pub const REASON_MAGIC: u32 = 2;
pub const REASON_VERSION: u32 = 3;
pub const REASON_PAGE_ID: u32 = 4;
pub const REASON_LSN_BEYOND_WAL: u32 = 5;

/// The reason code of one page read from position `expected_id` (0 when it is sound). `page` must
/// be at least `PAGE_HEADER_SIZE` bytes; a shorter one is reported as a bad magic (it cannot hold
/// a header), never read out of bounds.
pub fn verify_page_with(page: &[u8], expected_id: u64, max_lsn: u64, kernel: Kernel) -> u32 {
    if page.len() < PAGE_HEADER_SIZE {
        return REASON_MAGIC;
    }
    if r32(page, K_MAGIC) != PAGE_MAGIC {
        return REASON_MAGIC;
    }
    if u16::from_le_bytes([page[K_VERSION], page[K_VERSION + 1]]) != FORMAT_VERSION {
        return REASON_VERSION;
    }
    if u64::from(r32(page, K_PAGE_ID)) != expected_id {
        return REASON_PAGE_ID;
    }
    if r64(page, K_CHECKSUM) != xxh3_64_with(&page[K_CHECKSUMMED..], kernel) {
        return REASON_CHECKSUM;
    }
    if r64(page, K_PAGE_LSN) > max_lsn {
        return REASON_LSN_BEYOND_WAL;
    }
    REASON_OK
}

/// Verifies the `page`-byte pages of `data`, the first of which sits at position `first_page_id`.
/// For each bad page, writes the pair (index of the page within `data`, reason code) into `out`,
/// in page order, as long as pairs fit (`out.len() / 2` of them). Returns the number of bad pages,
/// which may exceed what fit: the caller sees that its buffer was too small.
///
/// A `page` of 0 or below the header size checks nothing and returns 0; a trailing partial page
/// is ignored (the Node-API layer rejects both before calling).
pub fn verify_pages_with(data: &[u8], page: usize, first_page_id: u64, max_lsn: u64, out: &mut [u32], kernel: Kernel) -> usize {
    if page < PAGE_HEADER_SIZE {
        return 0;
    }
    let slots = out.len() / 2;
    let mut bad = 0usize;
    for (i, chunk) in data.chunks_exact(page).enumerate() {
        let reason = verify_page_with(chunk, first_page_id + i as u64, max_lsn, kernel);
        if reason != REASON_OK {
            if bad < slots {
                out[2 * bad] = i as u32;
                out[2 * bad + 1] = reason;
            }
            bad += 1;
        }
    }
    bad
}

/// `verify_pages_with` on the fastest kernel this CPU supports, chosen once for the call.
pub fn verify_pages(data: &[u8], page: usize, first_page_id: u64, max_lsn: u64, out: &mut [u32]) -> usize {
    verify_pages_with(data, page, first_page_id, max_lsn, out, Kernel::best())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xxh3::xxh3_64;

    const PAGE: usize = 8192;

    /// Deterministic filler (a 64-bit LCG, top byte of each state).
    fn fill(buf: &mut [u8], seed: u64) {
        let mut x = seed | 1;
        for b in buf.iter_mut() {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
    }

    /// A sound page at position `id` with LSN `lsn` and pseudo-random payload.
    fn make_page(buf: &mut [u8], id: u32, lsn: u64) {
        fill(&mut buf[PAGE_HEADER_SIZE..], 0x9E37 + id as u64);
        buf[K_MAGIC..K_MAGIC + 4].copy_from_slice(&PAGE_MAGIC.to_le_bytes());
        buf[K_VERSION..K_VERSION + 2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        buf[14..16].copy_from_slice(&0u16.to_le_bytes());
        buf[K_PAGE_ID..K_PAGE_ID + 4].copy_from_slice(&id.to_le_bytes());
        buf[20..24].copy_from_slice(&0u32.to_le_bytes());
        buf[K_PAGE_LSN..K_PAGE_LSN + 8].copy_from_slice(&lsn.to_le_bytes());
        seal(buf);
    }

    fn seal(buf: &mut [u8]) {
        let sum = xxh3_64(&buf[K_CHECKSUMMED..]);
        buf[..8].copy_from_slice(&sum.to_le_bytes());
    }

    fn store(pages: usize, first: u32) -> Vec<u8> {
        let mut data = vec![0u8; pages * PAGE];
        for (i, p) in data.chunks_exact_mut(PAGE).enumerate() {
            make_page(p, first + i as u32, 1000 + i as u64);
        }
        data
    }

    fn run(data: &[u8], first: u64, max_lsn: u64) -> Vec<(u32, u32)> {
        let mut out = vec![0u32; 2 * (data.len() / PAGE)];
        let n = verify_pages(data, PAGE, first, max_lsn, &mut out);
        out.chunks_exact(2).take(n).map(|p| (p[0], p[1])).collect()
    }

    #[test]
    fn sound_pages_pass() {
        let data = store(16, 7);
        assert_eq!(run(&data, 7, u64::MAX), vec![]);
        // The largest LSN on these pages is 1015; a bound equal to it still passes.
        assert_eq!(run(&data, 7, 1015), vec![]);
    }

    #[test]
    fn every_reason() {
        let mut data = store(8, 100);
        // 1: a payload bit; 2: a magic bit; 3: version; 4: page id (resealed: a misdirected write);
        // 5: an LSN past the log (resealed); 6: the checksum itself; 7: the last payload byte.
        data[PAGE + 4000] ^= 0x10;
        data[2 * PAGE + K_MAGIC + 3] ^= 0x80;
        data[3 * PAGE + K_VERSION] ^= 0x02;
        data[4 * PAGE + K_PAGE_ID] ^= 0x01;
        seal(&mut data[4 * PAGE..5 * PAGE]);
        data[5 * PAGE + K_PAGE_LSN + 5] = 0x7f;
        seal(&mut data[5 * PAGE..6 * PAGE]);
        data[6 * PAGE + 3] ^= 0x01;
        data[8 * PAGE - 1] ^= 0x01;
        assert_eq!(
            run(&data, 100, 5000),
            vec![(1, REASON_CHECKSUM), (2, REASON_MAGIC), (3, REASON_VERSION), (4, REASON_PAGE_ID), (5, REASON_LSN_BEYOND_WAL), (6, REASON_CHECKSUM), (7, REASON_CHECKSUM)]
        );
        // Position matters: the same bytes checked as if they started at 101 all fail "page-id".
        assert!(run(&data, 101, 5000).iter().all(|&(_, r)| r == REASON_PAGE_ID || r == REASON_MAGIC || r == REASON_VERSION));
    }

    #[test]
    fn header_checks_come_before_the_checksum_and_lsn_after() {
        let mut data = store(2, 0);
        // A flipped magic bit breaks the checksum too, and is reported as magic.
        data[K_MAGIC] ^= 0x01;
        // An LSN past the log on a page whose checksum is also broken is a checksum failure.
        data[PAGE + K_PAGE_LSN + 6] = 0x01;
        assert_eq!(run(&data, 0, 5000), vec![(0, REASON_MAGIC), (1, REASON_CHECKSUM)]);
    }

    #[test]
    fn an_all_zero_page_fails_magic() {
        let mut data = store(3, 0);
        data[PAGE..2 * PAGE].fill(0);
        assert_eq!(run(&data, 0, u64::MAX), vec![(1, REASON_MAGIC)]);
    }

    #[test]
    fn short_out_counts_every_bad_page_but_writes_only_what_fits() {
        let mut data = store(6, 0);
        for i in [0, 2, 3, 5] {
            data[i * PAGE + 100] ^= 1;
        }
        let mut out = [0xFFFF_FFFFu32; 5]; // two pairs and a spare element
        assert_eq!(verify_pages(&data, PAGE, 0, u64::MAX, &mut out), 4);
        assert_eq!(out, [0, REASON_CHECKSUM, 2, REASON_CHECKSUM, 0xFFFF_FFFF]);
        assert_eq!(verify_pages(&data, PAGE, 0, u64::MAX, &mut []), 4);
    }

    #[test]
    fn kernels_agree() {
        let mut data = store(12, 40);
        for (i, at) in [(1usize, 9usize), (4, 31), (7, PAGE - 1), (9, 500)] {
            data[i * PAGE + at] ^= 0x04;
        }
        let mut want = vec![0u32; 24];
        let n = verify_pages_with(&data, PAGE, 40, u64::MAX, &mut want, Kernel::Scalar);
        assert_eq!(n, 4);
        for k in Kernel::available() {
            let mut got = vec![0u32; 24];
            assert_eq!(verify_pages_with(&data, PAGE, 40, u64::MAX, &mut got, k), n, "{k:?}");
            assert_eq!(got, want, "{k:?}");
        }
    }

    #[test]
    fn degenerate_sizes_never_panic() {
        let data = store(2, 0);
        let mut out = [0u32; 8];
        assert_eq!(verify_pages(&data, 0, 0, 0, &mut out), 0);
        assert_eq!(verify_pages(&data, 16, 0, 0, &mut out), 0);
        assert_eq!(verify_pages(&data[..PAGE + 7], PAGE, 0, u64::MAX, &mut out), 0, "a trailing partial page is ignored");
        assert_eq!(verify_pages(&[], PAGE, 0, 0, &mut out), 0);
        assert_eq!(verify_page_with(&data[..31], 0, 0, Kernel::Scalar), REASON_MAGIC);
        // Page ids past u32 never match what a u32 field can hold.
        assert_eq!(run(&data, u64::from(u32::MAX) + 1, u64::MAX), vec![(0, REASON_PAGE_ID), (1, REASON_PAGE_ID)]);
    }
}

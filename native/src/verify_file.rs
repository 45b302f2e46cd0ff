//! `verifyFile`: the page checks of `verify_pages.rs` over a range of a data file, read and
//! verified by several threads inside one call. This is the full-speed scan's engine: the
//! `scan` command spends almost all its time here.
//!
//! Why this shape (each measured on a cached 2 GiB store, 2 cores; see bench/cli.ts):
//! - Threads inside the call, not a JS worker pool: no worker to boot (tens of ms in a fresh
//!   process), no task messages; the calling thread works too, so `threads = 2` is one spawn.
//! - `pread` into a small per-thread buffer, not `mmap`: with the page cache's 2 MiB folios an
//!   mmap costs little to set up, but the first pass over a fresh mapping runs no faster than
//!   read-and-copy here, and a file that shrinks under an mmap kills the process with SIGBUS,
//!   while `pread` just returns short (the pages past the end are reported, reason 6). A 1 MiB
//!   buffer stays in L2, so the hash reads the copy from cache and each byte crosses the memory
//!   bus once.
//! - Work handed out a piece (1 MiB) at a time from an atomic counter rather than split in
//!   halves up front: on a shared machine one thread is often descheduled, and the other then
//!   takes its pieces instead of waiting for it.
//!
//! Findings are gathered per thread and sorted by page at the end, so the output is the same
//! as `verify_pages` over the whole range (plus reason 6 for pages the file ended before).

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use crate::verify_pages::{verify_pages_with, PAGE_HEADER_SIZE};
use crate::xxh3::Kernel;

/// Reason code of a page the data file ended before (only `verifyFile` reports it).
pub const REASON_SHORT_READ: u32 = 6;

/// Bytes read and verified per piece (or one page, if larger): small enough to stay in L2
/// between the read and the hash, large enough that the syscall is noise.
pub const PIECE_BYTES: usize = 1 << 20;

/// Most threads one call may use.
pub const MAX_THREADS: usize = 256;

extern "C" {
    fn pread(fd: i32, buf: *mut u8, count: usize, offset: i64) -> isize;
}

/// What to verify: pages [first_page_id, first_page_id + page_count) of the file open at `fd`.
#[derive(Clone, Copy, Debug)]
pub struct FileRange {
    pub fd: i32,
    pub page_size: usize,
    pub first_page_id: u64,
    pub page_count: u64,
    pub max_lsn: u64,
}

/// Reads and verifies `range` on `threads` threads (the calling one included; at least 1, at
/// most `MAX_THREADS`). For each bad page, in page order, writes (index within the range, reason
/// code) into `out` while pairs fit, like `verify_pages`; pages the file ended before get reason
/// `REASON_SHORT_READ`. Returns the number of bad pages, which may exceed what fit.
///
/// A read error (other than EINTR, which is retried) stops every thread and is returned; the
/// first one seen wins.
pub fn verify_file(range: FileRange, threads: usize, out: &mut [u32], kernel: Kernel) -> io::Result<usize> {
    let FileRange { page_size, page_count, .. } = range;
    if page_size < PAGE_HEADER_SIZE || page_count == 0 {
        return Ok(0);
    }
    let piece_pages = (PIECE_BYTES / page_size).max(1) as u64;
    let pieces = page_count.div_ceil(piece_pages);
    let threads = threads.clamp(1, MAX_THREADS).min(usize::try_from(pieces).unwrap_or(usize::MAX));
    let shared = Shared { range, piece_pages, pieces, next: AtomicU64::new(0), stop: AtomicBool::new(false), error: Mutex::new(None), kernel };

    let mut findings: Vec<(u64, u32)> = std::thread::scope(|s| {
        let spawned: Vec<_> = (1..threads).filter_map(|_| std::thread::Builder::new().spawn_scoped(s, || shared.work()).ok()).collect();
        // A thread that cannot be spawned (a process at its limit) only makes the scan slower:
        // the others take its pieces.
        let mut all = shared.work();
        for h in spawned {
            match h.join() {
                Ok(mut f) => all.append(&mut f),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    if let Some(err) = shared.error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    findings.sort_unstable_by_key(|&(index, _)| index);
    let slots = out.len() / 2;
    for (k, &(index, reason)) in findings.iter().take(slots).enumerate() {
        out[2 * k] = index as u32;
        out[2 * k + 1] = reason;
    }
    Ok(findings.len())
}

struct Shared {
    range: FileRange,
    piece_pages: u64,
    pieces: u64,
    next: AtomicU64,
    stop: AtomicBool,
    error: Mutex<Option<io::Error>>,
    kernel: Kernel,
}

impl Shared {
    /// One thread's loop: claim a piece, read it, verify it; until none is left or a read failed.
    /// Returns this thread's findings as (index within the range, reason).
    fn work(&self) -> Vec<(u64, u32)> {
        let FileRange { fd, page_size, first_page_id, page_count, max_lsn } = self.range;
        let mut buf = vec![0u8; self.piece_pages as usize * page_size];
        let mut scratch = vec![0u32; 2 * self.piece_pages as usize];
        let mut found = Vec::new();
        while !self.stop.load(Ordering::Relaxed) {
            let piece = self.next.fetch_add(1, Ordering::Relaxed);
            if piece >= self.pieces {
                break;
            }
            let at = piece * self.piece_pages;
            let pages = self.piece_pages.min(page_count - at);
            let want = &mut buf[..pages as usize * page_size];
            let offset = (first_page_id + at) * page_size as u64;
            let got = match read_full(fd, want, offset) {
                Ok(n) => (n / page_size) as u64,
                Err(err) => {
                    self.fail(err);
                    break;
                }
            };
            let n = verify_pages_with(&want[..got as usize * page_size], page_size, first_page_id + at, max_lsn, &mut scratch, self.kernel);
            found.extend(scratch.chunks_exact(2).take(n).map(|p| (at + u64::from(p[0]), p[1])));
            found.extend((got..pages).map(|i| (at + i, REASON_SHORT_READ)));
        }
        found
    }

    fn fail(&self, err: io::Error) {
        self.stop.store(true, Ordering::Relaxed);
        let mut first = self.error.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(err);
    }
}

/// Fills `buf` from `fd` at `offset`, retrying short reads and EINTR; returns the bytes read,
/// fewer than asked only at the end of the file.
fn read_full(fd: i32, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        let at = i64::try_from(offset + done as u64).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `buf[done..]` is valid writable memory of the length passed.
        let n = unsafe { pread(fd, buf.as_mut_ptr().add(done), buf.len() - done, at) };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if n == 0 {
            break;
        }
        done += n as usize;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify_pages::{verify_pages, REASON_CHECKSUM, REASON_MAGIC, REASON_PAGE_ID};
    use crate::xxh3::xxh3_64;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    const PAGE: usize = 4096;

    /// Sound pages 0..pages (magic, version 1, id, LSN 1, seeded payload, checksum).
    fn store(pages: usize) -> Vec<u8> {
        let mut data = vec![0u8; pages * PAGE];
        let mut x = 0x1234_5678_9abc_def1u64;
        for (i, p) in data.chunks_exact_mut(PAGE).enumerate() {
            for b in p[32..].iter_mut() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                *b = (x >> 56) as u8;
            }
            p[8..12].copy_from_slice(&0x4750_4152u32.to_le_bytes());
            p[12..14].copy_from_slice(&1u16.to_le_bytes());
            p[16..20].copy_from_slice(&(i as u32).to_le_bytes());
            p[24..32].copy_from_slice(&1u64.to_le_bytes());
            let sum = xxh3_64(&p[8..]);
            p[..8].copy_from_slice(&sum.to_le_bytes());
        }
        data
    }

    fn temp_file(name: &str, bytes: &[u8]) -> (std::path::PathBuf, std::fs::File) {
        let path = std::env::temp_dir().join(format!("ra-verify-file-{}-{name}", std::process::id()));
        std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        (path, f)
    }

    fn pairs(out: &[u32], n: usize) -> Vec<(u32, u32)> {
        out.chunks_exact(2).take(n).map(|p| (p[0], p[1])).collect()
    }

    #[test]
    fn agrees_with_verify_pages_on_every_kernel_and_thread_count() {
        // 700 pages of 4 KiB: three 1 MiB pieces (256 pages each), the last one partial.
        let mut data = store(700);
        for (page, at) in [(0usize, 100usize), (255, 4095), (256, 9), (511, 40), (699, 2000)] {
            data[page * PAGE + at] ^= 0x20;
        }
        data[300 * PAGE + 16] ^= 1; // page id
        data[301 * PAGE + 8] ^= 1; // magic
        let (path, f) = temp_file("agree", &data);
        let mut want = vec![0u32; 64];
        let n = verify_pages(&data, PAGE, 0, u64::MAX, &mut want);
        assert_eq!(n, 7);
        assert!(pairs(&want, n).contains(&(300, REASON_PAGE_ID)) && pairs(&want, n).contains(&(301, REASON_MAGIC)));
        for kernel in Kernel::available() {
            for threads in [1, 2, 3, 8, 1000] {
                let mut out = vec![0u32; 64];
                let range = FileRange { fd: f.as_raw_fd(), page_size: PAGE, first_page_id: 0, page_count: 700, max_lsn: u64::MAX };
                assert_eq!(verify_file(range, threads, &mut out, kernel).unwrap(), n, "{kernel:?} x{threads}");
                assert_eq!(out, want, "{kernel:?} x{threads}");
            }
        }
        // A sub-range: indexes are relative to its first page, page ids absolute.
        let mut out = vec![0u32; 8];
        let range = FileRange { fd: f.as_raw_fd(), page_size: PAGE, first_page_id: 250, page_count: 60, max_lsn: u64::MAX };
        assert_eq!(verify_file(range, 2, &mut out, Kernel::best()).unwrap(), 4);
        assert_eq!(pairs(&out, 4), vec![(5, REASON_CHECKSUM), (6, REASON_MAGIC), (50, REASON_PAGE_ID), (51, REASON_MAGIC)]);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn pages_past_the_end_of_the_file_are_short_reads() {
        let data = store(600);
        // The file ends 100 bytes into page 550.
        let (path, f) = temp_file("short", &data[..550 * PAGE + 100]);
        for threads in [1, 2] {
            let mut out = vec![0u32; 2 * 600];
            let range = FileRange { fd: f.as_raw_fd(), page_size: PAGE, first_page_id: 0, page_count: 600, max_lsn: u64::MAX };
            assert_eq!(verify_file(range, threads, &mut out, Kernel::best()).unwrap(), 50);
            assert_eq!(pairs(&out, 50), (550..600).map(|i| (i, REASON_SHORT_READ)).collect::<Vec<_>>());
        }
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_short_out_counts_everything_and_writes_what_fits() {
        let mut data = store(300);
        for page in [3usize, 9, 270, 290] {
            data[page * PAGE + 77] ^= 1;
        }
        let (path, f) = temp_file("out", &data);
        let range = FileRange { fd: f.as_raw_fd(), page_size: PAGE, first_page_id: 0, page_count: 300, max_lsn: u64::MAX };
        let mut out = [u32::MAX; 5];
        assert_eq!(verify_file(range, 2, &mut out, Kernel::best()).unwrap(), 4);
        assert_eq!(out, [3, REASON_CHECKSUM, 9, REASON_CHECKSUM, u32::MAX]);
        assert_eq!(verify_file(range, 2, &mut [], Kernel::best()).unwrap(), 4);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_read_error_is_returned() {
        // A descriptor that is not open: EBADF from the first read, whichever thread makes it.
        let range = FileRange { fd: 1 << 30, page_size: PAGE, first_page_id: 0, page_count: 1000, max_lsn: u64::MAX };
        let err = verify_file(range, 2, &mut [0u32; 8], Kernel::best()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(9), "{err}");
        // Nothing to read is not an error.
        assert_eq!(verify_file(FileRange { page_count: 0, ..range }, 2, &mut [], Kernel::best()).unwrap(), 0);
    }
}

/// The Node-API binding (left out of `cargo test` builds, like the rest of the glue).
#[cfg(not(test))]
pub(crate) mod binding {
    use std::ffi::CStr;

    use super::{verify_file, FileRange, MAX_THREADS};
    use crate::js::{args, guard, int_in_range_arg, invalid_value, number, positive_int_arg, range_error, uint32_arg, ErrorKind, JsError};
    use crate::napi_sys::{napi_callback_info, napi_env, napi_value};
    use crate::verify_pages::PAGE_HEADER_SIZE;
    use crate::xxh3::Kernel;

    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

    /// Node's name for the errno a read can fail with, as the error's `code` (what `fs.readSync`
    /// would have thrown), or a generic code for the rare others.
    fn errno_code(errno: Option<i32>) -> &'static CStr {
        match errno {
            Some(5) => c"EIO",
            Some(9) => c"EBADF",
            Some(21) => c"EISDIR",
            Some(22) => c"EINVAL",
            Some(6) => c"ENXIO",
            Some(75) => c"EOVERFLOW",
            _ => c"ERR_SYSTEM_ERROR",
        }
    }

    /// `verifyFile(fd, pageSize, firstPageId, pageCount, maxLsn, threads, out): number`
    pub(crate) unsafe extern "C" fn verify_file_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "verifyFile";
        guard(env, NAME, || {
            let [fd, page_size, first, count, max_lsn, threads, out] =
                args::<7>(env, info, NAME, "(fd, pageSize, firstPageId, pageCount, maxLsn, threads, out)")?;
            let fd = int_in_range_arg(env, fd, NAME, "fd", i32::MAX as f64)? as i32;
            let page = positive_int_arg(env, page_size, NAME, "pageSize")?;
            let first = int_in_range_arg(env, first, NAME, "firstPageId", u32::MAX as f64)?;
            let count = int_in_range_arg(env, count, NAME, "pageCount", u32::MAX as f64 + 1.0)?;
            let max_lsn = int_in_range_arg(env, max_lsn, NAME, "maxLsn", MAX_SAFE_INTEGER)?;
            let threads = int_in_range_arg(env, threads, NAME, "threads", MAX_THREADS as f64)? as usize;
            let (out_ptr, out_len) = uint32_arg(env, out, NAME, "out")?;
            if page < PAGE_HEADER_SIZE {
                return Err(range_error(format!("{NAME}: argument 'pageSize' must be at least {PAGE_HEADER_SIZE} (the page header), got {page}")));
            }
            if threads == 0 {
                return Err(range_error(format!("{NAME}: argument 'threads' must be at least 1")));
            }
            if count > 0 && first + (count - 1) > u64::from(u32::MAX) {
                return Err(invalid_value(format!("{NAME}: firstPageId ({first}) + {count} pages passes the largest page id ({})", u32::MAX)));
            }
            // SAFETY: live typed-array memory for the call (Node keeps `out` alive and blocks
            // this thread until we return); a Uint32Array is 4-byte aligned; a zero-length one
            // may have a null pointer, so it becomes an empty slice without touching it.
            let found: &mut [u32] = if out_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(out_ptr, out_len) };
            let range = FileRange { fd, page_size: page, first_page_id: first, page_count: count, max_lsn };
            match verify_file(range, threads, found, Kernel::best()) {
                Ok(bad) => number(env, bad as f64),
                Err(err) => Err(JsError {
                    kind: ErrorKind::Plain,
                    code: errno_code(err.raw_os_error()),
                    message: format!("{NAME}: cannot read pages {first}..{} of fd {fd}: {err}", first + count),
                }),
            }
        })
    }
}

//! `adviseHugePages`: asks the kernel to back a large buffer with transparent huge pages.
//!
//! Recovery fills a few hundred MiB of fresh memory (the WAL window, the redo workers' pages).
//! Each first touch of a 4 KiB page is a page fault; on a virtual machine a fault costs tens of
//! microseconds (measured here: 77 MiB read into a fresh buffer 490 ms, into the same buffer
//! again 22 ms), so the faults, not the copying, were most of a redo worker's time. With
//! `MADV_HUGEPAGE` one fault maps 2 MiB. Linux only (a no-op elsewhere), and only a hint: where
//! transparent huge pages are off (`/sys/kernel/mm/transparent_hugepage/enabled` = never) it
//! changes nothing, and nothing else depends on it.

/// Huge page size assumed for alignment: 2 MiB, x86_64's and most arm64 kernels'.
const HUGE: usize = 2 << 20;

#[cfg(target_os = "linux")]
extern "C" {
    fn madvise(addr: *mut std::ffi::c_void, len: usize, advice: i32) -> i32;
}
#[cfg(target_os = "linux")]
const MADV_HUGEPAGE: i32 = 14;

/// The part of `[ptr, ptr + len)` made of whole aligned huge pages: (start, length); length 0
/// when none fits.
pub fn huge_span(ptr: usize, len: usize) -> (usize, usize) {
    let start = ptr.checked_add(HUGE - 1).map_or(usize::MAX, |v| v & !(HUGE - 1));
    let end = ptr.saturating_add(len) & !(HUGE - 1);
    if end > start {
        (start, end - start)
    } else {
        (start, 0)
    }
}

/// Advises huge pages for the whole aligned huge pages within `[ptr, ptr + len)`; returns the
/// bytes advised (0 when none fit, off Linux, or when the kernel refuses the advice).
///
/// # Safety
/// `ptr..ptr + len` must be memory this process owns (a typed array's backing store): madvise
/// with MADV_HUGEPAGE changes no content, only how the range is backed.
pub unsafe fn advise_huge_pages(ptr: *mut u8, len: usize) -> usize {
    let (start, bytes) = huge_span(ptr as usize, len);
    if bytes == 0 {
        return 0;
    }
    #[cfg(target_os = "linux")]
    {
        if madvise(start as *mut std::ffi::c_void, bytes, MADV_HUGEPAGE) == 0 {
            return bytes;
        }
        0
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = start;
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_is_the_aligned_huge_pages_inside() {
        assert_eq!(huge_span(0, HUGE), (0, HUGE));
        assert_eq!(huge_span(1, HUGE), (HUGE, 0));
        assert_eq!(huge_span(4096, 3 * HUGE), (HUGE, 2 * HUGE));
        assert_eq!(huge_span(HUGE, HUGE - 1), (HUGE, 0));
        assert_eq!(huge_span(usize::MAX - 10, 5), (usize::MAX, 0));
    }

    #[test]
    fn advising_leaves_the_contents_alone() {
        let mut v = vec![7u8; 8 * HUGE];
        let advised = unsafe { advise_huge_pages(v.as_mut_ptr(), v.len()) };
        assert!(advised <= v.len() && advised % HUGE == 0);
        assert!(v.iter().all(|&b| b == 7));
    }
}

//! The floor under any page scan, for bench/cli.ts: a process that only brings every byte of a
//! file from the page cache to the CPU, on N threads, and does nothing with it (it adds up 64-bit
//! words so the reads cannot be skipped). Whatever verifies the pages also has to do this, so a
//! scan's whole-process time can never beat `node -e 0` plus this.
//!
//! Two ways to read, both timed by the bench (it takes the faster):
//! - `mmap`: map the file, MADV_POPULATE_READ each thread's half, read the mapping (no copy);
//! - `pread`: 1 MiB `pread`s into a per-thread buffer (the copy verifyFile makes).
//!
//! Usage: read_floor FILE THREADS mmap|pread   (prints the sum, so the work is observable)
//! Built by the bench with `cargo build --release --example read_floor`; not part of the addon.

use std::fs::File;
use std::os::fd::AsRawFd;

extern "C" {
    fn mmap(addr: *mut u8, len: usize, prot: i32, flags: i32, fd: i32, offset: i64) -> *mut u8;
    fn madvise(addr: *mut u8, len: usize, advice: i32) -> i32;
    fn pread(fd: i32, buf: *mut u8, count: usize, offset: i64) -> isize;
}

const PROT_READ: i32 = 1;
const MAP_SHARED: i32 = 1;
const MADV_POPULATE_READ: i32 = 22;
const PIECE: usize = 1 << 20;

fn sum_words(bytes: &[u8]) -> u64 {
    // SAFETY: any bytes are valid u64s; `align_to` hands back only the aligned middle, and the
    // buffers here (a mapping, a 1 MiB Vec) are page-aligned, so the ends are empty.
    let (head, words, tail) = unsafe { bytes.align_to::<u64>() };
    // Eight independent sums, so the loop is bound by the loads, not by one add chain.
    let mut acc = [0u64; 8];
    for chunk in words.chunks_exact(8) {
        for i in 0..8 {
            acc[i] = acc[i].wrapping_add(chunk[i]);
        }
    }
    let rest = words.chunks_exact(8).remainder().iter().chain(acc.iter()).fold(0u64, |s, &w| s.wrapping_add(w));
    head.iter().chain(tail).fold(rest, |s, &b| s.wrapping_add(u64::from(b)))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: read_floor FILE THREADS mmap|pread");
        std::process::exit(2);
    }
    let file = File::open(&args[1]).unwrap_or_else(|e| panic!("{}: {e}", args[1]));
    let threads: usize = args[2].parse().expect("THREADS must be a positive integer");
    let len = file.metadata().expect("stat").len() as usize;
    let fd = file.as_raw_fd();
    let part = len.div_ceil(threads.max(1)).next_multiple_of(PIECE);
    let sum = match args[3].as_str() {
        "mmap" => {
            // SAFETY: a read-only shared mapping of a file we hold open; the bench never changes
            // the file while this runs.
            let base = unsafe { mmap(std::ptr::null_mut(), len, PROT_READ, MAP_SHARED, fd, 0) };
            assert!(base as isize != -1, "mmap failed: {}", std::io::Error::last_os_error());
            let data = unsafe { std::slice::from_raw_parts(base, len) };
            std::thread::scope(|s| {
                let hs: Vec<_> = data
                    .chunks(part)
                    .map(|half| {
                        s.spawn(move || {
                            // SAFETY: `half` lies inside the mapping.
                            unsafe { madvise(half.as_ptr() as *mut u8, half.len(), MADV_POPULATE_READ) };
                            sum_words(half)
                        })
                    })
                    .collect();
                hs.into_iter().fold(0u64, |s, h| s.wrapping_add(h.join().unwrap()))
            })
        }
        "pread" => std::thread::scope(|s| {
            let hs: Vec<_> = (0..len.div_ceil(part))
                .map(|t| {
                    s.spawn(move || {
                        let mut buf = vec![0u8; PIECE];
                        let (mut at, end, mut sum) = (t * part, ((t + 1) * part).min(len), 0u64);
                        while at < end {
                            // SAFETY: `buf` is PIECE writable bytes.
                            let n = unsafe { pread(fd, buf.as_mut_ptr(), PIECE.min(end - at), at as i64) };
                            assert!(n > 0, "pread at {at}: {}", std::io::Error::last_os_error());
                            sum = sum.wrapping_add(sum_words(&buf[..n as usize]));
                            at += n as usize;
                        }
                        sum
                    })
                })
                .collect();
            hs.into_iter().fold(0u64, |s, h| s.wrapping_add(h.join().unwrap()))
        }),
        other => panic!("unknown mode {other}: expected mmap or pread"),
    };
    println!("{sum:016x}");
}

//! XXH3-64 with seed 0 and the default secret, written from the public specification
//! (xxHash's `doc/xxhash_spec.md`). This file holds the constants, the short- and mid-length
//! paths (0..=240 bytes) and the choice of kernel for long inputs; the long-input loop lives in
//! `long.rs` (scalar) and `long_x86.rs` (SSE2/AVX2/AVX-512).
//!
//! Everything here is safe code. Reads go through `r32`/`r64`, which index slices: the length
//! class of each path guarantees the indexes are in bounds, and if a bug ever broke that, the
//! result would be a panic that the Node-API layer catches, not an out-of-bounds read.

use crate::long;

pub(crate) const PRIME32_1: u64 = 0x9E37_79B1;
pub(crate) const PRIME32_2: u64 = 0x85EB_CA77;
pub(crate) const PRIME32_3: u64 = 0xC2B2_AE3D;
pub(crate) const PRIME64_1: u64 = 0x9E37_79B1_85EB_CA87;
pub(crate) const PRIME64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
pub(crate) const PRIME64_3: u64 = 0x1656_67B1_9E37_79F9;
pub(crate) const PRIME64_4: u64 = 0x85EB_CA77_C2B2_AE63;
pub(crate) const PRIME64_5: u64 = 0x27D4_EB2F_1656_67C5;
const PRIME_MX1: u64 = 0x1656_6791_9E37_79F9;
const PRIME_MX2: u64 = 0x9FB2_1C65_1E98_DF25;

/// The default 192-byte secret from the specification. A `static` (not a `const`) so the SIMD
/// kernels read it from one fixed address.
pub(crate) static SECRET: [u8; 192] = [
    0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
    0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
    0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
    0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
    0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
    0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
    0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
    0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
    0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
    0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
    0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
    0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
];

/// Inputs longer than this take the striped long-input path.
pub(crate) const MIDSIZE_MAX: usize = 240;

/// Which implementation of the long-input accumulate/scramble loop to run. All of them compute
/// the same function; only speed differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// Portable 64-bit arithmetic; the only choice off x86_64.
    Scalar,
    /// 128-bit SSE2, part of the x86_64 baseline so always available there.
    Sse2,
    /// 256-bit AVX2, chosen at run time when the CPU has it.
    Avx2,
    /// 512-bit AVX-512F, chosen at run time when the CPU has it.
    Avx512,
}

impl Kernel {
    /// Every kernel this CPU can run, slowest first.
    pub fn available() -> Vec<Kernel> {
        [Kernel::Scalar, Kernel::Sse2, Kernel::Avx2, Kernel::Avx512].into_iter().filter(|k| k.is_supported()).collect()
    }

    /// The fastest kernel this CPU can run. `is_x86_feature_detected!` caches its answer, so this
    /// is cheap enough to call per hash.
    pub fn best() -> Kernel {
        if Kernel::Avx512.is_supported() {
            Kernel::Avx512
        } else if Kernel::Avx2.is_supported() {
            Kernel::Avx2
        } else if Kernel::Sse2.is_supported() {
            Kernel::Sse2
        } else {
            Kernel::Scalar
        }
    }

    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Sse2 | Kernel::Avx2 | Kernel::Avx512 => false,
        }
    }

    /// XXH3-64 of an input longer than 240 bytes. Callers have checked `is_supported`.
    fn hash_long(self, input: &[u8]) -> u64 {
        debug_assert!(input.len() > MIDSIZE_MAX);
        match self {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: SSE2 is part of the x86_64 baseline; the length is > 240 as required.
            Kernel::Sse2 => unsafe { crate::long_x86::hash_long_sse2(input) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only reached when `is_supported` saw AVX2 on this CPU; length > 240.
            Kernel::Avx2 => unsafe { crate::long_x86::hash_long_avx2(input) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only reached when `is_supported` saw AVX-512F on this CPU; length > 240.
            Kernel::Avx512 => unsafe { crate::long_x86::hash_long_avx512(input) },
            _ => long::hash_long_scalar(input),
        }
    }
}

/// XXH3-64 (seed 0) of `input`, using the fastest kernel this CPU supports.
pub fn xxh3_64(input: &[u8]) -> u64 {
    xxh3_64_with(input, Kernel::best())
}

/// XXH3-64 with a chosen long-input kernel; falls back to the scalar one if the CPU lacks it.
pub fn xxh3_64_with(input: &[u8], kernel: Kernel) -> u64 {
    let len = input.len();
    match len {
        0 => len_0(),
        1..=3 => len_1to3(input),
        4..=8 => len_4to8(input),
        9..=16 => len_9to16(input),
        17..=128 => len_17to128(input),
        129..=MIDSIZE_MAX => len_129to240(input),
        _ if kernel.is_supported() => kernel.hash_long(input),
        _ => long::hash_long_scalar(input),
    }
}

/// One XXH3-64 per `page`-byte page of `data`, into `out[0..pages]`. The kernel is chosen once for
/// the whole call. `page` must divide `data.len()` and `out` must hold every page; the Node-API
/// layer checks both before calling, and this function also stops at whichever runs out first.
pub fn xxh3_64_pages(data: &[u8], page: usize, out: &mut [u64]) -> usize {
    if page == 0 {
        return 0;
    }
    let kernel = Kernel::best();
    let mut n = 0;
    for (chunk, slot) in data.chunks_exact(page).zip(out.iter_mut()) {
        *slot = xxh3_64_with(chunk, kernel);
        n += 1;
    }
    n
}

#[inline(always)]
pub(crate) fn r32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

#[inline(always)]
pub(crate) fn r64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The low and high halves of the 128-bit product, xor-ed together.
#[inline(always)]
pub(crate) fn mul128_fold64(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// XXH64's final mix, reused by XXH3 for the 0..=3-byte inputs.
#[inline(always)]
fn xxh64_avalanche(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(PRIME64_2);
    h ^= h >> 29;
    h = h.wrapping_mul(PRIME64_3);
    h ^ (h >> 32)
}

/// XXH3's own final mix.
#[inline(always)]
pub(crate) fn avalanche(mut h: u64) -> u64 {
    h ^= h >> 37;
    h = h.wrapping_mul(PRIME_MX1);
    h ^ (h >> 32)
}

/// The stronger final mix used for 4..=8-byte inputs.
#[inline(always)]
fn rrmxmx(mut h: u64, len: u64) -> u64 {
    h ^= h.rotate_left(49) ^ h.rotate_left(24);
    h = h.wrapping_mul(PRIME_MX2);
    h ^= (h >> 35).wrapping_add(len);
    h = h.wrapping_mul(PRIME_MX2);
    h ^ (h >> 28)
}

fn len_0() -> u64 {
    xxh64_avalanche(r64(&SECRET, 56) ^ r64(&SECRET, 64))
}

fn len_1to3(b: &[u8]) -> u64 {
    let len = b.len();
    let c1 = b[0] as u32;
    let c2 = b[len >> 1] as u32;
    let c3 = b[len - 1] as u32;
    let combined = (c1 << 16) | (c2 << 24) | c3 | ((len as u32) << 8);
    let bitflip = (r32(&SECRET, 0) ^ r32(&SECRET, 4)) as u64;
    xxh64_avalanche(combined as u64 ^ bitflip)
}

fn len_4to8(b: &[u8]) -> u64 {
    let len = b.len();
    let lo = r32(b, 0) as u64;
    let hi = r32(b, len - 4) as u64;
    let bitflip = r64(&SECRET, 8) ^ r64(&SECRET, 16);
    let keyed = (hi.wrapping_add(lo << 32)) ^ bitflip;
    rrmxmx(keyed, len as u64)
}

fn len_9to16(b: &[u8]) -> u64 {
    let len = b.len();
    let lo = r64(b, 0) ^ (r64(&SECRET, 24) ^ r64(&SECRET, 32));
    let hi = r64(b, len - 8) ^ (r64(&SECRET, 40) ^ r64(&SECRET, 48));
    let acc = (len as u64)
        .wrapping_add(lo.swap_bytes())
        .wrapping_add(hi)
        .wrapping_add(mul128_fold64(lo, hi));
    avalanche(acc)
}

/// Mixes 16 input bytes at `at` with 16 secret bytes at `s`.
#[inline(always)]
fn mix16(b: &[u8], at: usize, s: usize) -> u64 {
    mul128_fold64(r64(b, at) ^ r64(&SECRET, s), r64(b, at + 8) ^ r64(&SECRET, s + 8))
}

/// 17..=128 bytes: pairs of 16-byte lanes taken from both ends, working inwards.
fn len_17to128(b: &[u8]) -> u64 {
    let len = b.len();
    let mut acc = (len as u64).wrapping_mul(PRIME64_1);
    if len > 32 {
        if len > 64 {
            if len > 96 {
                acc = acc.wrapping_add(mix16(b, 48, 96)).wrapping_add(mix16(b, len - 64, 112));
            }
            acc = acc.wrapping_add(mix16(b, 32, 64)).wrapping_add(mix16(b, len - 48, 80));
        }
        acc = acc.wrapping_add(mix16(b, 16, 32)).wrapping_add(mix16(b, len - 32, 48));
    }
    acc = acc.wrapping_add(mix16(b, 0, 0)).wrapping_add(mix16(b, len - 16, 16));
    avalanche(acc)
}

/// 129..=240 bytes: eight rounds over the secret's start, an intermediate avalanche, the
/// remaining whole 16-byte rounds over the secret shifted by 3, and the last 16 bytes.
fn len_129to240(b: &[u8]) -> u64 {
    const STARTOFFSET: usize = 3;
    const LASTOFFSET: usize = 17;
    const SECRET_SIZE_MIN: usize = 136;
    let len = b.len();
    let mut acc = (len as u64).wrapping_mul(PRIME64_1);
    for i in 0..8 {
        acc = acc.wrapping_add(mix16(b, 16 * i, 16 * i));
    }
    acc = avalanche(acc);
    for i in 8..len / 16 {
        acc = acc.wrapping_add(mix16(b, 16 * i, 16 * (i - 8) + STARTOFFSET));
    }
    acc = acc.wrapping_add(mix16(b, len - 16, SECRET_SIZE_MIN - LASTOFFSET));
    avalanche(acc)
}

//! Known-answer and cross-kernel tests, run by `cargo test` (npm run test:native-rust).

use crate::xxh3::{xxh3_64, xxh3_64_pages, xxh3_64_with, Kernel};

/// The deterministic test input: bytes from a 64-bit LCG (top byte of each state), the same
/// generator that produced the files the vectors below were computed from.
fn lcg_bytes(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x243F_6A88_85A3_08D3;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// (length, XXH3-64) of the first `length` bytes of `lcg_bytes`, computed with
/// `xxhsum -H3` (xxHash 0.8.1) on files holding those bytes. They cover every length class:
/// 0, 1–3, 4–8, 9–16, 17–128, 129–240 and > 240 around stripe (64) and block (1024) edges.
const VECTORS: &[(usize, u64)] = &[
    (0, 0x2d06800538d394c2),
    (1, 0xc0d1e3a09a6ab844),
    (2, 0xfc85756002682820),
    (3, 0x40ffb44ddc6a1ae4),
    (4, 0xc67c86eea81241b8),
    (5, 0xb19f6a3f9a21278b),
    (7, 0x172b522e62743067),
    (8, 0x8bbb553473f39d0d),
    (9, 0x21e8e1bb56e8fbbb),
    (15, 0x60fa34166ebeb7e8),
    (16, 0xf16cdb36e7fb7c86),
    (17, 0xf81d8c46a785bad9),
    (31, 0xd56aad7f410ed92f),
    (32, 0x299524a3cb690b69),
    (33, 0xe3e480bd7a46a5b2),
    (63, 0x4136038841488d1a),
    (64, 0x64bfe753916b76d7),
    (65, 0x016e927a5484d1fb),
    (95, 0x085346e6f83fca09),
    (96, 0x0100be5cd7bbab8d),
    (97, 0x1de8c46f20a4f6f2),
    (127, 0x5b65b576f11381f0),
    (128, 0x0ab589b07c0b2288),
    (129, 0x7dbd0c5b2622d756),
    (130, 0xfe734c84f8c170c4),
    (143, 0xfe9a72b2fc46dc47),
    (144, 0x2d135be451bd5626),
    (200, 0x7fd5faf49d539f45),
    (239, 0xa6f207268afc7fd5),
    (240, 0xfedb3d4c4f935a6e),
    (241, 0x0d78bc9c748024a7),
    (255, 0x7dc97f5aa5bded4f),
    (256, 0x024d790b2c4fdefb),
    (257, 0xd2efd63b0b95ee04),
    (511, 0x49d29d17581a1996),
    (512, 0x7701a493d838e45c),
    (1023, 0x15521f8b9b43dc0f),
    (1024, 0x46182daff2f9d8e1),
    (1025, 0x1f7a9173ce46bb59),
    (1087, 0x3f8d1019702aa1e2),
    (1088, 0x5eddac8bc7769cb8),
    (1089, 0x562d20d46e8c4831),
    (2047, 0x7e5433723d10ee59),
    (2048, 0x4b7b6e9c1af5e762),
    (2049, 0xe49c872a5fac1ea1),
    (4096, 0xbfdfbc769ecbd97b),
    (8192, 0xf057281044ff77ba),
    (8193, 0xe7e7d646b6231f9e),
    (65536, 0x7e730e9cbeb54ad3),
    (100000, 0x249fa0c16c8744b9),
    (1048593, 0xe50baa1af92784a3),
];

#[test]
fn known_vectors_every_kernel() {
    let data = lcg_bytes(1048593);
    for kernel in Kernel::available() {
        for &(len, want) in VECTORS {
            let got = xxh3_64_with(&data[..len], kernel);
            assert_eq!(got, want, "{kernel:?}, length {len}: got {got:#018x}, want {want:#018x}");
        }
    }
}

#[test]
fn known_text_vectors() {
    // `printf abc | xxhsum -H3` and the empty input.
    assert_eq!(xxh3_64(b"abc"), 0x78af5f94892f3950);
    assert_eq!(xxh3_64(b""), 0x2d06800538d394c2);
}

#[test]
fn x86_kernels_are_available_on_x86_64() {
    if cfg!(target_arch = "x86_64") {
        assert!(Kernel::Sse2.is_supported());
        assert!(Kernel::available().contains(&Kernel::Sse2));
    }
    assert!(Kernel::best().is_supported());
}

/// The wide kernels are tested wherever the CPU has them: the tests below run every available
/// kernel, so check that "available" really includes them here.
#[test]
#[cfg(target_arch = "x86_64")]
fn wide_kernels_are_tested_when_the_cpu_has_them() {
    assert_eq!(Kernel::available().contains(&Kernel::Avx2), std::arch::is_x86_feature_detected!("avx2"));
    assert_eq!(Kernel::available().contains(&Kernel::Avx512), std::arch::is_x86_feature_detected!("avx512f"));
    if std::arch::is_x86_feature_detected!("avx512f") {
        assert_eq!(Kernel::best(), Kernel::Avx512);
    }
}

/// Every kernel agrees with the scalar one for every length up to a few blocks, at every
/// misalignment of the input pointer.
#[test]
fn kernels_agree_with_scalar() {
    let data = lcg_bytes(5000 + 64);
    let kernels = Kernel::available();
    for offset in 0..8 {
        for len in 0..=4200 {
            let input = &data[offset..offset + len];
            let want = xxh3_64_with(input, Kernel::Scalar);
            for &k in &kernels {
                assert_eq!(xxh3_64_with(input, k), want, "{k:?}, offset {offset}, length {len}");
            }
        }
    }
}

#[test]
fn kernels_agree_on_large_inputs() {
    let data = lcg_bytes((4 << 20) + 100);
    let kernels = Kernel::available();
    for len in [(1 << 20) - 1, 1 << 20, (1 << 20) + 1, (3 << 20) + 12345, (4 << 20) + 100] {
        let want = xxh3_64_with(&data[..len], Kernel::Scalar);
        for &k in &kernels {
            assert_eq!(xxh3_64_with(&data[..len], k), want, "{k:?}, length {len}");
        }
    }
}

#[test]
fn pages_match_single_hashes() {
    let data = lcg_bytes(8192 * 9);
    for page in [1usize, 3, 64, 240, 241, 4096, 8192] {
        let pages = data.len() / page;
        let mut out = vec![0u64; pages + 2];
        let n = xxh3_64_pages(&data[..pages * page], page, &mut out);
        assert_eq!(n, pages);
        for (i, sum) in out[..pages].iter().enumerate() {
            assert_eq!(*sum, xxh3_64(&data[i * page..(i + 1) * page]), "page size {page}, page {i}");
        }
        assert_eq!(&out[pages..], &[0, 0], "wrote past the last page");
    }
}

#[test]
fn pages_never_overrun() {
    let data = lcg_bytes(1000);
    let mut out = [0u64; 2];
    // More pages than slots, and a size that does not divide the length: stop early, never panic.
    assert_eq!(xxh3_64_pages(&data, 100, &mut out), 2);
    assert_eq!(xxh3_64_pages(&data, 0, &mut out), 0);
    assert_eq!(xxh3_64_pages(&data[..999], 333, &mut [0u64; 8]), 3);
}

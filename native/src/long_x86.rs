//! SSE2, AVX2 and AVX-512 kernels for the long-input loop in `long.rs` (x86_64 only).
//!
//! Each computes exactly what the scalar kernel computes, two (SSE2), four (AVX2) or all eight
//! (AVX-512) 64-bit lanes at a time:
//! - `_mm*_mul_epu32` multiplies the low 32 bits of each 64-bit lane, so multiplying
//!   (input ^ secret) by a copy whose 32-bit halves are swapped gives lo32 × hi32;
//! - swapping the 64-bit halves of each 128-bit lane of the input adds it to acc[i ^ 1];
//! - the scramble's multiply by the 32-bit PRIME32_1 is done as two 32×32 multiplies
//!   (low half, and high half shifted up by 32), since there is no 64×64 vector multiply.

use core::arch::x86_64::*;

use crate::long::define_hash_long;

/// `_MM_SHUFFLE(0, 3, 0, 1)`: puts each 64-bit lane's high 32 bits in its low 32 bits.
const HI_TO_LO: i32 = 0b00_11_00_01;
/// `_MM_SHUFFLE(1, 0, 3, 2)`: swaps the two 64-bit halves of each 128-bit lane.
const SWAP_64: i32 = 0b01_00_11_10;

mod sse2 {
    use super::*;
    use crate::xxh3::PRIME32_1;

    pub(super) type State = [__m128i; 4];

    // SSE2 is always enabled on x86_64, so these can be `inline(always)` without `target_feature`.
    #[inline(always)]
    pub(super) unsafe fn load(init: &[u64; 8]) -> State {
        let p = init.as_ptr() as *const __m128i;
        [_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)), _mm_loadu_si128(p.add(2)), _mm_loadu_si128(p.add(3))]
    }

    #[inline(always)]
    pub(super) unsafe fn store(acc: State) -> [u64; 8] {
        let mut out = [0u64; 8];
        let p = out.as_mut_ptr() as *mut __m128i;
        for (i, v) in acc.iter().enumerate() {
            _mm_storeu_si128(p.add(i), *v);
        }
        out
    }

    #[inline(always)]
    pub(super) unsafe fn accumulate_512(acc: &mut State, input: *const u8, secret: *const u8) {
        let input = input as *const __m128i;
        let secret = secret as *const __m128i;
        for (i, a) in acc.iter_mut().enumerate() {
            let data = _mm_loadu_si128(input.add(i));
            let key = _mm_xor_si128(data, _mm_loadu_si128(secret.add(i)));
            let product = _mm_mul_epu32(key, _mm_shuffle_epi32::<HI_TO_LO>(key));
            let sum = _mm_add_epi64(*a, _mm_shuffle_epi32::<SWAP_64>(data));
            *a = _mm_add_epi64(product, sum);
        }
    }

    #[inline(always)]
    pub(super) unsafe fn scramble(acc: &mut State, secret: *const u8) {
        let secret = secret as *const __m128i;
        let prime = _mm_set1_epi32(PRIME32_1 as i32);
        for (i, a) in acc.iter_mut().enumerate() {
            let v = _mm_xor_si128(*a, _mm_srli_epi64::<47>(*a));
            let v = _mm_xor_si128(v, _mm_loadu_si128(secret.add(i)));
            let lo = _mm_mul_epu32(v, prime);
            let hi = _mm_mul_epu32(_mm_shuffle_epi32::<HI_TO_LO>(v), prime);
            *a = _mm_add_epi64(lo, _mm_slli_epi64::<32>(hi));
        }
    }
}

mod avx2 {
    use super::*;
    use crate::xxh3::PRIME32_1;

    pub(super) type State = [__m256i; 2];

    // `#[inline]` + the same `target_feature` as `hash_long_avx2`, so they inline into it.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn load(init: &[u64; 8]) -> State {
        let p = init.as_ptr() as *const __m256i;
        [_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1))]
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn store(acc: State) -> [u64; 8] {
        let mut out = [0u64; 8];
        let p = out.as_mut_ptr() as *mut __m256i;
        _mm256_storeu_si256(p, acc[0]);
        _mm256_storeu_si256(p.add(1), acc[1]);
        out
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn accumulate_512(acc: &mut State, input: *const u8, secret: *const u8) {
        let input = input as *const __m256i;
        let secret = secret as *const __m256i;
        for (i, a) in acc.iter_mut().enumerate() {
            let data = _mm256_loadu_si256(input.add(i));
            let key = _mm256_xor_si256(data, _mm256_loadu_si256(secret.add(i)));
            let product = _mm256_mul_epu32(key, _mm256_shuffle_epi32::<HI_TO_LO>(key));
            let sum = _mm256_add_epi64(*a, _mm256_shuffle_epi32::<SWAP_64>(data));
            *a = _mm256_add_epi64(product, sum);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn scramble(acc: &mut State, secret: *const u8) {
        let secret = secret as *const __m256i;
        let prime = _mm256_set1_epi32(PRIME32_1 as i32);
        for (i, a) in acc.iter_mut().enumerate() {
            let v = _mm256_xor_si256(*a, _mm256_srli_epi64::<47>(*a));
            let v = _mm256_xor_si256(v, _mm256_loadu_si256(secret.add(i)));
            let lo = _mm256_mul_epu32(v, prime);
            let hi = _mm256_mul_epu32(_mm256_shuffle_epi32::<HI_TO_LO>(v), prime);
            *a = _mm256_add_epi64(lo, _mm256_slli_epi64::<32>(hi));
        }
    }
}

/// AVX-512F: the eight accumulators in one register, one stripe (64 bytes) per load. On CPUs
/// that run 512-bit operations as two 256-bit halves this does the same arithmetic as AVX2 with
/// half the instructions, which is what matters when the loop is fed from L2 (the page scan).
mod avx512 {
    use super::*;
    use crate::xxh3::PRIME32_1;

    pub(super) type State = __m512i;

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn load(init: &[u64; 8]) -> State {
        _mm512_loadu_si512(init.as_ptr() as *const __m512i)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn store(acc: State) -> [u64; 8] {
        let mut out = [0u64; 8];
        _mm512_storeu_si512(out.as_mut_ptr() as *mut __m512i, acc);
        out
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn accumulate_512(acc: &mut State, input: *const u8, secret: *const u8) {
        let data = _mm512_loadu_si512(input as *const __m512i);
        let key = _mm512_xor_si512(data, _mm512_loadu_si512(secret as *const __m512i));
        let product = _mm512_mul_epu32(key, _mm512_shuffle_epi32::<HI_TO_LO>(key));
        let sum = _mm512_add_epi64(*acc, _mm512_shuffle_epi32::<SWAP_64>(data));
        *acc = _mm512_add_epi64(product, sum);
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn scramble(acc: &mut State, secret: *const u8) {
        let prime = _mm512_set1_epi32(PRIME32_1 as i32);
        let v = _mm512_xor_si512(*acc, _mm512_srli_epi64::<47>(*acc));
        let v = _mm512_xor_si512(v, _mm512_loadu_si512(secret as *const __m512i));
        let lo = _mm512_mul_epu32(v, prime);
        let hi = _mm512_mul_epu32(_mm512_shuffle_epi32::<HI_TO_LO>(v), prime);
        *acc = _mm512_add_epi64(lo, _mm512_slli_epi64::<32>(hi));
    }
}

define_hash_long!(
    /// Long-input XXH3-64 with SSE2. Safety: `input.len() > 240`.
    pub(crate) unsafe fn hash_long_sse2,
    sse2
);

define_hash_long!(
    /// Long-input XXH3-64 with AVX2. Safety: `input.len() > 240` and the CPU supports AVX2.
    #[target_feature(enable = "avx2")]
    pub(crate) unsafe fn hash_long_avx2,
    avx2
);

define_hash_long!(
    /// Long-input XXH3-64 with AVX-512F. Safety: `input.len() > 240` and the CPU supports AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(crate) unsafe fn hash_long_avx512,
    avx512
);

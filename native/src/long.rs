//! XXH3-64 for inputs longer than 240 bytes: the "striped" loop of the specification, shared by
//! every kernel, and the portable scalar kernel.
//!
//! The input is cut into 1024-byte blocks of 16 stripes of 64 bytes. Each stripe is folded into
//! eight 64-bit accumulators with a secret that slides 8 bytes per stripe; after each full block
//! the accumulators are scrambled. The tail (the last partial block, then the last 64 bytes,
//! which may overlap it) is folded in without a scramble, and the accumulators are merged.
//!
//! The loop is written once, as a macro, and stamped out per kernel so that each copy can carry
//! its kernel's `#[target_feature]`: that lets the compiler inline the kernel's intrinsics into
//! the loop and keep the accumulators in vector registers for the whole input.

use crate::xxh3::{avalanche, mul128_fold64, r64, PRIME32_1, PRIME32_2, PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME64_5, SECRET};

pub(crate) const STRIPE_LEN: usize = 64;
/// How far the secret slides per stripe.
pub(crate) const SECRET_CONSUME_RATE: usize = 8;
pub(crate) const STRIPES_PER_BLOCK: usize = (SECRET.len() - STRIPE_LEN) / SECRET_CONSUME_RATE;
pub(crate) const BLOCK_LEN: usize = STRIPE_LEN * STRIPES_PER_BLOCK;
/// Secret offset of the scramble key: the last 64 bytes of the secret.
pub(crate) const SCRAMBLE_SECRET: usize = SECRET.len() - STRIPE_LEN;
/// Secret offset used for the input's last stripe.
pub(crate) const LAST_STRIPE_SECRET: usize = SECRET.len() - STRIPE_LEN - 7;
/// Secret offset used when merging the accumulators.
const MERGE_SECRET: usize = 11;

/// The accumulators' starting values, from the specification.
pub(crate) const INIT_ACC: [u64; 8] = [PRIME32_3, PRIME64_1, PRIME64_2, PRIME64_3, PRIME64_4, PRIME32_2, PRIME64_5, PRIME32_1];

/// Folds the eight accumulators into the final 64-bit hash.
pub(crate) fn merge_accs(acc: &[u64; 8], len: usize) -> u64 {
    let mut result = (len as u64).wrapping_mul(PRIME64_1);
    for i in 0..4 {
        let s = MERGE_SECRET + 16 * i;
        result = result.wrapping_add(mul128_fold64(acc[2 * i] ^ r64(&SECRET, s), acc[2 * i + 1] ^ r64(&SECRET, s + 8)));
    }
    avalanche(result)
}

/// Defines `unsafe fn $name(input: &[u8]) -> u64`, the long-input hash over kernel module `$k`,
/// which provides `State`, `load`, `accumulate_512`, `scramble` and `store`.
///
/// The generated function requires `input.len() > 240` (so that it is at least one stripe) and
/// whatever CPU features its attributes enable.
macro_rules! define_hash_long {
    ($(#[$attr:meta])* $vis:vis unsafe fn $name:ident, $k:ident) => {
        $(#[$attr])*
        $vis unsafe fn $name(input: &[u8]) -> u64 {
            use $crate::long::{BLOCK_LEN, INIT_ACC, LAST_STRIPE_SECRET, SCRAMBLE_SECRET, SECRET_CONSUME_RATE, STRIPES_PER_BLOCK, STRIPE_LEN};
            let len = input.len();
            debug_assert!(len > $crate::xxh3::MIDSIZE_MAX);
            let p = input.as_ptr();
            let s = $crate::xxh3::SECRET.as_ptr();
            let mut acc = $k::load(&INIT_ACC);
            // `len - 1`: an input that is an exact number of blocks keeps its last block for the
            // tail, which ends with the last stripe instead of a scramble.
            let nb_blocks = (len - 1) / BLOCK_LEN;
            for b in 0..nb_blocks {
                let block = p.add(b * BLOCK_LEN);
                for i in 0..STRIPES_PER_BLOCK {
                    $k::accumulate_512(&mut acc, block.add(i * STRIPE_LEN), s.add(i * SECRET_CONSUME_RATE));
                }
                $k::scramble(&mut acc, s.add(SCRAMBLE_SECRET));
            }
            let tail = p.add(nb_blocks * BLOCK_LEN);
            let nb_stripes = ((len - 1) - nb_blocks * BLOCK_LEN) / STRIPE_LEN;
            for i in 0..nb_stripes {
                $k::accumulate_512(&mut acc, tail.add(i * STRIPE_LEN), s.add(i * SECRET_CONSUME_RATE));
            }
            $k::accumulate_512(&mut acc, p.add(len - STRIPE_LEN), s.add(LAST_STRIPE_SECRET));
            $crate::long::merge_accs(&$k::store(acc), len)
        }
    };
}
pub(crate) use define_hash_long;

/// The portable kernel: plain 64-bit arithmetic, eight accumulators in an array.
mod scalar {
    use crate::xxh3::PRIME32_1;
    use std::ptr::read_unaligned;

    pub(super) type State = [u64; 8];

    #[inline(always)]
    pub(super) unsafe fn load(init: &[u64; 8]) -> State {
        *init
    }

    #[inline(always)]
    pub(super) unsafe fn store(acc: State) -> [u64; 8] {
        acc
    }

    #[inline(always)]
    unsafe fn read64(p: *const u8) -> u64 {
        u64::from_le(read_unaligned(p as *const u64))
    }

    /// One stripe: each lane adds its neighbour's input word (acc[i ^ 1]) and the 32×32→64
    /// product of the two halves of (input ^ secret).
    #[inline(always)]
    pub(super) unsafe fn accumulate_512(acc: &mut State, input: *const u8, secret: *const u8) {
        for i in 0..8 {
            let data = read64(input.add(8 * i));
            let key = data ^ read64(secret.add(8 * i));
            acc[i ^ 1] = acc[i ^ 1].wrapping_add(data);
            acc[i] = acc[i].wrapping_add((key & 0xFFFF_FFFF).wrapping_mul(key >> 32));
        }
    }

    #[inline(always)]
    pub(super) unsafe fn scramble(acc: &mut State, secret: *const u8) {
        for (i, a) in acc.iter_mut().enumerate() {
            let mut v = *a;
            v ^= v >> 47;
            v ^= read64(secret.add(8 * i));
            *a = v.wrapping_mul(PRIME32_1);
        }
    }
}

define_hash_long!(unsafe fn hash_long_scalar_unchecked, scalar);

/// Long-input XXH3-64 with the scalar kernel. Inputs of 240 bytes or fewer are not "long" and are
/// handed to the short paths instead, so this is safe to call with any slice.
pub(crate) fn hash_long_scalar(input: &[u8]) -> u64 {
    if input.len() <= crate::xxh3::MIDSIZE_MAX {
        return crate::xxh3::xxh3_64_with(input, crate::xxh3::Kernel::Scalar);
    }
    // SAFETY: the length is > 240, and the scalar kernel needs no CPU feature.
    unsafe { hash_long_scalar_unchecked(input) }
}

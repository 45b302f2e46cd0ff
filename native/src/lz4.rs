//! LZ4 decoding for restore: the frames plugins/snapshot-manager/lz4Frame.ts writes (a 7-byte
//! header, independent blocks of at most 4 MiB, no checksums, no content size), decoded into a
//! buffer the caller owns.
//!
//! Restore decodes a whole store (1 GiB and more) from these frames; the JavaScript decoder it
//! replaces ran at ~1 GB/s per thread and was the largest cost of a restore after the writes.
//! This one copies literals and matches 16 bytes at a time where the output has room for the
//! overshoot (bytes past the current end are written again by what follows, or lie beyond the
//! output's end and are not part of it), and byte by byte where the output is nearly full or a
//! match overlaps its own output by less than 8 bytes (a repeat of a short pattern, as the format
//! means it).
//!
//! Every length and offset is checked against both buffers, so a damaged frame returns an error
//! instead of reading or writing out of bounds; there is no `unsafe` here. The callers check the
//! frame's XXH3 before decoding and the output's after, so damage is also caught when it decodes.

/// The only header decoded here: magic 0x184D2204, FLG 0x60, BD 0x70, HC 0x73 (lz4Frame.ts).
pub const FRAME_HEADER: [u8; 7] = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73];
/// Set in a block's size field when the block is stored uncompressed.
const UNCOMPRESSED: u32 = 0x8000_0000;
/// The widest copy step; also the room past a copy's end the fast paths need in the output.
const WILD: usize = 16;

/// Why a frame or block cannot be decoded (the text goes into the thrown error).
pub type Damage = &'static str;

/// Reads an LZ4 length continuation (bytes of 255 then one below) at `*s`, adding it to `n`.
#[inline(always)]
fn more_length(src: &[u8], s: &mut usize, mut n: usize, why: Damage) -> Result<usize, Damage> {
    loop {
        let b = *src.get(*s).ok_or(why)?;
        *s += 1;
        n += b as usize;
        if b != 255 {
            return Ok(n);
        }
    }
}

/// Decodes the LZ4 block `src` into `dst` from `d`; returns where its output ends.
pub fn decode_block(src: &[u8], dst: &mut [u8], mut d: usize) -> Result<usize, Damage> {
    let s_end = src.len();
    let d_end = dst.len();
    let mut s = 0usize;
    while s < s_end {
        let token = src[s];
        s += 1;
        let mut lit = (token >> 4) as usize;
        if lit == 15 {
            lit = more_length(src, &mut s, lit, "literal length runs past the block")?;
        }
        if lit > s_end - s || lit > d_end - d {
            return Err("literals run past the block or the output");
        }
        if lit <= WILD && s_end - s >= WILD && d_end - d >= WILD {
            dst[d..d + WILD].copy_from_slice(&src[s..s + WILD]);
        } else {
            dst[d..d + lit].copy_from_slice(&src[s..s + lit]);
        }
        s += lit;
        d += lit;
        if s == s_end {
            break; // the last sequence has literals only
        }
        if s_end - s < 2 {
            return Err("match offset runs past the block");
        }
        let off = u16::from_le_bytes([src[s], src[s + 1]]) as usize;
        s += 2;
        let mut len = (token & 15) as usize + 4;
        if len == 19 {
            len = more_length(src, &mut s, len, "match length runs past the block")?;
        }
        if off == 0 || off > d {
            return Err("match offset points before the output");
        }
        if len > d_end - d {
            return Err("match runs past the output");
        }
        copy_match(dst, d, off, len);
        d += len;
    }
    Ok(d)
}

/// Writes the `len` bytes of a match at `d`, each equal to the byte `off` before it (so a match
/// shorter than its own length repeats the last `off` bytes). The caller has checked
/// `off <= d` and `d + len <= dst.len()`.
#[inline(always)]
fn copy_match(dst: &mut [u8], d: usize, off: usize, len: usize) {
    let m = d - off;
    let room = dst.len() - d;
    // Steps of `step` bytes, each reading only bytes already final (step ≤ off), rounded up
    // past `len` when the output has room: the overshoot is written again by what follows.
    let step = if off >= WILD { WILD } else if off >= 8 { 8 } else { 0 };
    if step != 0 && len.div_ceil(step) * step <= room {
        let mut k = 0;
        while k < len {
            let (done, rest) = dst.split_at_mut(d + k);
            if step == WILD {
                rest[..WILD].copy_from_slice(&done[m + k..m + k + WILD]);
            } else {
                rest[..8].copy_from_slice(&done[m + k..m + k + 8]);
            }
            k += step;
        }
    } else if off >= len {
        dst.copy_within(m..m + len, d);
    } else {
        for k in 0..len {
            dst[d + k] = dst[m + k];
        }
    }
}

/// Decodes a frame with [`FRAME_HEADER`] into `dst`: `Ok(Some(bytes written))`, `Ok(None)` when
/// the header is another one (the caller decodes it some other way), `Err` when it is damaged.
pub fn decode_frame(frame: &[u8], dst: &mut [u8]) -> Result<Option<usize>, Damage> {
    if frame.len() < FRAME_HEADER.len() + 4 || frame[..FRAME_HEADER.len()] != FRAME_HEADER {
        return Ok(None);
    }
    let mut s = FRAME_HEADER.len();
    let mut d = 0usize;
    loop {
        if frame.len() - s < 4 {
            return Err("no end mark");
        }
        let field = u32::from_le_bytes([frame[s], frame[s + 1], frame[s + 2], frame[s + 3]]);
        s += 4;
        if field == 0 {
            break;
        }
        let size = (field & !UNCOMPRESSED) as usize;
        if size > frame.len() - s {
            return Err("a block runs past the frame");
        }
        let block = &frame[s..s + size];
        if field & UNCOMPRESSED != 0 {
            if size > dst.len() - d {
                return Err("a stored block runs past the output");
            }
            dst[d..d + size].copy_from_slice(block);
            d += size;
        } else {
            d = decode_block(block, dst, d)?;
        }
        s += size;
    }
    if s != frame.len() {
        return Err("bytes after the end mark");
    }
    Ok(Some(d))
}

#[cfg(not(test))]
pub(crate) mod binding {
    use crate::js::{args, bytes_arg, guard, invalid_value, number, ErrorKind, JsError};
    use crate::napi_sys::{napi_callback_info, napi_env, napi_value};

    /// `lz4DecodeFrame(frame: Uint8Array, dst: Uint8Array): number`
    pub(crate) unsafe extern "C" fn lz4_decode_frame_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "lz4DecodeFrame";
        guard(env, NAME, || {
            let [frame, dst] = args::<2>(env, info, NAME, "(frame, dst)")?;
            let (f_ptr, f_len) = bytes_arg(env, frame, NAME, "frame")?;
            let (d_ptr, d_len) = bytes_arg(env, dst, NAME, "dst")?;
            let (f_start, f_end) = (f_ptr as usize, f_ptr as usize + f_len);
            let (d_start, d_end) = (d_ptr as usize, d_ptr as usize + d_len);
            if f_len > 0 && d_len > 0 && f_start < d_end && d_start < f_end {
                return Err(invalid_value(format!("{NAME}: argument 'dst' must not share memory with 'frame'")));
            }
            // SAFETY: both ranges are live typed-array memory for the call and do not overlap; a
            // zero-length view may have a null pointer, so it becomes an empty slice untouched.
            let src: &[u8] = if f_len == 0 { &[] } else { std::slice::from_raw_parts(f_ptr, f_len) };
            let out: &mut [u8] = if d_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(d_ptr as *mut u8, d_len) };
            match super::decode_frame(src, out) {
                Ok(Some(n)) => number(env, n as f64),
                Ok(None) => number(env, -1.0),
                Err(why) => Err(JsError { kind: ErrorKind::Plain, code: c"RA_ERR_SNAPSHOT_CORRUPT", message: format!("LZ4 frame is damaged: {why}") }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of one compressed block.
    fn frame_of(block: &[u8]) -> Vec<u8> {
        let mut f = FRAME_HEADER.to_vec();
        f.extend_from_slice(&(block.len() as u32).to_le_bytes());
        f.extend_from_slice(block);
        f.extend_from_slice(&[0, 0, 0, 0]);
        f
    }

    /// The obvious byte-by-byte decoder, as the format describes it: the oracle.
    fn reference(src: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut s = 0;
        while s < src.len() {
            let t = src[s];
            s += 1;
            let mut lit = (t >> 4) as usize;
            if lit == 15 {
                loop {
                    let b = src[s];
                    s += 1;
                    lit += b as usize;
                    if b != 255 {
                        break;
                    }
                }
            }
            out.extend_from_slice(&src[s..s + lit]);
            s += lit;
            if s == src.len() {
                break;
            }
            let off = src[s] as usize | (src[s + 1] as usize) << 8;
            s += 2;
            let mut len = (t & 15) as usize + 4;
            if len == 19 {
                loop {
                    let b = src[s];
                    s += 1;
                    len += b as usize;
                    if b != 255 {
                        break;
                    }
                }
            }
            for _ in 0..len {
                out.push(out[out.len() - off]);
            }
        }
        out
    }

    /// A valid block of sequences drawn from `seed`: every literal length and match offset and
    /// length class (short, 15 + continuation, overlapping, far), ending in literals.
    fn random_block(seed: u64, sequences: usize) -> Vec<u8> {
        let mut x = seed | 1;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut b = Vec::new();
        let mut produced = 0usize;
        for i in 0..sequences {
            let lit = if i == 0 { 1 + (rnd() % 40) as usize } else { (rnd() % [4, 20, 300][(rnd() % 3) as usize]) as usize };
            let len = 4 + (rnd() % [4, 30, 600][(rnd() % 3) as usize]) as usize;
            let max_off = (produced + lit).min(65535);
            let off = 1 + (rnd() as usize % [7, 20, max_off][(rnd() % 3) as usize].min(max_off));
            let token_lit = lit.min(15) as u8;
            let token_len = (len - 4).min(15) as u8;
            b.push(token_lit << 4 | token_len);
            if lit >= 15 {
                let mut r = lit - 15;
                while r >= 255 {
                    b.push(255);
                    r -= 255;
                }
                b.push(r as u8);
            }
            for _ in 0..lit {
                b.push(rnd() as u8);
            }
            b.extend_from_slice(&(off as u16).to_le_bytes());
            if len - 4 >= 15 {
                let mut r = len - 4 - 15;
                while r >= 255 {
                    b.push(255);
                    r -= 255;
                }
                b.push(r as u8);
            }
            produced += lit + len;
        }
        b.push(0x50);
        b.extend_from_slice(b"tail!");
        b
    }

    #[test]
    fn decodes_as_the_reference_decoder_does() {
        for seed in 1..200u64 {
            let block = random_block(seed, 1 + (seed as usize % 50));
            let want = reference(&block);
            // Exactly sized output (no room for the wide copies at the end) and a roomy one.
            for extra in [0usize, 64] {
                let mut dst = vec![0xeeu8; want.len() + extra];
                let n = decode_frame(&frame_of(&block), &mut dst).unwrap().unwrap();
                assert_eq!(n, want.len(), "seed {seed}");
                assert_eq!(&dst[..n], &want[..], "seed {seed} extra {extra}");
            }
        }
    }

    #[test]
    fn stored_blocks_and_other_headers() {
        let mut f = FRAME_HEADER.to_vec();
        f.extend_from_slice(&(3u32 | UNCOMPRESSED).to_le_bytes());
        f.extend_from_slice(b"abc");
        f.extend_from_slice(&[0, 0, 0, 0]);
        let mut dst = [0u8; 3];
        assert_eq!(decode_frame(&f, &mut dst), Ok(Some(3)));
        assert_eq!(&dst, b"abc");
        let mut other = f.clone();
        other[4] = 0x64; // a frame with a content checksum: not ours
        assert_eq!(decode_frame(&other, &mut dst), Ok(None));
    }

    #[test]
    fn damage_is_an_error_never_a_panic() {
        let block = random_block(7, 40);
        let want = reference(&block).len();
        let good = frame_of(&block);
        let mut dst = vec![0u8; want];
        assert!(decode_frame(&good[..good.len() - 1], &mut dst).is_err(), "truncated");
        assert!(decode_frame(&good, &mut vec![0u8; want - 1]).is_err(), "output too small");
        let mut x = 99u64;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let mut bad = good.clone();
            let at = FRAME_HEADER.len() + (x >> 33) as usize % (bad.len() - FRAME_HEADER.len());
            bad[at] ^= 1 << ((x >> 20) % 8);
            let _ = decode_frame(&bad, &mut dst); // any result but a panic or an out-of-bounds access
        }
        let mut zero_off = FRAME_HEADER.to_vec();
        let b = [0x10u8, b'a', 0, 0, 0x10, b'b'];
        zero_off.extend_from_slice(&(b.len() as u32).to_le_bytes());
        zero_off.extend_from_slice(&b);
        zero_off.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(decode_frame(&zero_off, &mut [0u8; 16]), Err("match offset points before the output"));
    }
}

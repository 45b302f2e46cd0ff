//! The WAL scan kernel behind `walScanRecords`: validates a run of consecutive records of the
//! reference store's log (plugins/pagestore/walRecord.ts) in one call, the check of
//! `validRecordAt` per record, so recovery's analysis pass makes one native call per run instead
//! of one `xxh3` call per record.
//!
//! A record at position `p` is valid when (exactly `validRecordAt`'s checks, in its order): at
//! least 64 bytes remain before `end`; its u32 total length at 0 is at least 64, a multiple of 8
//! and within `end`; its u64 LSN at 8 is its own position in the log; its type at 4 is 1..=5;
//! its last 8 bytes are the XXH3-64 of every byte before them. Where the log ends or is damaged
//! (torn tail or corruption) stays the caller's decision: the kernel only stops there.

use crate::redo::{K_REC_LENGTH, K_REC_LSN, K_REC_TYPE, RECORD_MIN_SIZE};
use crate::xxh3::{r32, r64, xxh3_64_with, Kernel};

const TYPE_MIN: u8 = 1;
const TYPE_MAX: u8 = 5;

/// The size of the valid record at `at` whose LSN must be `lsn`, or `None`.
pub fn valid_record_at(buf: &[u8], at: usize, end: usize, lsn: u64, kernel: Kernel) -> Option<usize> {
    let end = end.min(buf.len());
    if at > end || end - at < RECORD_MIN_SIZE {
        return None;
    }
    let total = r32(buf, at + K_REC_LENGTH) as usize;
    if total < RECORD_MIN_SIZE || total % 8 != 0 || total > end - at {
        return None;
    }
    if r64(buf, at + K_REC_LSN) != lsn {
        return None;
    }
    if !(TYPE_MIN..=TYPE_MAX).contains(&buf[at + K_REC_TYPE]) {
        return None;
    }
    if xxh3_64_with(&buf[at..at + total - 8], kernel) != r64(buf, at + total - 8) {
        return None;
    }
    Some(total)
}

/// Validates consecutive records from `start` (whose LSN is `start_lsn`; each next record's LSN
/// is its distance from `start` plus `start_lsn`) up to `end`, writing each valid record's
/// position into `positions`. Stops at the first record that is not valid, at `end`, or when
/// `positions` is full. Returns how many it wrote; the caller finds where it stopped from the
/// last one (its position plus its length), or at `start` when it wrote none.
pub fn scan_records(buf: &[u8], start: usize, end: usize, start_lsn: u64, positions: &mut [u32], kernel: Kernel) -> usize {
    scan_records_with(buf, start, end, start_lsn, positions, kernel, |_, _| {})
}

/// `scan_records`, calling `on_record(position, index)` for each valid record as soon as it is
/// validated, while its bytes are still in cache: recovery's analysis runs there
/// (analysis.rs `scan_analyse`), so the log is read once, and stops exactly where this scan does.
pub fn scan_records_with(buf: &[u8], start: usize, end: usize, start_lsn: u64, positions: &mut [u32], kernel: Kernel, mut on_record: impl FnMut(usize, usize)) -> usize {
    let mut p = start;
    let mut n = 0;
    while n < positions.len() {
        let Some(lsn) = start_lsn.checked_add((p - start) as u64) else {
            break;
        };
        let Some(size) = valid_record_at(buf, p, end, lsn, kernel) else {
            break;
        };
        // Positions are u32 (the JS index is a Uint32Array); a position past that ends the run.
        let Ok(at) = u32::try_from(p) else {
            break;
        };
        positions[n] = at;
        on_record(p, n);
        n += 1;
        p += size;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xxh3::xxh3_64;

    /// Appends a record of `body` bytes at LSN `base + position`.
    fn push(log: &mut Vec<u8>, base: u64, kind: u8, body: usize) -> usize {
        let at = log.len();
        let total = ((56 + body + 7) & !7) + 8;
        let mut rec = vec![0u8; total];
        rec[0..4].copy_from_slice(&(total as u32).to_le_bytes());
        rec[4] = kind;
        rec[8..16].copy_from_slice(&(base + at as u64).to_le_bytes());
        for (i, b) in rec[56..total - 8].iter_mut().enumerate() {
            *b = (i * 7 + at) as u8;
        }
        let sum = xxh3_64(&rec[..total - 8]);
        rec[total - 8..].copy_from_slice(&sum.to_le_bytes());
        log.extend_from_slice(&rec);
        at
    }

    fn log(base: u64, n: usize) -> (Vec<u8>, Vec<usize>) {
        let mut buf = vec![0u8; 64];
        let ats = (0..n).map(|i| push(&mut buf, base, 1 + (i % 5) as u8, i * 37 % 300)).collect();
        (buf, ats)
    }

    #[test]
    fn scans_every_valid_record_and_stops_at_the_first_bad_one() {
        for kernel in Kernel::available() {
            let base = 16 << 20;
            let (mut buf, ats) = log(base, 50);
            let mut out = vec![0u32; 64];
            let n = scan_records(&buf, 64, buf.len(), base + 64, &mut out, kernel);
            assert_eq!(out[..n].iter().map(|&p| p as usize).collect::<Vec<_>>(), ats);
            // A short positions array: the first that fit.
            assert_eq!(scan_records(&buf, 64, buf.len(), base + 64, &mut out[..7], kernel), 7);
            // Resuming from a record.
            assert_eq!(scan_records(&buf, ats[10], buf.len(), base + ats[10] as u64, &mut out, kernel), 40);
            // Each kind of damage stops the run at the damaged record.
            type Damage = fn(&mut [u8], usize);
            let damage: [(usize, Damage); 6] = [
                (20, |b, at| b[at + 60] ^= 1),                         // checksum
                (21, |b, at| b[at + 8] ^= 1),                          // LSN
                (22, |b, at| b[at + 4] = 6),                           // type
                (23, |b, at| b[at] = b[at].wrapping_add(8)),           // length
                (24, |b, at| b[at..at + 4].copy_from_slice(&60u32.to_le_bytes())), // too short
                (25, |b, at| b[at] |= 4),                              // not a multiple of 8
            ];
            for (i, f) in damage {
                let saved = buf.clone();
                f(&mut buf, ats[i]);
                assert_eq!(scan_records(&buf, 64, buf.len(), base + 64, &mut out, kernel), i, "damage at record {i}");
                buf = saved;
            }
            // A record cut short by `end`; a start past the end.
            assert_eq!(scan_records(&buf, 64, ats[30] + 10, base + 64, &mut out, kernel), 30);
            assert_eq!(scan_records(&buf, 64, buf.len() + 1000, base + 64, &mut out, kernel), 50);
            assert_eq!(scan_records(&buf, buf.len() + 8, buf.len(), 0, &mut out, kernel), 0);
            assert_eq!(scan_records(&buf, 64, buf.len(), u64::MAX - 10, &mut out, kernel), 0);
        }
    }
}

/// The Node-API binding (left out of `cargo test` builds, like the rest of the glue).
#[cfg(not(test))]
pub(crate) mod binding {
    use super::scan_records;
    use crate::js::{args, bytes_arg, guard, int_in_range_arg, invalid_value, number, uint32_arg};
    use crate::napi_sys::{napi_callback_info, napi_env, napi_value};
    use crate::xxh3::Kernel;

    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

    /// `walScanRecords(buf, start, end, startLsn, positions, first): number`
    pub(crate) unsafe extern "C" fn wal_scan_records_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "walScanRecords";
        guard(env, NAME, || {
            let [buf, start, end, start_lsn, positions, first] = args::<6>(env, info, NAME, "(buf, start, end, startLsn, positions, first)")?;
            let (ptr, len) = bytes_arg(env, buf, NAME, "buf")?;
            let start = int_in_range_arg(env, start, NAME, "start", MAX_SAFE_INTEGER)? as usize;
            let end = int_in_range_arg(env, end, NAME, "end", MAX_SAFE_INTEGER)? as usize;
            let start_lsn = int_in_range_arg(env, start_lsn, NAME, "startLsn", MAX_SAFE_INTEGER)?;
            let (out_ptr, out_len) = uint32_arg(env, positions, NAME, "positions")?;
            let first = int_in_range_arg(env, first, NAME, "first", MAX_SAFE_INTEGER)? as usize;
            if start > end || end > len {
                return Err(invalid_value(format!("{NAME}: start ({start}) and end ({end}) must satisfy start <= end <= buf.byteLength ({len})")));
            }
            if first > out_len {
                return Err(invalid_value(format!("{NAME}: first ({first}) passes the {out_len} elements of 'positions'")));
            }
            let (out_start, out_end) = (out_ptr as usize, out_ptr as usize + out_len * 4);
            if out_len > 0 && len > 0 && (ptr as usize) < out_end && out_start < ptr as usize + len {
                return Err(invalid_value(format!("{NAME}: argument 'positions' must not share memory with 'buf'")));
            }
            // SAFETY: live typed-array memory for the call; they do not overlap; a Uint32Array is
            // 4-byte aligned; zero-length views may have null pointers, so they become empty
            // slices without touching them.
            let bytes: &[u8] = if len == 0 { &[] } else { std::slice::from_raw_parts(ptr, len) };
            let out: &mut [u32] = if out_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(out_ptr, out_len) };
            let n = scan_records(bytes, start, end, start_lsn, &mut out[first..], Kernel::best());
            number(env, n as f64)
        })
    }
}

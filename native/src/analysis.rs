//! The analysis kernel behind `walAnalyze`: recovery's per-record analysis of one chunk of the
//! log (plugins/pagestore/redoStream.ts, recovery.ts) in one native call, so JavaScript touches
//! per-transaction and per-chunk data, never per-record.
//!
//! Input: the positions of records the scan has already validated (wal_scan.rs), in LSN order.
//! Per record (checkpoints skipped, as the JS loop did — their JSON stays in JS):
//! - the transaction table of the chunk: per transaction id, its first and last LSN in the chunk
//!   and whether its last record there is a commit or an abort. Only the last record of each
//!   transaction decides what the caller does with it (forget it when it ended, remember its last
//!   LSN when not), which is what running the records one by one through a map did;
//! - the redo records (update, CLR at or after the redo LSN): checked as `redo::check_records`
//!   does (the first that redo could not apply stops the chunk), dealt to the redo workers by
//!   block of page ids, pages touched marked in the caller's bitmap, and the pages touched for
//!   the first time reported with their first LSN (the dirty page table);
//! - counts per record type and the largest transaction id.
//!
//! Commit and abort records are read by their header only; their total length (any body, e.g. a
//! commit time) comes from the record, never assumed.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::redo::{check_record, K_REC_LSN, K_REC_TYPE, TYPE_CLR, TYPE_UPDATE};
use crate::wal_scan::scan_records_with;
use crate::xxh3::{r32, r64, Kernel};

const K_REC_TX_ID: usize = 16;
const K_REC_PAGE_ID: usize = 32;
pub const TYPE_COMMIT: u8 = 2;
pub const TYPE_ABORT: u8 = 3;
pub const TYPE_CHECKPOINT: u8 = 5;

/// Transaction state codes in `AnalysisOut::txs` (stable: part of the JS API).
pub const TX_OPEN: u8 = 0;
pub const TX_COMMITTED: u8 = 1;
pub const TX_ABORTED: u8 = 2;

/// The parameters of a chunk's analysis.
#[derive(Clone, Copy, Debug)]
pub struct AnalysisParams {
    pub redo_lsn: u64,
    pub page_size: usize,
    pub page_count: u64,
    /// Redo workers to deal to; 0 or 1 keeps every redo record in one group, in LSN order.
    pub workers: usize,
    /// Pages per block of the partition between workers.
    pub block_pages: u32,
}

/// One transaction's records in the chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxEntry {
    pub tx_id: u64,
    pub first_lsn: u64,
    pub last_lsn: u64,
    /// TX_OPEN, TX_COMMITTED or TX_ABORTED: what the transaction's last record in the chunk is.
    pub state: u8,
}

/// A redo record `check_records` would refuse: its index in the positions and its problem code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadRecord {
    pub index: usize,
    pub problem: u32,
}

/// What a chunk's analysis found.
#[derive(Debug, Default)]
pub struct AnalysisOut {
    /// In order of each transaction's first record in the chunk.
    pub txs: Vec<TxEntry>,
    /// Per worker (one group without workers): (position, page id) of its redo records, in LSN order.
    pub redo: Vec<Vec<(u32, u32)>>,
    /// Pages touched for the first time (their bit was clear in `covered`): page id, first LSN.
    pub dirty: Vec<(u32, u64)>,
    pub max_tx_id: u64,
    /// Records per type 1..=5 (index 0 unused).
    pub by_type: [u64; 6],
    pub bad: Option<BadRecord>,
}

/// FxHash-style multiplicative hasher: transaction ids are small integers, SipHash is wasted on them.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The per-record analysis of one chunk, shared by `analyse` (records a scan already found) and
/// `scan_analyse` (records analysed as the scan validates them), so the two agree record for record.
struct Analyser {
    p: AnalysisParams,
    groups: usize,
    block: u64,
    index: HashMap<u64, usize, BuildHasherDefault<IdHasher>>,
    out: AnalysisOut,
}

impl Analyser {
    fn new(p: AnalysisParams) -> Self {
        let groups = p.workers.max(1);
        Analyser {
            p,
            groups,
            block: u64::from(p.block_pages.max(1)),
            index: HashMap::default(),
            out: AnalysisOut { redo: vec![Vec::new(); groups], ..AnalysisOut::default() },
        }
    }

    /// Analyses the record at `at` (at least 64 bytes of `wal` from there), the chunk's record
    /// `i`. A redo record redo could not apply sets `out.bad` and is not reported.
    #[inline]
    fn record(&mut self, wal: &[u8], at: usize, i: usize, covered: &mut [u8]) {
        let (p, out) = (&self.p, &mut self.out);
        let kind = wal[at + K_REC_TYPE];
        if (1..=5).contains(&kind) {
            out.by_type[kind as usize] += 1;
        }
        if kind == TYPE_CHECKPOINT {
            return;
        }
        let lsn = r64(wal, at + K_REC_LSN);
        let tx_id = r64(wal, at + K_REC_TX_ID);
        out.max_tx_id = out.max_tx_id.max(tx_id);
        let state = match kind {
            TYPE_COMMIT => TX_COMMITTED,
            TYPE_ABORT => TX_ABORTED,
            _ => TX_OPEN,
        };
        match self.index.get(&tx_id) {
            Some(&k) => {
                let e = &mut out.txs[k];
                e.last_lsn = lsn;
                e.state = state;
            }
            None => {
                self.index.insert(tx_id, out.txs.len());
                out.txs.push(TxEntry { tx_id, first_lsn: lsn, last_lsn: lsn, state });
            }
        }
        if (kind == TYPE_UPDATE || kind == TYPE_CLR) && lsn >= p.redo_lsn {
            let page_id = r32(wal, at + K_REC_PAGE_ID);
            if let Err(problem) = check_record(wal, at, p.page_size, page_id, p.page_count) {
                out.bad = Some(BadRecord { index: i, problem });
                return;
            }
            let (byte, bit) = ((page_id >> 3) as usize, 1u8 << (page_id & 7));
            if let Some(b) = covered.get_mut(byte) {
                if *b & bit == 0 {
                    *b |= bit;
                    out.dirty.push((page_id, lsn));
                }
            }
            let w = if self.groups > 1 { ((u64::from(page_id) / self.block) % self.groups as u64) as usize } else { 0 };
            out.redo[w].push((at as u32, page_id));
        }
    }
}

/// Analyses the records at `positions` (validated, in LSN order) of `wal`. `covered` is the
/// bitmap of pages already touched by redo records (bit `p & 7` of byte `p >> 3`); pages outside
/// it are never marked (the record is refused first). Stops at the first redo record redo could
/// not apply (`bad`); what came before it is reported.
pub fn analyse(wal: &[u8], positions: &[u32], p: AnalysisParams, covered: &mut [u8]) -> AnalysisOut {
    let mut a = Analyser::new(p);
    for (i, &at) in positions.iter().enumerate() {
        let at = at as usize;
        if at + 64 > wal.len() {
            // Not a record the scan validated; refuse it as check_records would.
            a.out.bad = Some(BadRecord { index: i, problem: crate::redo::RECORD_OUTSIDE_WAL });
            break;
        }
        a.record(wal, at, i, covered);
        if a.out.bad.is_some() {
            break;
        }
    }
    a.out
}

/// Validation and analysis in one pass over the log: `wal_scan::scan_records` (same arguments,
/// same stop, same positions written and count returned) analysing each record as it validates
/// it, as `analyse` would over the positions it wrote. At a redo record redo could not apply the
/// analysis stops (`bad`, its index in `positions`) but validation goes on: where the valid log
/// ends, and whether what follows is a torn tail or damage, is still decided first by the caller
/// (plugins/pagestore/walScan.ts), as when analysis ran after the scan.
#[allow(clippy::too_many_arguments)]
pub fn scan_analyse(wal: &[u8], start: usize, end: usize, start_lsn: u64, positions: &mut [u32], p: AnalysisParams, covered: &mut [u8], kernel: Kernel) -> (usize, AnalysisOut) {
    let mut a = Analyser::new(p);
    let n = scan_records_with(wal, start, end, start_lsn, positions, kernel, |at, i| {
        if a.out.bad.is_none() {
            a.record(wal, at, i, covered);
        }
    });
    (n, a.out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redo::{RECORD_BAD_RANGE, RECORD_PAGE_ID};
    use crate::xxh3::xxh3_64;

    const PAGE: usize = 4096;

    /// Appends a record; returns its position. `body` bytes of body (an update's two images of
    /// `len` bytes when `len` > 0).
    fn push(log: &mut Vec<u8>, kind: u8, tx: u64, page: u32, offset: u32, len: u32, body: usize) -> u32 {
        let at = log.len();
        let total = ((56 + body + 7) & !7) + 8;
        let mut rec = vec![0u8; total];
        rec[0..4].copy_from_slice(&(total as u32).to_le_bytes());
        rec[4] = kind;
        rec[8..16].copy_from_slice(&(at as u64).to_le_bytes());
        rec[16..24].copy_from_slice(&tx.to_le_bytes());
        rec[32..36].copy_from_slice(&page.to_le_bytes());
        rec[36..40].copy_from_slice(&offset.to_le_bytes());
        rec[40..44].copy_from_slice(&len.to_le_bytes());
        let sum = xxh3_64(&rec[..total - 8]);
        rec[total - 8..].copy_from_slice(&sum.to_le_bytes());
        log.extend_from_slice(&rec);
        at as u32
    }

    fn params(workers: usize) -> AnalysisParams {
        AnalysisParams { redo_lsn: 0, page_size: PAGE, page_count: 1000, workers, block_pages: 64 }
    }

    #[test]
    fn builds_the_transaction_table_from_each_transactions_last_record() {
        let mut log = vec![0u8; 64];
        let mut pos = vec![];
        pos.push(push(&mut log, 1, 7, 3, 32, 8, 16)); // tx 7 update
        pos.push(push(&mut log, 1, 9, 4, 40, 8, 16)); // tx 9 update
        pos.push(push(&mut log, 5, 0, 0, 0, 2, 2)); // checkpoint: skipped
        pos.push(push(&mut log, 2, 7, 0, 0, 0, 8)); // tx 7 commit with an 8-byte body
        pos.push(push(&mut log, 2, 11, 0, 0, 0, 0)); // tx 11 commit, no body
        pos.push(push(&mut log, 4, 9, 4, 40, 8, 8)); // tx 9 CLR
        pos.push(push(&mut log, 3, 9, 0, 0, 0, 0)); // tx 9 abort
        pos.push(push(&mut log, 1, 9, 5, 40, 8, 16)); // tx 9 again after its abort: open
        let mut covered = vec![0u8; 125];
        let out = analyse(&log, &pos, params(0), &mut covered);
        assert_eq!(out.bad, None);
        let lsn = |k: usize| u64::from(pos[k]);
        assert_eq!(
            out.txs,
            vec![
                TxEntry { tx_id: 7, first_lsn: lsn(0), last_lsn: lsn(3), state: TX_COMMITTED },
                TxEntry { tx_id: 9, first_lsn: lsn(1), last_lsn: lsn(7), state: TX_OPEN },
                TxEntry { tx_id: 11, first_lsn: lsn(4), last_lsn: lsn(4), state: TX_COMMITTED },
            ]
        );
        assert_eq!(out.max_tx_id, 11);
        assert_eq!(out.by_type, [0, 3, 2, 1, 1, 1]);
        assert_eq!(out.redo, vec![vec![(pos[0], 3), (pos[1], 4), (pos[5], 4), (pos[7], 5)]]);
        assert_eq!(out.dirty, vec![(3, lsn(0)), (4, lsn(1)), (5, lsn(7))]);
        // A page already covered is not dirty again.
        let again = analyse(&log, &pos, params(0), &mut covered);
        assert!(again.dirty.is_empty());
    }

    #[test]
    fn keeps_records_before_the_redo_lsn_out_of_redo_and_deals_blocks_to_workers() {
        let mut log = vec![0u8; 64];
        let pos: Vec<u32> = (0..10).map(|k| push(&mut log, 1, 1 + k as u64, 1 + 64 * k, 32, 8, 16)).collect();
        let mut covered = vec![0u8; 125];
        let p = AnalysisParams { redo_lsn: u64::from(pos[2]), ..params(3) };
        let out = analyse(&log, &pos, p, &mut covered);
        assert_eq!(out.txs.len(), 10);
        for (w, group) in out.redo.iter().enumerate() {
            for &(at, page) in group {
                assert_eq!((page / 64) as usize % 3, w);
                assert!(at >= pos[2]);
            }
        }
        assert_eq!(out.redo.iter().map(Vec::len).sum::<usize>(), 8);
        assert_eq!(out.redo[0].iter().map(|r| r.0).collect::<Vec<_>>(), vec![pos[3], pos[6], pos[9]]);
    }

    /// Rewrites the record at `at` with `f` applied to its bytes, checksum refreshed.
    fn reseal(log: &mut [u8], at: usize, f: impl FnOnce(&mut [u8])) {
        let total = r32(log, at) as usize;
        f(&mut log[at..at + total]);
        let sum = xxh3_64(&log[at..at + total - 8]);
        log[at + total - 8..at + total].copy_from_slice(&sum.to_le_bytes());
    }

    #[test]
    fn scan_analyse_matches_the_scan_then_the_analysis() {
        let mut log = vec![0u8; 64];
        let mut pos = vec![];
        for k in 0..400u32 {
            let tx = u64::from(1 + k % 13);
            let kind = match k % 11 {
                3 => 2,
                7 => 3,
                9 => 4,
                10 => 5,
                _ => 1,
            };
            let page = (k * 37) % 900;
            pos.push(push(&mut log, kind, tx, page, 32 + (k % 64), 8 + k % 40, 96 + (k as usize * 13) % 200));
        }
        let scan_then_analyse = |log: &[u8], start: usize, end: usize, p: AnalysisParams, cap: usize| {
            let mut positions = vec![0u32; cap];
            let n = crate::wal_scan::scan_records(log, start, end, start as u64, &mut positions, Kernel::best());
            let mut covered = vec![0u8; 125];
            let out = analyse(log, &positions[..n], p, &mut covered);
            (n, positions, out, covered)
        };
        let damaged_bad_record = {
            let mut l = log.clone();
            reseal(&mut l, pos[155] as usize, |r| r[32..36].copy_from_slice(&5000u32.to_le_bytes()));
            l
        };
        let torn = {
            let mut l = damaged_bad_record.clone();
            l[pos[300] as usize + 70] ^= 1;
            l
        };
        for kernel in Kernel::available() {
            for (log, label) in [(&log, "clean"), (&damaged_bad_record, "page past the store"), (&torn, "checksum")] {
                for workers in [0, 1, 3] {
                    for (start, end, cap) in [(64, log.len(), 500), (pos[10] as usize, log.len(), 500), (64, pos[200] as usize + 40, 500), (64, log.len(), 77)] {
                        let p = AnalysisParams { redo_lsn: u64::from(pos[20]), ..params(workers) };
                        let (n, want_pos, want, want_cov) = scan_then_analyse(log, start, end, p, cap);
                        let mut positions = vec![0u32; cap];
                        let mut covered = vec![0u8; 125];
                        let (m, got) = scan_analyse(log, start, end, start as u64, &mut positions, p, &mut covered, kernel);
                        let what = format!("{label}, workers {workers}, start {start}, end {end}, cap {cap}");
                        assert_eq!(m, n, "{what}");
                        assert_eq!(positions[..m], want_pos[..n], "{what}");
                        assert_eq!(got.txs, want.txs, "{what}");
                        assert_eq!(got.redo, want.redo, "{what}");
                        assert_eq!(got.dirty, want.dirty, "{what}");
                        assert_eq!(got.by_type, want.by_type, "{what}");
                        assert_eq!(got.max_tx_id, want.max_tx_id, "{what}");
                        assert_eq!(got.bad, want.bad, "{what}");
                        assert_eq!(covered, want_cov, "{what}");
                    }
                }
            }
        }
        // The bad record stops the analysis, not the validation: the scan goes on to the damage.
        let mut positions = vec![0u32; 500];
        let mut covered = vec![0u8; 125];
        let p = AnalysisParams { redo_lsn: u64::from(pos[20]), ..params(0) };
        let (n, out) = scan_analyse(&torn, 64, torn.len(), 64, &mut positions, p, &mut covered, Kernel::best());
        assert_eq!(n, 300);
        assert_eq!(out.bad, Some(BadRecord { index: 155, problem: RECORD_PAGE_ID }));
    }

    #[test]
    fn stops_at_the_first_record_redo_could_not_apply() {
        let mut log = vec![0u8; 64];
        let mut pos = vec![];
        pos.push(push(&mut log, 1, 1, 3, 32, 8, 16));
        pos.push(push(&mut log, 1, 1, 3, 16, 8, 16)); // range inside the page header
        pos.push(push(&mut log, 1, 1, 2000, 32, 8, 16)); // page past the store
        let mut covered = vec![0u8; 125];
        let out = analyse(&log, &pos, params(0), &mut covered);
        assert_eq!(out.bad, Some(BadRecord { index: 1, problem: RECORD_BAD_RANGE }));
        assert_eq!(out.redo[0].len(), 1);
        let out = analyse(&log, &[pos[0], pos[2]], params(0), &mut covered);
        assert_eq!(out.bad, Some(BadRecord { index: 1, problem: RECORD_PAGE_ID }));
        let out = analyse(&log, &[pos[0], pos[0].wrapping_add(1 << 30)], params(0), &mut covered);
        assert_eq!(out.bad.map(|b| b.index), Some(1));
    }
}

/// The Node-API bindings (left out of `cargo test` builds, like the rest of the glue).
#[cfg(not(test))]
pub(crate) mod binding {
    use super::{analyse, scan_analyse, AnalysisOut, AnalysisParams};
    use crate::js::{args, bytes_arg, float64_arg, guard, int_in_range_arg, invalid_value, number, uint32_arg, JsResult};
    use crate::napi_sys::{napi_callback_info, napi_env, napi_value};
    use crate::xxh3::Kernel;

    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    /// Summary slots before the per-worker redo counts (native/index.d.ts, `walAnalyze`).
    const SUMMARY_FIXED: usize = 10;
    /// Workers a chunk may be dealt to (the streaming redo's limit is lower).
    const MAX_WORKERS: f64 = 256.0;

    /// `params` = [redoLsn, pageSize, pageCount, workers, blockPages], checked.
    unsafe fn params_arg(name: &str, ptr: *const f64, len: usize) -> JsResult<AnalysisParams> {
        if len != 5 {
            return Err(invalid_value(format!("{name}: 'params' must hold 5 numbers [redoLsn, pageSize, pageCount, workers, blockPages], got {len}")));
        }
        let par = std::slice::from_raw_parts(ptr, 5);
        let int = |i: usize, what: &str, max: f64| -> JsResult<u64> {
            let v = par[i];
            if (0.0..=max).contains(&v) && v.fract() == 0.0 {
                Ok(v as u64)
            } else {
                Err(invalid_value(format!("{name}: params[{i}] ({what}) must be an integer from 0 to {max}, got {v}")))
            }
        };
        Ok(AnalysisParams {
            redo_lsn: int(0, "redoLsn", MAX_SAFE_INTEGER)?,
            page_size: int(1, "pageSize", 65536.0)? as usize,
            page_count: int(2, "pageCount", u32::MAX as f64 + 1.0)?,
            workers: int(3, "workers", MAX_WORKERS)? as usize,
            block_pages: int(4, "blockPages", u32::MAX as f64)? as u32,
        })
    }

    /// Refuses outputs too short for `count` records, and any of `spans` from index `written` on
    /// (the ones written) sharing memory with another (Rust may not alias a &mut).
    fn check_outputs(name: &str, count: usize, groups: usize, lens: [usize; 4], spans: &[(&str, usize, usize)], written: usize) -> JsResult<()> {
        let [tx_len, redo_len, dirty_len, sum_len] = lens;
        if tx_len < 4 * count || dirty_len < 2 * count || redo_len < 2 * (count + groups) || sum_len < SUMMARY_FIXED + groups {
            return Err(invalid_value(format!(
                "{name}: outputs too short for {count} records and {groups} group(s): txs needs {}, redo {}, dirty {}, summary {}",
                4 * count,
                2 * (count + groups),
                2 * count,
                SUMMARY_FIXED + groups
            )));
        }
        for (i, a) in spans.iter().enumerate().skip(written) {
            for b in spans.iter().take(i) {
                if a.2 > 0 && b.2 > 0 && a.1 < b.1 + b.2 && b.1 < a.1 + a.2 {
                    return Err(invalid_value(format!("{name}: argument '{}' must not share memory with '{}'", a.0, b.0)));
                }
            }
        }
        Ok(())
    }

    /// Writes a chunk's analysis into the caller's arrays (layout: native/index.d.ts, `walAnalyze`);
    /// `first` is added to the bad record's index. Returns how many redo records it reported.
    ///
    /// # Safety
    /// The pointers are live, disjoint typed-array memory of the given lengths, checked by
    /// `check_outputs` for `out`'s records.
    unsafe fn write_out(out: &AnalysisOut, first: usize, txs: (*mut f64, usize), redo: (*mut u32, usize), dirty: (*mut f64, usize), summary: (*mut f64, usize)) -> usize {
        let txs: &mut [f64] = if txs.1 == 0 { &mut [] } else { std::slice::from_raw_parts_mut(txs.0, txs.1) };
        for (k, t) in out.txs.iter().enumerate() {
            txs[4 * k] = t.tx_id as f64;
            txs[4 * k + 1] = t.first_lsn as f64;
            txs[4 * k + 2] = t.last_lsn as f64;
            txs[4 * k + 3] = f64::from(t.state);
        }
        let redo: &mut [u32] = std::slice::from_raw_parts_mut(redo.0, redo.1);
        let summary: &mut [f64] = std::slice::from_raw_parts_mut(summary.0, summary.1);
        let mut e = 0usize;
        let mut total = 0usize;
        for (w, group) in out.redo.iter().enumerate() {
            for &(at, page) in group {
                redo[2 * e] = at;
                redo[2 * e + 1] = page;
                e += 1;
            }
            e += 1; // the caller's segment-end marker
            summary[SUMMARY_FIXED + w] = group.len() as f64;
            total += group.len();
        }
        let dirty: &mut [f64] = if dirty.1 == 0 { &mut [] } else { std::slice::from_raw_parts_mut(dirty.0, dirty.1) };
        for (k, &(page, lsn)) in out.dirty.iter().enumerate() {
            dirty[2 * k] = f64::from(page);
            dirty[2 * k + 1] = lsn as f64;
        }
        summary[0] = out.txs.len() as f64;
        summary[1] = out.dirty.len() as f64;
        summary[2] = out.max_tx_id as f64;
        summary[3] = out.bad.map_or(-1.0, |b| (first + b.index) as f64);
        summary[4] = out.bad.map_or(0.0, |b| f64::from(b.problem));
        for k in 1..=5 {
            summary[4 + k] = out.by_type[k] as f64;
        }
        total
    }

    /// `walAnalyze(wal, positions, count, params, covered, txs, redo, dirty, summary): number`
    pub(crate) unsafe extern "C" fn wal_analyze_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "walAnalyze";
        guard(env, NAME, || {
            let [wal, positions, count, params, covered, txs, redo, dirty, summary] =
                args::<9>(env, info, NAME, "(wal, positions, count, params, covered, txs, redo, dirty, summary)")?;
            let (wal_ptr, wal_len) = bytes_arg(env, wal, NAME, "wal")?;
            let (pos_ptr, pos_len) = uint32_arg(env, positions, NAME, "positions")?;
            let count = int_in_range_arg(env, count, NAME, "count", MAX_SAFE_INTEGER)? as usize;
            let (par_ptr, par_len) = float64_arg(env, params, NAME, "params")?;
            let (cov_ptr, cov_len) = bytes_arg(env, covered, NAME, "covered")?;
            let (tx_ptr, tx_len) = float64_arg(env, txs, NAME, "txs")?;
            let (redo_ptr, redo_len) = uint32_arg(env, redo, NAME, "redo")?;
            let (dirty_ptr, dirty_len) = float64_arg(env, dirty, NAME, "dirty")?;
            let (sum_ptr, sum_len) = float64_arg(env, summary, NAME, "summary")?;
            if count > pos_len {
                return Err(invalid_value(format!("{NAME}: count ({count}) passes the {pos_len} elements of 'positions'")));
            }
            let p = params_arg(NAME, par_ptr, par_len)?;
            let spans = [
                ("wal", wal_ptr as usize, wal_len),
                ("positions", pos_ptr as usize, pos_len * 4),
                ("params", par_ptr as usize, par_len * 8),
                ("covered", cov_ptr as usize, cov_len),
                ("txs", tx_ptr as usize, tx_len * 8),
                ("redo", redo_ptr as usize, redo_len * 4),
                ("dirty", dirty_ptr as usize, dirty_len * 8),
                ("summary", sum_ptr as usize, sum_len * 8),
            ];
            check_outputs(NAME, count, p.workers.max(1), [tx_len, redo_len, dirty_len, sum_len], &spans, 3)?;
            // SAFETY: live typed-array memory for the call, pairwise disjoint where written (checked
            // above), aligned for their element types; empty views become empty slices.
            let wal: &[u8] = if wal_len == 0 { &[] } else { std::slice::from_raw_parts(wal_ptr, wal_len) };
            let positions: &[u32] = if count == 0 { &[] } else { std::slice::from_raw_parts(pos_ptr, count) };
            let covered: &mut [u8] = if cov_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(cov_ptr as *mut u8, cov_len) };
            let out = analyse(wal, positions, p, covered);
            let total = write_out(&out, 0, (tx_ptr, tx_len), (redo_ptr, redo_len), (dirty_ptr, dirty_len), (sum_ptr, sum_len));
            number(env, total as f64)
        })
    }

    /// `walScanAnalyze(buf, start, end, startLsn, positions, first, params, covered, txs, redo, dirty, summary): number`
    pub(crate) unsafe extern "C" fn wal_scan_analyze_js(env: napi_env, info: napi_callback_info) -> napi_value {
        const NAME: &str = "walScanAnalyze";
        guard(env, NAME, || {
            let [buf, start, end, start_lsn, positions, first, params, covered, txs, redo, dirty, summary] =
                args::<12>(env, info, NAME, "(buf, start, end, startLsn, positions, first, params, covered, txs, redo, dirty, summary)")?;
            let (buf_ptr, buf_len) = bytes_arg(env, buf, NAME, "buf")?;
            let start = int_in_range_arg(env, start, NAME, "start", MAX_SAFE_INTEGER)? as usize;
            let end = int_in_range_arg(env, end, NAME, "end", MAX_SAFE_INTEGER)? as usize;
            let start_lsn = int_in_range_arg(env, start_lsn, NAME, "startLsn", MAX_SAFE_INTEGER)?;
            let (pos_ptr, pos_len) = uint32_arg(env, positions, NAME, "positions")?;
            let first = int_in_range_arg(env, first, NAME, "first", MAX_SAFE_INTEGER)? as usize;
            let (par_ptr, par_len) = float64_arg(env, params, NAME, "params")?;
            let (cov_ptr, cov_len) = bytes_arg(env, covered, NAME, "covered")?;
            let (tx_ptr, tx_len) = float64_arg(env, txs, NAME, "txs")?;
            let (redo_ptr, redo_len) = uint32_arg(env, redo, NAME, "redo")?;
            let (dirty_ptr, dirty_len) = float64_arg(env, dirty, NAME, "dirty")?;
            let (sum_ptr, sum_len) = float64_arg(env, summary, NAME, "summary")?;
            if start > end || end > buf_len {
                return Err(invalid_value(format!("{NAME}: start ({start}) and end ({end}) must satisfy start <= end <= buf.byteLength ({buf_len})")));
            }
            if first > pos_len {
                return Err(invalid_value(format!("{NAME}: first ({first}) passes the {pos_len} elements of 'positions'")));
            }
            let p = params_arg(NAME, par_ptr, par_len)?;
            // Sized for as many records as `positions` has room for: the outputs are only known
            // once the records are, and the scan must not stop for them.
            let room = pos_len - first;
            let spans = [
                ("buf", buf_ptr as usize, buf_len),
                ("params", par_ptr as usize, par_len * 8),
                ("positions", pos_ptr as usize, pos_len * 4),
                ("covered", cov_ptr as usize, cov_len),
                ("txs", tx_ptr as usize, tx_len * 8),
                ("redo", redo_ptr as usize, redo_len * 4),
                ("dirty", dirty_ptr as usize, dirty_len * 8),
                ("summary", sum_ptr as usize, sum_len * 8),
            ];
            check_outputs(NAME, room, p.workers.max(1), [tx_len, redo_len, dirty_len, sum_len], &spans, 2)?;
            // SAFETY: live typed-array memory for the call, pairwise disjoint where written (checked
            // above), aligned for their element types; empty views become empty slices.
            let bytes: &[u8] = if buf_len == 0 { &[] } else { std::slice::from_raw_parts(buf_ptr, buf_len) };
            let positions: &mut [u32] = if pos_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(pos_ptr, pos_len) };
            let covered: &mut [u8] = if cov_len == 0 { &mut [] } else { std::slice::from_raw_parts_mut(cov_ptr as *mut u8, cov_len) };
            let (n, out) = scan_analyse(bytes, start, end, start_lsn, &mut positions[first..], p, covered, Kernel::best());
            write_out(&out, first, (tx_ptr, tx_len), (redo_ptr, redo_len), (dirty_ptr, dirty_len), (sum_ptr, sum_len));
            number(env, n as f64)
        })
    }
}

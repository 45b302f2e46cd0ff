//! Tests of the redo kernels (redo.rs).

use super::*;
use crate::verify_pages::{FORMAT_VERSION, PAGE_MAGIC};
use crate::xxh3::xxh3_64;

const PAGE: usize = 4096;

/// Deterministic filler (a 64-bit LCG, top byte of each state).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 20) as u8).collect()
    }
}

fn seal(page: &mut [u8]) {
    let sum = xxh3_64(&page[K_CHECKSUMMED..]);
    page[..8].copy_from_slice(&sum.to_le_bytes());
}

fn make_page(id: u32, lsn: u64, rng: &mut Lcg) -> Vec<u8> {
    let mut p = rng.bytes(PAGE);
    p[8..12].copy_from_slice(&PAGE_MAGIC.to_le_bytes());
    p[12..14].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    p[14..16].fill(0);
    p[16..20].copy_from_slice(&id.to_le_bytes());
    p[20..24].fill(0);
    p[24..32].copy_from_slice(&lsn.to_le_bytes());
    seal(&mut p);
    p
}

/// A log under construction: records appended at their own LSN (= position), as the store does.
struct Wal {
    buf: Vec<u8>,
}

struct Rec<'a> {
    kind: u8,
    page_id: u32,
    offset: u32,
    before: &'a [u8],
    after: &'a [u8],
    image: Option<&'a [u8]>,
}

impl Wal {
    fn new() -> Wal {
        Wal { buf: vec![0u8; 64] }
    }
    fn push(&mut self, r: &Rec) -> u32 {
        let at = self.buf.len();
        let body = r.before.len() + r.after.len() + r.image.map_or(0, |i| i.len());
        let total = ((RECORD_HEADER_SIZE + body + 7) & !7) + 8;
        let mut rec = vec![0u8; total];
        rec[0..4].copy_from_slice(&(total as u32).to_le_bytes());
        rec[4] = r.kind;
        rec[5] = if r.image.is_some() { FLAG_FULL_PAGE } else { 0 };
        rec[8..16].copy_from_slice(&(at as u64).to_le_bytes());
        rec[32..36].copy_from_slice(&r.page_id.to_le_bytes());
        rec[36..40].copy_from_slice(&r.offset.to_le_bytes());
        rec[40..44].copy_from_slice(&(r.after.len() as u32).to_le_bytes());
        let mut p = RECORD_HEADER_SIZE;
        for part in [r.before, r.after, r.image.unwrap_or(&[])] {
            rec[p..p + part.len()].copy_from_slice(part);
            p += part.len();
        }
        let sum = xxh3_64(&rec[..total - 8]);
        rec[total - 8..].copy_from_slice(&sum.to_le_bytes());
        self.buf.extend_from_slice(&rec);
        at as u32
    }
}

/// The reference: the old redoApply.ts loop over one page's records, written plainly.
fn reference(wal: &[u8], recs: &[u32], page_id: u32, page: &mut [u8]) -> (u32, u64, u64) {
    let fault = page_fault(page, page_id, Kernel::Scalar);
    let first_image = wal[recs[0] as usize + 5] & 1 != 0;
    if fault != 0 && !first_image {
        return (1 + fault, 0, 0);
    }
    let mut lsn: i128 = if fault != 0 { -1 } else { r64(page, 24) as i128 };
    let (mut applied, mut skipped, mut changed) = (0, 0, false);
    for &at in recs {
        let at = at as usize;
        let rec_lsn = r64(wal, at + 8);
        if (rec_lsn as i128) <= lsn {
            skipped += 1;
            continue;
        }
        let len = r32(wal, at + 40) as usize;
        let update = wal[at + 4] == TYPE_UPDATE;
        if wal[at + 5] & 1 != 0 {
            let img = at + 56 + if update { 2 * len } else { len };
            page.copy_from_slice(&wal[img..img + PAGE]);
        } else {
            let off = r32(wal, at + 36) as usize;
            let after = at + 56 + if update { len } else { 0 };
            page[off..off + len].copy_from_slice(&wal[after..after + len]);
        }
        page[24..32].copy_from_slice(&rec_lsn.to_le_bytes());
        lsn = rec_lsn as i128;
        applied += 1;
        changed = true;
    }
    if changed {
        seal(page);
    }
    (if changed { STATUS_CHANGED } else { STATUS_UNCHANGED }, applied, skipped)
}

/// A random store of `n` pages (ids 1..=n) and a random log over them, grouped: `ids[slot]`
/// is the page of each slot, `per_slot` its records, flattened into `ordered` and `starts`.
#[derive(Clone)]
struct Case {
    wal: Vec<u8>,
    ordered: Vec<u32>,
    starts: Vec<u32>,
    ids: Vec<u32>,
    per_slot: Vec<Vec<u32>>,
    slab: Vec<u8>,
}

fn random_case(seed: u64, n: usize, records: usize) -> Case {
    let mut rng = Lcg(seed);
    let mut wal = Wal::new();
    // Slots in a shuffled page order: the kernel must not assume ascending page ids.
    let mut ids: Vec<u32> = (1..=n as u32).collect();
    for i in (1..n).rev() {
        ids.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut slab = Vec::new();
    for &id in &ids {
        slab.extend(make_page(id, 0, &mut rng));
    }
    let mut per_slot: Vec<Vec<u32>> = vec![Vec::new(); n];
    for _ in 0..records {
        let s = rng.below(n as u64) as usize;
        let len = rng.below(300) as usize;
        let offset = PAGE_HEADER_SIZE as u32 + rng.below((PAGE - PAGE_HEADER_SIZE - len) as u64 + 1) as u32;
        let before = rng.bytes(len);
        let after = rng.bytes(len);
        // Most pages' first record carries an image, as the first change after a checkpoint does.
        let image_bytes;
        let image = if per_slot[s].is_empty() && rng.below(4) != 0 {
            image_bytes = make_page(ids[s], 0, &mut rng);
            Some(&image_bytes[..])
        } else {
            None
        };
        let kind = if rng.below(5) == 0 { TYPE_CLR } else { TYPE_UPDATE };
        let at = wal.push(&Rec { kind, page_id: ids[s], offset, before: if kind == TYPE_UPDATE { &before } else { &[] }, after: &after, image });
        per_slot[s].push(at);
    }
    // Some pages already hold the changes up to a middle record: those up to it are skipped.
    for (s, recs) in per_slot.iter().enumerate() {
        if recs.len() > 2 && rng.below(3) == 0 {
            let mid = r64(&wal.buf, recs[recs.len() / 2] as usize + 8);
            let p = &mut slab[s * PAGE..(s + 1) * PAGE];
            p[24..32].copy_from_slice(&mid.to_le_bytes());
            seal(p);
        }
    }
    let mut starts = vec![0u32];
    let mut ordered = Vec::new();
    for recs in &per_slot {
        ordered.extend_from_slice(recs);
        starts.push(ordered.len() as u32);
    }
    Case { wal: wal.buf, ordered, starts, ids, per_slot, slab }
}

fn run(c: &mut Case, first: usize, end: usize, kernel: Kernel) -> (Vec<u32>, ApplyCounts) {
    let mut status = vec![99u32; end - first];
    let slab = &mut c.slab[first * PAGE..end * PAGE];
    let counts = apply_pages(&c.wal, &c.ordered, &c.starts, &c.ids, first, end, slab, PAGE, &mut status, kernel).unwrap();
    (status, counts)
}

fn run_reference(c: &mut Case) -> (Vec<u32>, u64, u64) {
    let (mut applied, mut skipped) = (0, 0);
    let mut status = Vec::new();
    for s in 0..c.ids.len() {
        if c.per_slot[s].is_empty() {
            status.push(STATUS_UNCHANGED);
            continue;
        }
        let (st, a, sk) = reference(&c.wal, &c.per_slot[s], c.ids[s], &mut c.slab[s * PAGE..(s + 1) * PAGE]);
        status.push(st);
        applied += a;
        skipped += sk;
    }
    (status, applied, skipped)
}

#[test]
fn agrees_with_the_reference_on_random_logs_in_any_batching() {
    for seed in 1..6u64 {
        for kernel in Kernel::available() {
            let mut want = random_case(seed, 40, 600);
            // Tear a few pages: those whose first record has an image are rebuilt from it.
            for s in [3usize, 11, 17, 29] {
                want.slab[s * PAGE + 1000] ^= 0x20;
            }
            let mut got = want.clone();
            let (ref_status, applied, skipped) = run_reference(&mut want);
            let n = got.ids.len();
            let mut status = Vec::new();
            let mut counts = ApplyCounts::default();
            // Batches of 7 pages, each after an empty batch.
            let mut s = 0;
            while s < n {
                let e = (s + 7).min(n);
                assert_eq!(run(&mut got, s, s, kernel), (vec![], ApplyCounts::default()));
                let (st, c) = run(&mut got, s, e, kernel);
                status.extend(st);
                counts.applied += c.applied;
                counts.skipped += c.skipped;
                s = e;
            }
            assert_eq!(status, ref_status, "seed {seed} {kernel:?}");
            assert_eq!(counts, ApplyCounts { applied, skipped }, "seed {seed} {kernel:?}");
            assert!(got.slab == want.slab, "seed {seed} {kernel:?}: pages differ");
            assert!(skipped > 0 && applied > 0);
            for s in [3usize, 11, 17, 29] {
                let has_image = got.wal[got.per_slot[s][0] as usize + K_REC_FLAGS] & FLAG_FULL_PAGE != 0;
                assert_eq!(status[s], if has_image { STATUS_CHANGED } else { STATUS_CORRUPT_CHECKSUM }, "seed {seed} slot {s}");
            }
            for (k, &st) in status.iter().enumerate() {
                if st == STATUS_CHANGED {
                    assert_eq!(page_fault(&got.slab[k * PAGE..(k + 1) * PAGE], got.ids[k], kernel), REASON_OK);
                }
            }
        }
    }
}

#[test]
fn torn_page_rebuilt_from_its_image_and_one_without_reported() {
    let mut rng = Lcg(7);
    let mut wal = Wal::new();
    let image = make_page(5, 0, &mut rng);
    let a = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 5, offset: 100, before: &[0; 4], after: &[1, 2, 3, 4], image: Some(&image) });
    let c = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 6, offset: 300, before: &[0], after: &[7], image: None });
    let b = wal.push(&Rec { kind: TYPE_CLR, page_id: 5, offset: 200, before: &[], after: &[9, 9], image: None });
    let mut slab = make_page(5, 10_000_000, &mut rng); // claims a newer LSN, but is torn
    slab[4000] ^= 1;
    let mut p6 = make_page(6, 0, &mut rng);
    p6[9] ^= 0x40; // magic damaged: reported as checksum, as verifyPage does
    slab.extend(&p6);
    let mut status = [0u32; 2];
    let counts = apply_pages(&wal.buf, &[a, b, c], &[0, 2, 3], &[5, 6], 0, 2, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
    assert_eq!(status, [STATUS_CHANGED, STATUS_CORRUPT_CHECKSUM]);
    assert_eq!(counts, ApplyCounts { applied: 2, skipped: 0 });
    let mut want = image.clone();
    want[200..202].copy_from_slice(&[9, 9]);
    want[24..32].copy_from_slice(&(b as u64).to_le_bytes());
    seal(&mut want);
    assert!(slab[..PAGE] == want[..], "rebuilt from the image, then the CLR");
    assert!(slab[PAGE..] == p6[..], "the corrupt page is left alone");
    // A sound page with a newer LSN than every record: all skipped, unchanged.
    let mut slab = make_page(5, u64::from(b), &mut rng);
    let before = slab.clone();
    let counts = apply_pages(&wal.buf, &[a, b, c], &[0, 2, 3], &[5, 6], 0, 1, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
    assert_eq!((status[0], counts), (STATUS_UNCHANGED, ApplyCounts { applied: 0, skipped: 2 }));
    assert!(slab == before);
}

#[test]
fn header_faults_with_a_valid_checksum_keep_their_reason() {
    let mut rng = Lcg(9);
    let mut wal = Wal::new();
    let recs: Vec<u32> = (1..=3).map(|id| wal.push(&Rec { kind: TYPE_CLR, page_id: id, offset: 40, before: &[], after: &[1], image: None })).collect();
    let mut slab = Vec::new();
    for (id, (at, v)) in [(8usize, 0x1u8), (12, 0x2), (16, 0x3)].into_iter().enumerate() {
        let mut p = make_page(id as u32 + 1, 0, &mut rng);
        p[at] ^= v;
        seal(&mut p);
        slab.extend(p);
    }
    let mut status = [0u32; 3];
    apply_pages(&wal.buf, &recs, &[0, 1, 2, 3], &[1, 2, 3], 0, 3, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
    assert_eq!(status, [STATUS_CORRUPT_MAGIC, STATUS_CORRUPT_VERSION, STATUS_CORRUPT_PAGE_ID]);
}

#[test]
fn malformed_records_are_found_and_never_counted() {
    let mut rng = Lcg(11);
    let mut wal = Wal::new();
    let good = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 1, offset: 64, before: &[0; 8], after: &[5; 8], image: None });
    let at_header = wal.push(&Rec { kind: TYPE_UPDATE, page_id: 1, offset: 31, before: &[0], after: &[5], image: None });
    let past_end = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: (PAGE - 4) as u32, before: &[], after: &[5; 5], image: None });
    let commit = wal.push(&Rec { kind: 2, page_id: 1, offset: 64, before: &[], after: &[], image: None });
    let superblock = wal.push(&Rec { kind: TYPE_CLR, page_id: 0, offset: 64, before: &[], after: &[1], image: None });
    let beyond = wal.push(&Rec { kind: TYPE_CLR, page_id: 50, offset: 64, before: &[], after: &[1], image: None });
    // A range length that promises more body than the record holds.
    let long = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1; 16], image: None });
    wal.buf[long as usize + 40..long as usize + 44].copy_from_slice(&1000u32.to_le_bytes());
    // A full-page flag without room for the image.
    let no_image = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1], image: None });
    wal.buf[no_image as usize + 5] = FLAG_FULL_PAGE;
    // A total length that is not a multiple of 8.
    let odd = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1], image: None });
    wal.buf[odd as usize] -= 1;
    let len = wal.buf.len() as u32;
    let positions = [good, at_header, past_end, commit, superblock, beyond, long, no_image, odd, len - 8, len + 100, u32::MAX];
    let mut ids = [1u32; 12];
    ids[4] = 0;
    ids[5] = 50;
    let mut out = [0u32; 64];
    let bad = check_records(&wal.buf, &positions, &ids, positions.len(), PAGE, 40, &mut out);
    let pairs: Vec<(u32, u32)> = out.chunks_exact(2).take(bad).map(|p| (p[0], p[1])).collect();
    assert_eq!(
        pairs,
        vec![
            (1, RECORD_BAD_RANGE),
            (2, RECORD_BAD_RANGE),
            (3, RECORD_BAD_TYPE),
            (4, RECORD_PAGE_ID),
            (5, RECORD_PAGE_ID),
            (6, RECORD_BAD_LENGTH),
            (7, RECORD_BAD_LENGTH),
            (8, RECORD_BAD_LENGTH),
            (9, RECORD_OUTSIDE_WAL),
            (10, RECORD_OUTSIDE_WAL),
            (11, RECORD_OUTSIDE_WAL)
        ]
    );
    // The page id it was grouped by must match the record's; the page count bounds it.
    assert_eq!(check_records(&wal.buf, &[good], &[2], 1, PAGE, 40, &mut out), 1);
    assert_eq!(check_records(&wal.buf, &[good], &[1], 1, PAGE, 1, &mut out), 1);
    assert_eq!(check_records(&wal.buf, &[good], &[1], 1, PAGE, 2, &mut out), 0);
    // A count past the arrays is cut to them; a short out is counted, not written.
    assert_eq!(check_records(&wal.buf, &[good], &[1], 5, PAGE, 2, &mut out), 0);
    assert_eq!(check_records(&wal.buf, &positions, &ids, positions.len(), PAGE, 40, &mut [0u32; 1]), 11);

    // apply_pages: a page with any malformed record, before or after good ones, is
    // malformed and none of its records counts; the other page of the batch is applied.
    let other = wal.push(&Rec { kind: TYPE_CLR, page_id: 2, offset: 64, before: &[], after: &[3], image: None });
    for bad_at in [at_header, past_end, commit, long, no_image, odd, len + 100, u32::MAX] {
        for order in [[good, bad_at, other], [bad_at, good, other]] {
            let mut slab = make_page(1, 0, &mut rng);
            slab.extend(make_page(2, 0, &mut rng));
            let mut status = [0u32; 2];
            let c = apply_pages(&wal.buf, &order, &[0, 2, 3], &[1, 2], 0, 2, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
            assert_eq!((status, c), ([STATUS_MALFORMED, STATUS_CHANGED], ApplyCounts { applied: 1, skipped: 0 }), "record at {bad_at}");
        }
    }
    // A record in the slot of another page.
    let mut slab = make_page(2, 0, &mut rng);
    let mut status = [0u32; 1];
    apply_pages(&wal.buf, &[good], &[0, 1], &[2], 0, 1, &mut slab, PAGE, &mut status, Kernel::best()).unwrap();
    assert_eq!(status[0], STATUS_MALFORMED);
}

#[test]
fn bad_batches_are_errors_not_panics() {
    let mut rng = Lcg(13);
    let mut wal = Wal::new();
    let a = wal.push(&Rec { kind: TYPE_CLR, page_id: 1, offset: 64, before: &[], after: &[1], image: None });
    let mut slab = make_page(1, 0, &mut rng);
    let mut status = [0u32; 2];
    let k = Kernel::best();
    let w = &wal.buf;
    assert!(apply_pages(w, &[a], &[0, 1], &[1], 1, 0, &mut slab, PAGE, &mut status, k).unwrap_err().contains("after endSlot"));
    assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 2, &mut slab, PAGE, &mut status, k).unwrap_err().contains("passes the 1 page ids"));
    assert!(apply_pages(w, &[a], &[0], &[1], 0, 1, &mut slab, PAGE, &mut status, k).unwrap_err().contains("'starts'"));
    assert!(apply_pages(w, &[a], &[0, 2], &[1], 0, 1, &mut slab, PAGE, &mut status, k).unwrap_err().contains("ascend"));
    assert!(apply_pages(w, &[a, a], &[1, 0], &[1], 0, 1, &mut slab, PAGE, &mut status, k).unwrap_err().contains("ascend"));
    assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 1, &mut slab[..PAGE - 1], PAGE, &mut status, k).unwrap_err().contains("'slab'"));
    assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 1, &mut slab, PAGE, &mut [], k).unwrap_err().contains("'status'"));
    assert!(apply_pages(w, &[a], &[0, 1], &[1], 0, 1, &mut slab, 16, &mut status, k).unwrap_err().contains("pageSize"));
    // A page with no records is left alone; the slab may be longer than the batch; records
    // of slots outside the batch are never read (the one at u32::MAX would fail).
    let mut big = slab.clone();
    big.extend(vec![0u8; PAGE]);
    let before = big.clone();
    let (ordered, starts) = ([a, u32::MAX], [0u32, 0, 1, 2]);
    assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 0, 1, &mut big, PAGE, &mut status, k), Ok(ApplyCounts::default()));
    assert_eq!(status[0], STATUS_UNCHANGED);
    assert!(big == before);
    assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 1, 2, &mut big, PAGE, &mut status, k), Ok(ApplyCounts { applied: 1, skipped: 0 }));
    assert_eq!(status[0], STATUS_CHANGED);
    assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 2, 3, &mut big, PAGE, &mut status, k), Ok(ApplyCounts::default()));
    assert_eq!(status[0], STATUS_MALFORMED);
    // An empty batch.
    assert_eq!(apply_pages(w, &ordered, &starts, &[1, 1, 1], 3, 3, &mut [], PAGE, &mut [], k), Ok(ApplyCounts::default()));
}

//! The Node-API bindings of the redo kernels (redo.rs): argument checks and the JS functions.

use super::{apply_pages_held, check_records};
use crate::js::{args, bytes_arg, guard, int_in_range_arg, invalid_value, number, positive_int_arg, range_error, uint32_arg, JsResult};
use crate::napi_sys::{napi_callback_info, napi_env, napi_value};
use crate::verify_pages::PAGE_HEADER_SIZE;
use crate::xxh3::Kernel;

const MAX_U32: f64 = u32::MAX as f64;
/// Page ids are u32; a page count may be one past the largest.
const MAX_PAGE_COUNT: f64 = u32::MAX as f64 + 1.0;

/// A typed array's memory as a byte range, for the overlap checks.
#[derive(Clone, Copy)]
struct Span {
    start: usize,
    bytes: usize,
}

impl Span {
    fn of<T>(ptr: *const T, len: usize) -> Span {
        Span { start: ptr as usize, bytes: len * std::mem::size_of::<T>() }
    }
    fn overlaps(self, other: Span) -> bool {
        self.bytes > 0 && other.bytes > 0 && self.start < other.start + other.bytes && other.start < self.start + self.bytes
    }
}

/// Refuses an output argument that shares memory with any other argument: the kernel would
/// read what it writes (and Rust may not hold a `&mut` and a `&` on the same bytes).
fn disjoint(name: &str, out: (&str, Span), others: &[(&str, Span)]) -> JsResult<()> {
    for &(arg, span) in others {
        if out.1.overlaps(span) {
            return Err(invalid_value(format!("{name}: argument '{}' must not share memory with '{arg}'", out.0)));
        }
    }
    Ok(())
}

/// SAFETY (for both): a slice over typed-array memory Node keeps alive for the call; a
/// zero-length view may have a null pointer, so it becomes an empty slice without touching it.
unsafe fn slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(ptr, len)
    }
}

unsafe fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> &'a mut [T] {
    if len == 0 {
        &mut []
    } else {
        std::slice::from_raw_parts_mut(ptr, len)
    }
}

fn check_page_size(name: &str, page: usize) -> JsResult<()> {
    if page < PAGE_HEADER_SIZE {
        return Err(range_error(format!("{name}: argument 'pageSize' must be at least {PAGE_HEADER_SIZE} (the page header), got {page}")));
    }
    Ok(())
}

/// `redoCheckRecords(wal, positions, pageIds, count, pageSize, pageCount, out): number`
pub(crate) unsafe extern "C" fn redo_check_records_js(env: napi_env, info: napi_callback_info) -> napi_value {
    const NAME: &str = "redoCheckRecords";
    guard(env, NAME, || {
        let [wal, positions, page_ids, count, page_size, page_count, out] =
            args::<7>(env, info, NAME, "(wal, positions, pageIds, count, pageSize, pageCount, out)")?;
        let (wal_ptr, wal_len) = bytes_arg(env, wal, NAME, "wal")?;
        let (pos_ptr, pos_len) = uint32_arg(env, positions, NAME, "positions")?;
        let (ids_ptr, ids_len) = uint32_arg(env, page_ids, NAME, "pageIds")?;
        let count = int_in_range_arg(env, count, NAME, "count", MAX_U32)? as usize;
        let page = positive_int_arg(env, page_size, NAME, "pageSize")?;
        let page_count = int_in_range_arg(env, page_count, NAME, "pageCount", MAX_PAGE_COUNT)?;
        let (out_ptr, out_len) = uint32_arg(env, out, NAME, "out")?;
        check_page_size(NAME, page)?;
        if count > pos_len || count > ids_len {
            return Err(invalid_value(format!(
                "{NAME}: count ({count}) passes 'positions' ({pos_len} elements) or 'pageIds' ({ids_len} elements)"
            )));
        }
        disjoint(
            NAME,
            ("out", Span::of(out_ptr, out_len)),
            &[("wal", Span::of(wal_ptr, wal_len)), ("positions", Span::of(pos_ptr, pos_len)), ("pageIds", Span::of(ids_ptr, ids_len))],
        )?;
        // SAFETY: live typed-array memory for the call (see `slice`); `out` overlaps none of
        // the others; Uint32Array data is always 4-byte aligned. If another thread writes a
        // SharedArrayBuffer meanwhile, the result is of whatever was read (every index is
        // bounds-checked, so that can never read out of bounds).
        let bad = check_records(
            slice(wal_ptr, wal_len),
            slice(pos_ptr, pos_len),
            slice(ids_ptr, ids_len),
            count,
            page,
            page_count,
            slice_mut(out_ptr, out_len),
        );
        number(env, bad as f64)
    })
}

/// `redoApplyPages(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status): number`
pub(crate) unsafe extern "C" fn redo_apply_pages_js(env: napi_env, info: napi_callback_info) -> napi_value {
    const NAME: &str = "redoApplyPages";
    guard(env, NAME, || {
        let [wal, ordered, starts, pages, first, end, slab, page_size, status] =
            args::<9>(env, info, NAME, "(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status)")?;
        apply_js(env, NAME, [wal, ordered, starts, pages, first, end, slab, page_size, status], None)
    })
}

/// `redoApplyHeld(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status, held): number`
pub(crate) unsafe extern "C" fn redo_apply_held_js(env: napi_env, info: napi_callback_info) -> napi_value {
    const NAME: &str = "redoApplyHeld";
    guard(env, NAME, || {
        let [wal, ordered, starts, pages, first, end, slab, page_size, status, held] =
            args::<10>(env, info, NAME, "(wal, ordered, starts, pages, firstSlot, endSlot, slab, pageSize, status, held)")?;
        apply_js(env, NAME, [wal, ordered, starts, pages, first, end, slab, page_size, status], Some(held))
    })
}

/// The two apply bindings' common body: argument checks, then `apply_pages_held`.
unsafe fn apply_js(env: napi_env, name: &str, a: [napi_value; 9], held: Option<napi_value>) -> JsResult<napi_value> {
    let [wal, ordered, starts, pages, first, end, slab, page_size, status] = a;
    let (wal_ptr, wal_len) = bytes_arg(env, wal, name, "wal")?;
    let (ord_ptr, ord_len) = uint32_arg(env, ordered, name, "ordered")?;
    let (st_ptr, st_len) = uint32_arg(env, starts, name, "starts")?;
    let (pg_ptr, pg_len) = uint32_arg(env, pages, name, "pages")?;
    let first = int_in_range_arg(env, first, name, "firstSlot", MAX_U32)? as usize;
    let end = int_in_range_arg(env, end, name, "endSlot", MAX_U32)? as usize;
    let (slab_ptr, slab_len) = bytes_arg(env, slab, name, "slab")?;
    let page = positive_int_arg(env, page_size, name, "pageSize")?;
    let (out_ptr, out_len) = uint32_arg(env, status, name, "status")?;
    check_page_size(name, page)?;
    let inputs = [
        ("wal", Span::of(wal_ptr, wal_len)),
        ("ordered", Span::of(ord_ptr, ord_len)),
        ("starts", Span::of(st_ptr, st_len)),
        ("pages", Span::of(pg_ptr, pg_len)),
    ];
    let slab_span = Span::of(slab_ptr, slab_len);
    let status_span = Span::of(out_ptr, out_len);
    disjoint(name, ("slab", slab_span), &inputs)?;
    disjoint(name, ("status", status_span), &inputs)?;
    disjoint(name, ("status", status_span), &[("slab", slab_span)])?;
    let held = match held {
        Some(h) => {
            let (h_ptr, h_len) = bytes_arg(env, h, name, "held")?;
            let held_span = Span::of(h_ptr, h_len);
            disjoint(name, ("held", held_span), &inputs)?;
            disjoint(name, ("held", held_span), &[("slab", slab_span), ("status", status_span)])?;
            Some((h_ptr, h_len))
        }
        None => None,
    };
    // SAFETY: as in `redoCheckRecords`; `slab`, `status` and `held` overlap nothing else. The
    // slab's and held's bytes are writable (a Uint8Array is never read-only memory in Node 20).
    let counts = apply_pages_held(
        slice(wal_ptr, wal_len),
        slice(ord_ptr, ord_len),
        slice(st_ptr, st_len),
        slice(pg_ptr, pg_len),
        first,
        end,
        slice_mut(slab_ptr as *mut u8, slab_len),
        page,
        slice_mut(out_ptr, out_len),
        held.map(|(p, n)| slice_mut(p as *mut u8, n)),
        Kernel::best(),
    )
    .map_err(|msg| invalid_value(format!("{name}: {msg}")))?;
    number(env, counts.applied as f64)
}

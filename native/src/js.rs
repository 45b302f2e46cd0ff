//! Small safe-ish helpers over the raw Node-API calls: fetching and checking arguments, making
//! return values, throwing JS errors, and keeping Rust panics from unwinding into Node.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;

use crate::napi_sys::*;

/// Which JS error constructor to throw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    Type,
    Range,
    Plain,
}

/// An error to throw into JS once the callback returns. The `code` is Node's own convention
/// (`ERR_INVALID_ARG_TYPE`, …) because the addon cannot reach core/errors.ts's catalogue.
#[derive(Debug)]
pub(crate) struct JsError {
    pub kind: ErrorKind,
    pub code: &'static CStr,
    pub message: String,
}

pub(crate) type JsResult<T> = Result<T, JsError>;

pub(crate) fn type_error(message: String) -> JsError {
    JsError { kind: ErrorKind::Type, code: c"ERR_INVALID_ARG_TYPE", message }
}

pub(crate) fn range_error(message: String) -> JsError {
    JsError { kind: ErrorKind::Range, code: c"ERR_OUT_OF_RANGE", message }
}

/// A RangeError for an argument whose type is right but whose value does not fit the others.
pub(crate) fn invalid_value(message: String) -> JsError {
    JsError { kind: ErrorKind::Range, code: c"ERR_INVALID_ARG_VALUE", message }
}

fn internal_error(message: String) -> JsError {
    JsError { kind: ErrorKind::Plain, code: c"ERR_INTERNAL_ASSERTION", message }
}

/// Turns a Node-API status into a result. A failing call usually means an exception is already
/// pending, in which case `throw` leaves that one in place.
fn check(status: napi_status, what: &str) -> JsResult<()> {
    if status == NAPI_OK {
        Ok(())
    } else {
        Err(internal_error(format!("recovery-agent-native: Node-API {what} failed with status {status}")))
    }
}

/// Throws `err` into JS unless an exception is already pending (the first one is the cause).
pub(crate) unsafe fn throw(env: napi_env, err: &JsError) {
    let mut pending = false;
    if napi_is_exception_pending(env, &mut pending) == NAPI_OK && pending {
        return;
    }
    // A message with an interior NUL cannot be passed to C; none of ours has one, but do not
    // fail to throw because of it.
    let message = CString::new(err.message.replace('\0', " ")).unwrap_or_default();
    let code: *const c_char = err.code.as_ptr();
    match err.kind {
        ErrorKind::Type => napi_throw_type_error(env, code, message.as_ptr()),
        ErrorKind::Range => napi_throw_range_error(env, code, message.as_ptr()),
        ErrorKind::Plain => napi_throw_error(env, code, message.as_ptr()),
    };
}

/// Runs a callback body. An `Err` becomes a thrown JS error; a Rust panic is caught here and also
/// becomes a thrown JS error, because unwinding into Node's C++ frames is undefined behaviour
/// (and since Rust 1.81 would abort the whole process). Returning NULL with an exception pending
/// is how a Node-API callback throws.
pub(crate) unsafe fn guard(env: napi_env, name: &str, body: impl FnOnce() -> JsResult<napi_value>) -> napi_value {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(err)) => {
            throw(env, &err);
            null_mut()
        }
        Err(_) => {
            throw(env, &internal_error(format!("{name}: internal error in recovery-agent-native (Rust panic); please report it")));
            null_mut()
        }
    }
}

/// Exactly `N` call arguments, or a TypeError naming the expected ones. `napi_get_cb_info`
/// reports the real argument count even when it exceeds the `argv` capacity.
pub(crate) unsafe fn args<const N: usize>(env: napi_env, info: napi_callback_info, name: &str, signature: &str) -> JsResult<[napi_value; N]> {
    let mut argv = [null_mut(); N];
    let mut argc = N;
    check(napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), null_mut(), null_mut()), "napi_get_cb_info")?;
    if argc != N {
        return Err(type_error(format!("{name}: expected {N} argument{} {signature}, got {argc}", if N == 1 { "" } else { "s" })));
    }
    Ok(argv)
}

/// A typed array's element kind, element count and first element (byteOffset already applied).
struct TypedArray {
    kind: napi_typedarray_type,
    len: usize,
    data: *mut u8,
}

unsafe fn typed_array(env: napi_env, value: napi_value) -> JsResult<Option<TypedArray>> {
    let mut is_typed = false;
    check(napi_is_typedarray(env, value, &mut is_typed), "napi_is_typedarray")?;
    if !is_typed {
        return Ok(None);
    }
    let mut kind = 0;
    let mut len = 0usize;
    let mut data = null_mut();
    check(
        napi_get_typedarray_info(env, value, &mut kind, &mut len, &mut data, null_mut(), null_mut()),
        "napi_get_typedarray_info",
    )?;
    // A zero-length (or detached) view may have no backing memory at all.
    if data.is_null() && len != 0 {
        return Err(internal_error("recovery-agent-native: typed array has a length but no data".to_owned()));
    }
    Ok(Some(TypedArray { kind, len, data: data as *mut u8 }))
}

/// What a rejected argument was, for error messages: "undefined", "a number", "Float64Array"…
unsafe fn describe(env: napi_env, value: napi_value) -> String {
    if let Ok(Some(ta)) = typed_array(env, value) {
        let name = match ta.kind {
            0 => "Int8Array",
            1 => "Uint8Array",
            2 => "Uint8ClampedArray",
            3 => "Int16Array",
            4 => "Uint16Array",
            5 => "Int32Array",
            6 => "Uint32Array",
            7 => "Float32Array",
            8 => "Float64Array",
            9 => "BigInt64Array",
            10 => "BigUint64Array",
            _ => "a typed array",
        };
        return format!("a {name}");
    }
    let mut t = -1;
    if napi_typeof(env, value, &mut t) != NAPI_OK {
        return "an unknown value".to_owned();
    }
    match t {
        0 => "undefined",
        1 => "null",
        2 => "a boolean",
        3 => "a number",
        4 => "a string",
        5 => "a symbol",
        6 => "an object",
        7 => "a function",
        8 => "an external",
        9 => "a bigint",
        _ => "an unknown value",
    }
    .to_owned()
}

/// A Uint8Array (Buffer included) argument's bytes as (pointer, length). Views on an ArrayBuffer
/// or a SharedArrayBuffer, at any byteOffset, are accepted.
pub(crate) unsafe fn bytes_arg(env: napi_env, value: napi_value, name: &str, arg: &str) -> JsResult<(*const u8, usize)> {
    match typed_array(env, value)? {
        Some(ta) if ta.kind == NAPI_UINT8_ARRAY => Ok((ta.data as *const u8, ta.len)),
        _ => Err(type_error(format!(
            "{name}: argument '{arg}' must be a Uint8Array or Buffer, got {}",
            describe(env, value)
        ))),
    }
}

/// A BigUint64Array argument as (pointer to the first element, element count).
pub(crate) unsafe fn biguint64_arg(env: napi_env, value: napi_value, name: &str, arg: &str) -> JsResult<(*mut u64, usize)> {
    match typed_array(env, value)? {
        Some(ta) if ta.kind == NAPI_BIGUINT64_ARRAY => Ok((ta.data as *mut u64, ta.len)),
        _ => Err(type_error(format!("{name}: argument '{arg}' must be a BigUint64Array, got {}", describe(env, value)))),
    }
}

/// A positive safe-integer number argument.
pub(crate) unsafe fn positive_int_arg(env: napi_env, value: napi_value, name: &str, arg: &str) -> JsResult<usize> {
    let mut t = -1;
    check(napi_typeof(env, value, &mut t), "napi_typeof")?;
    if t != NAPI_NUMBER {
        return Err(type_error(format!("{name}: argument '{arg}' must be a number, got {}", describe(env, value))));
    }
    let mut v = 0f64;
    check(napi_get_value_double(env, value, &mut v), "napi_get_value_double")?;
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;
    if !((1.0..=MAX_SAFE_INTEGER).contains(&v) && v.fract() == 0.0) {
        // Spelled as JS would print it (Rust writes "inf").
        let shown = if v.is_infinite() { (if v > 0.0 { "Infinity" } else { "-Infinity" }).to_owned() } else { v.to_string() };
        return Err(range_error(format!("{name}: argument '{arg}' must be a positive integer, got {shown}")));
    }
    // Values above usize::MAX (32-bit hosts) cannot describe a real page; saturate and let the
    // length check reject it.
    Ok(if v > usize::MAX as f64 { usize::MAX } else { v as usize })
}

/// A Uint32Array argument as (pointer to the first element, element count).
pub(crate) unsafe fn uint32_arg(env: napi_env, value: napi_value, name: &str, arg: &str) -> JsResult<(*mut u32, usize)> {
    match typed_array(env, value)? {
        Some(ta) if ta.kind == NAPI_UINT32_ARRAY => Ok((ta.data as *mut u32, ta.len)),
        _ => Err(type_error(format!("{name}: argument '{arg}' must be a Uint32Array, got {}", describe(env, value)))),
    }
}

/// A Float64Array argument as (pointer to the first element, element count).
pub(crate) unsafe fn float64_arg(env: napi_env, value: napi_value, name: &str, arg: &str) -> JsResult<(*mut f64, usize)> {
    match typed_array(env, value)? {
        Some(ta) if ta.kind == NAPI_FLOAT64_ARRAY => Ok((ta.data as *mut f64, ta.len)),
        _ => Err(type_error(format!("{name}: argument '{arg}' must be a Float64Array, got {}", describe(env, value)))),
    }
}

/// A number argument that is an integer from 0 to `max` (at most Number.MAX_SAFE_INTEGER).
pub(crate) unsafe fn int_in_range_arg(env: napi_env, value: napi_value, name: &str, arg: &str, max: f64) -> JsResult<u64> {
    let mut t = -1;
    check(napi_typeof(env, value, &mut t), "napi_typeof")?;
    if t != NAPI_NUMBER {
        return Err(type_error(format!("{name}: argument '{arg}' must be a number, got {}", describe(env, value))));
    }
    let mut v = 0f64;
    check(napi_get_value_double(env, value, &mut v), "napi_get_value_double")?;
    if !((0.0..=max).contains(&v) && v.fract() == 0.0) {
        let shown = if v.is_infinite() { (if v > 0.0 { "Infinity" } else { "-Infinity" }).to_owned() } else { v.to_string() };
        return Err(range_error(format!("{name}: argument '{arg}' must be an integer from 0 to {max}, got {shown}")));
    }
    Ok(v as u64)
}

pub(crate) unsafe fn bigint_u64(env: napi_env, v: u64) -> JsResult<napi_value> {
    let mut out = null_mut();
    check(napi_create_bigint_uint64(env, v, &mut out), "napi_create_bigint_uint64")?;
    Ok(out)
}

pub(crate) unsafe fn number(env: napi_env, v: f64) -> JsResult<napi_value> {
    let mut out = null_mut();
    check(napi_create_double(env, v, &mut out), "napi_create_double")?;
    Ok(out)
}

/// Adds `exports[name] = function`.
pub(crate) unsafe fn export_function(env: napi_env, exports: napi_value, name: &CStr, cb: napi_callback) -> JsResult<()> {
    let mut f = null_mut();
    check(napi_create_function(env, name.as_ptr(), NAPI_AUTO_LENGTH, cb, null_mut(), &mut f), "napi_create_function")?;
    check(napi_set_named_property(env, exports, name.as_ptr(), f), "napi_set_named_property")
}

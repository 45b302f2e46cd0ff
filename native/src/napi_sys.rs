//! Hand-written declarations of the few Node-API C functions this addon calls.
//!
//! Why by hand: crates.io is unreachable from our build hosts, so `napi-sys`/`napi` cannot be
//! used. The declarations follow Node's `js_native_api.h` / `js_native_api_types.h` (Node-API
//! version 8 or lower, all present in Node 20). The symbols are not linked against anything:
//! the `node` executable provides them when it loads the addon.

#![allow(non_camel_case_types)]

use std::ffi::{c_char, c_void};

/// Opaque handles; Node-API only ever gives us pointers to them.
#[repr(C)]
pub struct napi_env__ {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct napi_value__ {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct napi_callback_info__ {
    _opaque: [u8; 0],
}

pub type napi_env = *mut napi_env__;
pub type napi_value = *mut napi_value__;
pub type napi_callback_info = *mut napi_callback_info__;

/// C enums are `int`-sized on every platform Node supports, so they are modelled as `i32`
/// (a Rust `enum` would be undefined behaviour if Node ever returned a value we do not list).
pub type napi_status = i32;
pub const NAPI_OK: napi_status = 0;

pub type napi_valuetype = i32;
pub const NAPI_NUMBER: napi_valuetype = 3;

pub type napi_typedarray_type = i32;
pub const NAPI_UINT8_ARRAY: napi_typedarray_type = 1;
pub const NAPI_UINT32_ARRAY: napi_typedarray_type = 6;
pub const NAPI_FLOAT64_ARRAY: napi_typedarray_type = 8;
pub const NAPI_BIGUINT64_ARRAY: napi_typedarray_type = 10;

pub type napi_callback = Option<unsafe extern "C" fn(env: napi_env, info: napi_callback_info) -> napi_value>;

/// `NAPI_AUTO_LENGTH`: the name argument is NUL-terminated.
pub const NAPI_AUTO_LENGTH: usize = usize::MAX;

extern "C" {
    pub fn napi_create_function(
        env: napi_env,
        utf8name: *const c_char,
        length: usize,
        cb: napi_callback,
        data: *mut c_void,
        result: *mut napi_value,
    ) -> napi_status;
    pub fn napi_set_named_property(env: napi_env, object: napi_value, utf8name: *const c_char, value: napi_value) -> napi_status;
    pub fn napi_get_cb_info(
        env: napi_env,
        cbinfo: napi_callback_info,
        argc: *mut usize,
        argv: *mut napi_value,
        this_arg: *mut napi_value,
        data: *mut *mut c_void,
    ) -> napi_status;
    pub fn napi_typeof(env: napi_env, value: napi_value, result: *mut napi_valuetype) -> napi_status;
    pub fn napi_is_typedarray(env: napi_env, value: napi_value, result: *mut bool) -> napi_status;
    /// `data` comes back already advanced by the view's byteOffset. Unlike
    /// `napi_get_arraybuffer_info`, this accepts views on a SharedArrayBuffer in Node 20.
    pub fn napi_get_typedarray_info(
        env: napi_env,
        typedarray: napi_value,
        kind: *mut napi_typedarray_type,
        length: *mut usize,
        data: *mut *mut c_void,
        arraybuffer: *mut napi_value,
        byte_offset: *mut usize,
    ) -> napi_status;
    pub fn napi_get_value_double(env: napi_env, value: napi_value, result: *mut f64) -> napi_status;
    pub fn napi_create_double(env: napi_env, value: f64, result: *mut napi_value) -> napi_status;
    pub fn napi_create_bigint_uint64(env: napi_env, value: u64, result: *mut napi_value) -> napi_status;
    pub fn napi_throw_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    pub fn napi_throw_type_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    pub fn napi_throw_range_error(env: napi_env, code: *const c_char, msg: *const c_char) -> napi_status;
    pub fn napi_is_exception_pending(env: napi_env, result: *mut bool) -> napi_status;
}

//! The C ABI between the FlexiLib server and handler libraries.
//!
//! These `#[repr(C)]` types mirror `include/flexilib.h` field for field. The
//! first fields of [`Request`] and all of [`Header`] and [`Response`] keep the
//! layout of the original (Zig) FlexiLib, so a library written for it loads
//! unchanged. Everything FlexiLib-rs adds is *appended* to [`Request`] and is
//! announced by [`ABI_VERSION`], which the host passes to the optional
//! [`SYMBOL_INIT`] export before the first request.
//!
//! This crate only describes memory layout; it has no behaviour and no
//! dependencies. The server (`flexilib`) and the Rust SDK (`flexilib-sdk`)
//! both build on it.
#![no_std]
#![deny(missing_docs)]

use core::ffi::{c_char, c_int, c_void};

/// Version of the ABI extensions this crate describes.
///
/// * `0` — the original FlexiLib layout: no `abi_version`, `alloc` or `arena`.
/// * `1` — [`Request`] gains `abi_version`, `alloc` and `arena`; libraries may
///   export [`SYMBOL_INIT`] and [`SYMBOL_DEINIT`].
pub const ABI_VERSION: usize = 1;

/// Required export: `struct flexilib_response *handle_request(struct flexilib_request *)`.
pub const SYMBOL_HANDLE_REQUEST: &[u8] = b"handle_request";
/// Optional export: `void request_deinit(void)`, called on the same thread
/// after the server has taken its copy of the response.
pub const SYMBOL_REQUEST_DEINIT: &[u8] = b"request_deinit";
/// Optional export: `int flexilib_init(size_t host_abi_version)`, called once
/// per load before the first request. A non-zero return fails the load.
pub const SYMBOL_INIT: &[u8] = b"flexilib_init";
/// Optional export: `void flexilib_deinit(void)`, called once before the
/// library is unloaded.
pub const SYMBOL_DEINIT: &[u8] = b"flexilib_deinit";
/// Optional export of Zig libraries written for the original FlexiLib:
/// `void zigInit(void *allocator)`, called on the handler thread before
/// every `handle_request` with a pointer to a Zig 0.13 `std.mem.Allocator`
/// backed by the request arena (the host's side is in the server crate).
pub const SYMBOL_ZIG_INIT: &[u8] = b"zigInit";

/// One header: name and value as pointer + length (not NUL-terminated).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Header {
    /// Header name bytes.
    pub name_ptr: *mut c_char,
    /// Length of the name in bytes.
    pub name_len: usize,
    /// Header value bytes.
    pub value_ptr: *mut c_char,
    /// Length of the value in bytes.
    pub value_len: usize,
}

/// Allocation callback lent to the library by the host (ABI ≥ 1).
///
/// Returns `size` bytes aligned to `align` (a power of two) from the
/// request's arena, or NULL when out of memory. The memory stays valid until
/// the server has copied the response; the library never frees it.
pub type AllocFn =
    unsafe extern "C" fn(arena: *mut c_void, size: usize, align: usize) -> *mut c_void;

/// The request handed to `handle_request`.
#[repr(C)]
#[derive(Debug)]
pub struct Request {
    /// Request target (path and query) bytes, NUL-terminated by FlexiLib-rs.
    pub target: *const c_char,
    /// Length of the target, without the NUL.
    pub target_len: usize,
    /// Method bytes, NUL-terminated.
    pub method: *mut c_char,
    /// Length of the method, without the NUL.
    pub method_len: usize,
    /// Request body bytes.
    pub content: *mut c_char,
    /// Length of the body.
    pub content_len: usize,
    /// Request headers, in the order they were received; names lowercase.
    pub headers: *mut Header,
    /// Number of headers.
    pub headers_len: usize,
    // ---- appended in ABI 1 ----
    /// [`ABI_VERSION`] of the host.
    pub abi_version: usize,
    /// Allocation callback backed by the request arena.
    pub alloc: Option<AllocFn>,
    /// Opaque arena handle to pass to `alloc`.
    pub arena: *mut c_void,
}

/// The response returned by `handle_request`.
#[repr(C)]
#[derive(Debug)]
pub struct Response {
    /// Body bytes.
    pub ptr: *mut c_char,
    /// Body length.
    pub len: usize,
    /// Response headers.
    pub headers: *mut Header,
    /// Number of response headers.
    pub headers_len: usize,
    /// HTTP status; `0` means 200.
    pub status: usize,
    /// Optional reason phrase (NULL or empty: the standard one).
    pub reason_ptr: *mut c_char,
    /// Length of the reason phrase.
    pub reason_len: usize,
}

/// Signature of the required `handle_request` export.
pub type HandleRequestFn = unsafe extern "C" fn(request: *mut Request) -> *mut Response;
/// Signature of the optional `request_deinit` export.
pub type RequestDeinitFn = unsafe extern "C" fn();
/// Signature of the optional `flexilib_init` export.
pub type InitFn = unsafe extern "C" fn(host_abi_version: usize) -> c_int;
/// Signature of the optional `flexilib_deinit` export.
pub type DeinitFn = unsafe extern "C" fn();
/// Signature of the optional `zigInit` export (see [`SYMBOL_ZIG_INIT`]).
pub type ZigInitFn = unsafe extern "C" fn(allocator: *mut c_void);

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
/// * `2` — per-route instances ([`SYMBOL_INSTANCE_NEW`], [`InstanceConfig`]),
///   asynchronous completion ([`PENDING`], [`Host::complete`]), streamed
///   bodies ([`RESPONSE_STREAM`], [`Host::stream_write`]) and headers sent
///   as given ([`RESPONSE_AS_GIVEN`]). [`Request`] gains `instance`, `call`
///   and `host`; a library that exports [`SYMBOL_ABI_VERSION`] returning 2
///   returns [`ResponseV2`] (a [`Response`] followed by `flags`).
/// * `3` — connection upgrades: a library may answer `101 Switching
///   Protocols` (with [`RESPONSE_STREAM`]) to a request that asked for an
///   upgrade, then reads what the client sends with [`Host::stream_read`]
///   and [`Host::stream_on_readable`] and writes with
///   [`Host::stream_write`] (raw bytes: the connection is its own). The
///   two callbacks are appended to [`Host`]; read them only from a host
///   whose `abi_version` is 3 or more.
pub const ABI_VERSION: usize = 3;

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
/// Optional export (ABI ≥ 2): `size_t flexilib_abi_version(void)`, the ABI
/// version the library was built against. 2 or more: its responses are
/// [`ResponseV2`].
pub const SYMBOL_ABI_VERSION: &[u8] = b"flexilib_abi_version";
/// Optional export (ABI ≥ 2): `void *flexilib_instance_new(const struct
/// flexilib_instance_config *)`. A library exporting it gets one instance
/// per route; NULL fails the instance (the reason goes to `config->fail`).
pub const SYMBOL_INSTANCE_NEW: &[u8] = b"flexilib_instance_new";
/// Optional export (ABI ≥ 2): `void flexilib_instance_free(void *)`, called
/// after the instance's last request.
pub const SYMBOL_INSTANCE_FREE: &[u8] = b"flexilib_instance_free";

/// Optional export: `size_t flexilib_instance_gauges(void *instance,
/// struct flexilib_gauge *out, size_t capacity)` (see [`InstanceGaugesFn`]
/// and [`Gauge`]). Needs no ABI version: a host that does not know it never
/// looks it up, and a library without it is never asked.
pub const SYMBOL_INSTANCE_GAUGES: &[u8] = b"flexilib_instance_gauges";

/// `handle_request`'s answer meaning "the response comes later, through
/// [`Host::complete`]" (ABI ≥ 2).
pub const PENDING: *mut Response = core::ptr::without_provenance_mut(1);

/// Response flag: the body is streamed through [`Host::stream_write`] and
/// [`Host::stream_end`] (the response's own body must be empty).
pub const RESPONSE_STREAM: usize = 1;
/// Response flag: send the headers exactly as given (no default
/// `content-type`).
pub const RESPONSE_AS_GIVEN: usize = 2;

/// Host callback result: done.
pub const STATUS_OK: c_int = 0;
/// Host callback result: a non-blocking write found the buffer full; wait
/// for the [`Host::stream_on_writable`] callback and write again.
pub const STATUS_FULL: c_int = 1;
/// Host callback result: the client went away (or the stream ended); stop.
pub const STATUS_CLOSED: c_int = 2;
/// Host callback result: unknown call, or not allowed in its state.
pub const STATUS_INVALID: c_int = -1;

/// [`Host::stream_write`] flag: return [`STATUS_FULL`] instead of waiting.
pub const WRITE_NONBLOCK: c_int = 1;
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
    /// Request headers, grouped by name in the order each name first
    /// appeared (`A, B, A` arrives as `A, A, B`; values of one name keep
    /// their order); names lowercase.
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
    // ---- appended in ABI 2 ----
    /// The route's instance (from `flexilib_instance_new`), or NULL.
    pub instance: *mut c_void,
    /// This request, for the [`Host`] callbacks.
    pub call: u64,
    /// The host's callbacks.
    pub host: *const Host,
}

/// A route option `key=value` (ABI ≥ 2). Not NUL-terminated.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct RouteOption {
    /// Key bytes.
    pub key: *const c_char,
    /// Key length.
    pub key_len: usize,
    /// Value bytes.
    pub value: *const c_char,
    /// Value length.
    pub value_len: usize,
}

/// What `flexilib_instance_new` is given (ABI ≥ 2). Valid during the call.
#[repr(C)]
#[derive(Debug)]
pub struct InstanceConfig {
    /// [`ABI_VERSION`] of the host.
    pub abi_version: usize,
    /// The route's key as written in the config, e.g. `/w`. Not NUL-terminated.
    pub route: *const c_char,
    /// Length of `route`.
    pub route_len: usize,
    /// Directory of the config file, NUL-terminated: relative option paths
    /// are relative to it.
    pub config_dir: *const c_char,
    /// Length of `config_dir`, without the NUL.
    pub config_dir_len: usize,
    /// The route's options, in config order.
    pub options: *const RouteOption,
    /// Number of options.
    pub options_len: usize,
    /// Pass to `depends_on` and `fail`.
    pub host_context: *mut c_void,
    /// Names a file the instance read (relative to `config_dir` unless
    /// absolute): when it changes, a new instance is built.
    pub depends_on:
        unsafe extern "C" fn(host_context: *mut c_void, path: *const c_char, len: usize),
    /// Says why the instance cannot be built (before returning NULL).
    pub fail: unsafe extern "C" fn(host_context: *mut c_void, message: *const c_char, len: usize),
}

/// The host's callbacks for asynchronous and streamed responses (ABI ≥ 2).
/// Every one may be called from any thread.
#[repr(C)]
#[derive(Debug)]
pub struct Host {
    /// [`ABI_VERSION`] of the host.
    pub abi_version: usize,
    /// Completes a request that `handle_request` answered [`PENDING`]:
    /// exactly once, with a [`ResponseV2`] valid during the call (the host
    /// copies it). [`STATUS_INVALID`] for an unknown or completed call.
    pub complete: unsafe extern "C" fn(call: u64, response: *const ResponseV2) -> c_int,
    /// Appends `len` bytes to a streamed body. Waits while the host's
    /// buffer is full, unless `flags` has [`WRITE_NONBLOCK`] (then
    /// [`STATUS_FULL`]). [`STATUS_CLOSED`] once the client is gone.
    pub stream_write:
        unsafe extern "C" fn(call: u64, data: *const c_char, len: usize, flags: c_int) -> c_int,
    /// Calls `callback(data)` once, from any thread, when the buffer has
    /// room again (at once if it has) or the stream closed.
    pub stream_on_writable: unsafe extern "C" fn(
        call: u64,
        callback: unsafe extern "C" fn(data: *mut c_void),
        data: *mut c_void,
    ) -> c_int,
    /// Ends a streamed body: `ok` non-zero for a complete body; zero aborts
    /// the connection so the client sees a truncated body as an error. The
    /// call handle is invalid afterwards.
    pub stream_end: unsafe extern "C" fn(call: u64, ok: c_int) -> c_int,
    /// ABI ≥ 3, after a `101` answer: copies up to `capacity` bytes the
    /// client sent into `buffer` and stores how many in `*len`: `0` when
    /// nothing is waiting (wait for [`Host::stream_on_readable`]).
    /// [`STATUS_CLOSED`] once the client has closed its side and everything
    /// was read; [`STATUS_INVALID`] for an unknown call.
    pub stream_read: unsafe extern "C" fn(
        call: u64,
        buffer: *mut c_char,
        capacity: usize,
        len: *mut usize,
    ) -> c_int,
    /// ABI ≥ 3: calls `callback(data)` once, from any thread, when the
    /// client has sent bytes to read (at once if some are waiting), or its
    /// side closed, or the call ended.
    pub stream_on_readable: unsafe extern "C" fn(
        call: u64,
        callback: unsafe extern "C" fn(data: *mut c_void),
        data: *mut c_void,
    ) -> c_int,
}

/// One gauge an instance reports through `flexilib_instance_gauges`: a
/// value of the instance now (instances alive, requests queued), with its
/// name and help text.
///
/// `name` is ASCII `[a-z][a-z0-9_]*`, at most [`GAUGE_NAME_MAX`] bytes,
/// and should start with the runtime's own word (`wasm_…`, `worker_…`);
/// the host exports it as the gauge `flexilib_library_<name>` labelled
/// with the route, and skips names it cannot (see `include/flexilib.h`).
/// `name` and `help` are not NUL-terminated and must stay valid as long as
/// the instance lives (string literals, or memory the instance owns): the
/// host copies them after the call, while it still holds the instance.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Gauge {
    /// Name bytes.
    pub name: *const c_char,
    /// Length of the name.
    pub name_len: usize,
    /// Help text bytes (UTF-8, one line).
    pub help: *const c_char,
    /// Length of the help text.
    pub help_len: usize,
    /// The value now.
    pub value: f64,
}

/// Longest gauge name the host accepts, in bytes.
pub const GAUGE_NAME_MAX: usize = 64;

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

/// The response of an ABI-2 library: the original layout plus flags.
#[repr(C)]
#[derive(Debug)]
pub struct ResponseV2 {
    /// The original response fields.
    pub base: Response,
    /// [`RESPONSE_STREAM`] and/or [`RESPONSE_AS_GIVEN`].
    pub flags: usize,
}

/// Signature of the required `handle_request` export.
pub type HandleRequestFn = unsafe extern "C" fn(request: *mut Request) -> *mut Response;
/// Signature of the optional `request_deinit` export.
pub type RequestDeinitFn = unsafe extern "C" fn();
/// Signature of the optional `flexilib_init` export.
pub type InitFn = unsafe extern "C" fn(host_abi_version: usize) -> c_int;
/// Signature of the optional `flexilib_deinit` export.
pub type DeinitFn = unsafe extern "C" fn();
/// Signature of the optional `flexilib_abi_version` export.
pub type AbiVersionFn = unsafe extern "C" fn() -> usize;
/// Signature of the optional `flexilib_instance_new` export.
pub type InstanceNewFn = unsafe extern "C" fn(config: *const InstanceConfig) -> *mut c_void;
/// Signature of the optional `flexilib_instance_free` export.
pub type InstanceFreeFn = unsafe extern "C" fn(instance: *mut c_void);
/// Signature of the optional `flexilib_instance_gauges` export: fills
/// `out[0..min(n, capacity)]` with the instance's gauges and returns `n`,
/// how many it has (when `n > capacity` the host may call again with room
/// for `n`). Called by the host's admin thread when `/metrics` is scraped,
/// at the same time as requests run on the instance, never after
/// `flexilib_instance_free`: it must be thread-safe and cheap (read
/// atomics; take no lock a request may hold for long).
pub type InstanceGaugesFn =
    unsafe extern "C" fn(instance: *mut c_void, out: *mut Gauge, capacity: usize) -> usize;
/// Signature of the optional `zigInit` export (see [`SYMBOL_ZIG_INIT`]).
pub type ZigInitFn = unsafe extern "C" fn(allocator: *mut c_void);

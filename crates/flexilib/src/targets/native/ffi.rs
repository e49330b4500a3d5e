//! The FFI boundary with handler libraries. All `unsafe` code that talks to
//! a library lives here.

use std::ffi::c_char;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use flexilib_abi as abi;
use hyper::http::request::Parts;

use super::zig;
use crate::arena::{arena_alloc, RequestArena};

/// Why a library could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file failed to load before and has not changed since.
    #[error("{path} still fails to load (unchanged since): {reason}", path = .path.display())]
    Unchanged {
        /// The library path.
        path: PathBuf,
        /// The first failure.
        reason: String,
    },
    /// The file could not be read or copied for loading, or is no library.
    #[error("cannot load {path}: {source}", path = .path.display())]
    Copy {
        /// The library path.
        path: PathBuf,
        /// What went wrong.
        source: super::copy::CopyError,
    },
    /// `dlopen` failed (missing file, not ELF, unresolved symbol, ...).
    #[error("cannot load {path}: {source}", path = .path.display())]
    Open {
        /// The library path.
        path: PathBuf,
        /// What `dlopen` said.
        source: libloading::Error,
    },
    /// The library does not export `handle_request`.
    #[error("{path} does not export `handle_request`: {source}", path = .path.display())]
    MissingHandler {
        /// The library path.
        path: PathBuf,
        /// What `dlsym` said.
        source: libloading::Error,
    },
    /// The library's `flexilib_init` refused to start.
    #[error("{path}: flexilib_init returned {code}", path = .path.display())]
    InitFailed {
        /// The library path.
        path: PathBuf,
        /// The non-zero code it returned.
        code: i32,
    },
}

/// Why a call produced no usable response.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// `handle_request` returned NULL.
    #[error("handle_request returned NULL")]
    NullResponse,
    /// The returned struct points at nothing for a non-empty field.
    #[error("response field `{0}` is NULL with a non-zero length")]
    InvalidResponse(&'static str),
    /// The request did not fit in the arena.
    #[error("request arena exhausted")]
    ArenaExhausted,
}

/// What a call gave back.
#[derive(Debug)]
pub enum Called {
    /// The response, now.
    Response(LibraryResponse),
    /// `FLEXILIB_PENDING`: the library completes the call later (ABI 2).
    Pending,
}

/// What an ABI-2 call carries besides the request.
#[derive(Debug, Clone, Copy)]
pub struct CallContext {
    /// The route's instance, or NULL.
    pub instance: *mut std::ffi::c_void,
    /// The call's handle for the host callbacks.
    pub call: u64,
    /// The host callbacks.
    pub host: &'static abi::Host,
}

/// A response copied out of library memory.
#[derive(Debug, Clone, Default)]
pub struct LibraryResponse {
    /// Status as returned (0 means 200).
    pub status: usize,
    /// Reason phrase, if the library set one.
    pub reason: Option<Bytes>,
    /// Header name/value pairs, unvalidated.
    pub headers: Vec<(Bytes, Bytes)>,
    /// The body.
    pub body: Bytes,
    /// ABI-2 response flags (`RESPONSE_STREAM`, `RESPONSE_AS_GIVEN`).
    pub flags: usize,
}

impl LibraryResponse {
    /// The body comes later, through the stream callbacks.
    pub fn streamed(&self) -> bool {
        self.flags & abi::RESPONSE_STREAM != 0
    }

    /// The headers go out exactly as given.
    pub fn as_given(&self) -> bool {
        self.flags & abi::RESPONSE_AS_GIVEN != 0
    }
}

/// One `dlopen`ed library with its resolved entry points.
pub struct LoadedLibrary {
    handle_request: abi::HandleRequestFn,
    request_deinit: Option<abi::RequestDeinitFn>,
    zig_init: Option<abi::ZigInitFn>,
    deinit: Option<abi::DeinitFn>,
    /// The ABI the library was built for (`flexilib_abi_version`; 1 without it).
    abi_version: usize,
    /// `flexilib_instance_new` and `flexilib_instance_free`, if exported.
    instances: Option<(abi::InstanceNewFn, Option<abi::InstanceFreeFn>)>,
    /// `flexilib_instance_gauges`, if exported.
    instance_gauges: Option<abi::InstanceGaugesFn>,
    path: PathBuf,
    // Dropped last: `dlclose` after `flexilib_deinit` ran in `Drop`.
    _library: libloading::Library,
}

impl std::fmt::Debug for LoadedLibrary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedLibrary")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LoadedLibrary {
    /// `dlopen(file, RTLD_NOW)`, resolve the exports, run `flexilib_init`.
    /// `path` is the configured path, used in errors and diagnostics.
    pub fn open(file: &Path, path: &Path) -> Result<Self, LoadError> {
        // SAFETY: opening a library runs its initialisers. Handler libraries
        // are trusted code by design (see README, Security); RTLD_NOW makes
        // unresolved symbols fail here instead of at call time.
        let library: libloading::Library = unsafe {
            libloading::os::unix::Library::open(
                Some(file.as_os_str()),
                libloading::os::unix::RTLD_NOW,
            )
        }
        .map_err(|source| LoadError::Open {
            path: path.to_path_buf(),
            source,
        })?
        .into();
        // SAFETY: `handle_request` is declared with exactly this signature by
        // the ABI (include/flexilib.h); the fn pointer is only used while
        // `library` is held by the same struct.
        let handle_request =
            unsafe { library.get::<abi::HandleRequestFn>(abi::SYMBOL_HANDLE_REQUEST) }
                .map(|symbol| *symbol)
                .map_err(|source| LoadError::MissingHandler {
                    path: path.to_path_buf(),
                    source,
                })?;
        // SAFETY: as above, for the optional exports' ABI signatures.
        let request_deinit =
            unsafe { library.get::<abi::RequestDeinitFn>(abi::SYMBOL_REQUEST_DEINIT) }
                .ok()
                .map(|symbol| *symbol);
        // SAFETY: as above.
        let init = unsafe { library.get::<abi::InitFn>(abi::SYMBOL_INIT) }
            .ok()
            .map(|symbol| *symbol);
        // SAFETY: as above.
        let zig_init = unsafe { library.get::<abi::ZigInitFn>(abi::SYMBOL_ZIG_INIT) }
            .ok()
            .map(|symbol| *symbol);
        // SAFETY: as above.
        let deinit = unsafe { library.get::<abi::DeinitFn>(abi::SYMBOL_DEINIT) }
            .ok()
            .map(|symbol| *symbol);
        // SAFETY: as above.
        let abi_version_fn = unsafe { library.get::<abi::AbiVersionFn>(abi::SYMBOL_ABI_VERSION) }
            .ok()
            .map(|symbol| *symbol);
        // SAFETY: as above.
        let instance_new = unsafe { library.get::<abi::InstanceNewFn>(abi::SYMBOL_INSTANCE_NEW) }
            .ok()
            .map(|symbol| *symbol);
        // SAFETY: as above.
        let instance_free =
            unsafe { library.get::<abi::InstanceFreeFn>(abi::SYMBOL_INSTANCE_FREE) }
                .ok()
                .map(|symbol| *symbol);
        // SAFETY: as above.
        let instance_gauges =
            unsafe { library.get::<abi::InstanceGaugesFn>(abi::SYMBOL_INSTANCE_GAUGES) }
                .ok()
                .map(|symbol| *symbol);
        if let Some(init) = init {
            // SAFETY: `flexilib_init` takes the host ABI version by value and
            // the library is loaded.
            let code = unsafe { init(abi::ABI_VERSION) };
            if code != 0 {
                return Err(LoadError::InitFailed {
                    path: path.to_path_buf(),
                    code,
                });
            }
        }
        // SAFETY: `flexilib_abi_version` takes nothing and returns a size_t
        // (ABI 2); the library is loaded and initialised.
        let abi_version = abi_version_fn.map_or(1, |version| unsafe { version() });
        Ok(Self {
            handle_request,
            request_deinit,
            zig_init,
            deinit,
            abi_version,
            instances: instance_new.map(|new| (new, instance_free)),
            instance_gauges,
            path: path.to_path_buf(),
            _library: library,
        })
    }

    /// The ABI version the library was built for.
    pub fn abi_version(&self) -> usize {
        self.abi_version
    }

    /// True if the library builds per-route instances.
    pub fn has_instances(&self) -> bool {
        self.instances.is_some()
    }

    /// Calls `flexilib_instance_new` with `config`; `None` if the library
    /// has no constructor.
    ///
    /// # Safety
    /// `config` and everything it points to must be valid for the call.
    pub unsafe fn new_instance(
        &self,
        config: &abi::InstanceConfig,
    ) -> Option<*mut std::ffi::c_void> {
        let (new, _) = self.instances?;
        // SAFETY: `new` has the ABI's signature and the library is loaded
        // (borrowed `self`); `config` is valid per this function's contract.
        Some(unsafe { new(config) })
    }

    /// Calls `flexilib_instance_free` (if exported) on `instance`.
    ///
    /// # Safety
    /// `instance` must come from this library's `new_instance`, freed once,
    /// with no request using it any more.
    pub unsafe fn free_instance(&self, instance: *mut std::ffi::c_void) {
        if let Some((_, Some(free))) = self.instances {
            // SAFETY: per this function's contract; the library is loaded.
            unsafe { free(instance) };
        }
    }

    /// Calls `flexilib_instance_gauges` (if exported) on `instance` and
    /// copies out what it reports: `(name, help, value)` as the library
    /// gave them (checked by the metrics, not here), at most
    /// [`MAX_INSTANCE_GAUGES`]. Empty without the export.
    ///
    /// # Safety
    /// `instance` must come from this library's `new_instance` and stay
    /// alive (not freed) for the call.
    pub unsafe fn instance_gauges(
        &self,
        instance: *mut std::ffi::c_void,
    ) -> Vec<(Vec<u8>, Vec<u8>, f64)> {
        let Some(gauges) = self.instance_gauges else {
            return Vec::new();
        };
        let empty = abi::Gauge {
            name: std::ptr::null(),
            name_len: 0,
            help: std::ptr::null(),
            help_len: 0,
            value: 0.0,
        };
        let mut out = vec![empty; FIRST_GAUGE_CAPACITY];
        // SAFETY: `gauges` has the ABI's signature and the library is
        // loaded (borrowed `self`); `instance` is alive per this function's
        // contract; `out` has room for `out.len()` gauges.
        let mut count = unsafe { gauges(instance, out.as_mut_ptr(), out.len()) };
        if count > out.len() {
            out.resize(count.min(MAX_INSTANCE_GAUGES), empty);
            // SAFETY: as above, with the larger buffer.
            count = unsafe { gauges(instance, out.as_mut_ptr(), out.len()) };
        }
        out.truncate(count);
        out.iter()
            .filter_map(|gauge| {
                // SAFETY: the library wrote these pairs during the call;
                // the ABI keeps them valid while the instance lives
                // (flexilib.h), and it is alive for this function's call
                // (its contract). `bytes_at` refuses NULL with a length.
                let (name, help) = unsafe {
                    (
                        bytes_at(gauge.name, gauge.name_len, "gauge name").ok()?,
                        bytes_at(gauge.help, gauge.help_len, "gauge help").ok()?,
                    )
                };
                Some((name.to_vec(), help.to_vec(), gauge.value))
            })
            .collect()
    }

    /// Calls `handle_request` with the request copied into `arena`, copies
    /// the response out, then calls `request_deinit`. With `context` (ABI 2
    /// libraries) the request carries the instance and the call handle, and
    /// the library may answer [`Called::Pending`]: the arena must then stay
    /// where it is, untouched, until the call is completed.
    /// Calls `zigInit` (if exported), then `handle_request` with the request
    /// copied into `arena`, copies the response out, then calls
    /// `request_deinit`.
    pub fn call(
        &self,
        arena: &RequestArena,
        head: &Parts,
        body: &[u8],
        context: Option<CallContext>,
    ) -> Result<Called, CallError> {
        let request = build_request(arena, head, body, context).ok_or(CallError::ArenaExhausted)?;
        if let Some(zig_init) = self.zig_init {
            zig::init_request(zig_init, arena).ok_or(CallError::ArenaExhausted)?;
        }
        // SAFETY: `request` and everything it points to live in `arena`,
        // which the caller keeps alive and in place for the whole call (and
        // until completion for a pending one); the library stays loaded
        // because `self` is borrowed. That the exported symbol really has the
        // ABI's signature cannot be checked: libraries are trusted code.
        let response = unsafe { (self.handle_request)(request) };
        if context.is_some() && response == abi::PENDING {
            return Ok(Called::Pending);
        }
        let result = if response.is_null() {
            Err(CallError::NullResponse)
        } else {
            // SAFETY: a non-NULL return points to a response (a
            // `flexilib_response_v2` from an ABI-2 library) that the library
            // keeps valid until `request_deinit`, which runs below, after
            // this copy.
            unsafe { copy_response(response, self.abi_version >= 2) }.map(Called::Response)
        };
        if let Some(request_deinit) = self.request_deinit {
            // SAFETY: takes no arguments; called on the thread that handled the request.
            unsafe { request_deinit() };
        }
        result
    }
}

impl Drop for LoadedLibrary {
    fn drop(&mut self) {
        if let Some(deinit) = self.deinit {
            // SAFETY: the library is still loaded (`_library` drops after this)
            // and no request can be running on it: callers hold an `Arc` to
            // this struct for the duration of every call.
            unsafe { deinit() };
        }
    }
}

/// Copies the request into the arena in the ABI's layout.
fn build_request<'a>(
    arena: &'a RequestArena,
    head: &Parts,
    body: &[u8],
    context: Option<CallContext>,
) -> Option<&'a mut abi::Request> {
    let method = arena.copy(head.method.as_str().as_bytes(), true)?;
    let target = head
        .uri
        .path_and_query()
        .map_or_else(|| head.uri.path(), |pq| pq.as_str());
    let target = arena.copy(target.as_bytes(), true)?;
    let content = arena.copy(body, false)?;
    let empty = abi::Header {
        name_ptr: std::ptr::null_mut(),
        name_len: 0,
        value_ptr: std::ptr::null_mut(),
        value_len: 0,
    };
    let headers = arena.slice_filled(head.headers.len(), empty)?;
    for (slot, (name, value)) in headers.iter_mut().zip(&head.headers) {
        let name = arena.copy(name.as_str().as_bytes(), false)?;
        let value = arena.copy(value.as_bytes(), false)?;
        *slot = abi::Header {
            name_len: name.len(),
            name_ptr: name.as_mut_ptr().cast::<c_char>(),
            value_len: value.len(),
            value_ptr: value.as_mut_ptr().cast::<c_char>(),
        };
    }
    let (instance, call, host) =
        context.map_or((std::ptr::null_mut(), 0, std::ptr::null()), |context| {
            (
                context.instance,
                context.call,
                std::ptr::from_ref(context.host),
            )
        });
    arena.alloc_value(abi::Request {
        target_len: target.len() - 1,
        target: target.as_ptr().cast::<c_char>(),
        method_len: method.len() - 1,
        method: method.as_mut_ptr().cast::<c_char>(),
        content_len: content.len(),
        content: content.as_mut_ptr().cast::<c_char>(),
        headers_len: headers.len(),
        headers: headers.as_mut_ptr(),
        abi_version: abi::ABI_VERSION,
        alloc: Some(arena_alloc),
        arena: arena.as_ffi_handle(),
        instance,
        call,
        host,
    })
}

/// Copies a library's response into owned memory: one buffer holding the
/// body, reason and header bytes, handed out as `Bytes` slices of it.
/// `v2`: the struct is a `flexilib_response_v2` (its flags are read).
///
/// # Safety
/// `response` must point to a valid `flexilib_response` (a
/// `flexilib_response_v2` when `v2`) whose pointers are valid for their
/// lengths (or NULL with length 0).
pub unsafe fn copy_response(
    response: *const abi::Response,
    v2: bool,
) -> Result<LibraryResponse, CallError> {
    if !response.is_aligned() {
        return Err(CallError::InvalidResponse("response (misaligned)"));
    }
    let flags = if v2 {
        // SAFETY: aligned (checked above; `ResponseV2` starts with a
        // `Response` and has its alignment) and a `flexilib_response_v2`
        // per this function's contract.
        unsafe { (*response.cast::<abi::ResponseV2>()).flags }
    } else {
        0
    };
    // SAFETY: non-NULL, aligned (checked above) and valid per this
    // function's contract.
    let response = unsafe { &*response };
    // SAFETY: the contract covers each (pointer, length) pair read below.
    let (body, reason, raw_headers) = unsafe {
        (
            bytes_at(response.ptr, response.len, "body")?,
            bytes_at(response.reason_ptr, response.reason_len, "reason")?,
            if response.headers_len == 0 {
                &[][..]
            } else if response.headers.is_null()
                || !response.headers.is_aligned()
                || response.headers_len > isize::MAX as usize / std::mem::size_of::<abi::Header>()
            {
                return Err(CallError::InvalidResponse("headers"));
            } else {
                std::slice::from_raw_parts(response.headers, response.headers_len)
            },
        )
    };
    let mut header_parts = Vec::with_capacity(raw_headers.len());
    let mut total = body.len() + reason.len();
    for header in raw_headers {
        // SAFETY: as above, for each header's name and value.
        let (name, value) = unsafe {
            (
                bytes_at(header.name_ptr, header.name_len, "header name")?,
                bytes_at(header.value_ptr, header.value_len, "header value")?,
            )
        };
        total += name.len() + value.len();
        header_parts.push((name, value));
    }
    let mut buffer = bytes::BytesMut::with_capacity(total);
    let mut take = |part: &[u8]| {
        buffer.extend_from_slice(part);
        buffer.split().freeze()
    };
    let body = take(body);
    let reason = (!reason.is_empty()).then(|| take(reason));
    let headers = header_parts
        .into_iter()
        .map(|(name, value)| (take(name), take(value)))
        .collect();
    Ok(LibraryResponse {
        status: response.status,
        reason,
        headers,
        body,
        flags,
    })
}

/// Gauges asked of an instance at first (`flexilib_instance_gauges`).
const FIRST_GAUGE_CAPACITY: usize = 32;

/// Most gauges taken from one instance.
pub const MAX_INSTANCE_GAUGES: usize = 256;

/// A byte slice from a library (pointer, length) pair.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of `len` bytes for `'a`.
unsafe fn bytes_at<'a>(
    ptr: *const c_char,
    len: usize,
    field: &'static str,
) -> Result<&'a [u8], CallError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() || len > isize::MAX as usize {
        return Err(CallError::InvalidResponse(field));
    }
    // SAFETY: non-NULL, and valid for `len` bytes per this function's contract.
    Ok(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) })
}

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
    /// The file could not be read or copied for loading.
    #[error("cannot read {path}: {source}", path = .path.display())]
    Copy {
        /// The library path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
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
}

/// One `dlopen`ed library with its resolved entry points.
pub struct LoadedLibrary {
    handle_request: abi::HandleRequestFn,
    request_deinit: Option<abi::RequestDeinitFn>,
    zig_init: Option<abi::ZigInitFn>,
    deinit: Option<abi::DeinitFn>,
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
        Ok(Self {
            handle_request,
            request_deinit,
            zig_init,
            deinit,
            path: path.to_path_buf(),
            _library: library,
        })
    }

    /// Calls `zigInit` (if exported), then `handle_request` with the request
    /// copied into `arena`, copies the response out, then calls
    /// `request_deinit`.
    pub fn call(
        &self,
        arena: &RequestArena,
        head: &Parts,
        body: &[u8],
    ) -> Result<LibraryResponse, CallError> {
        let mut request = build_request(arena, head, body).ok_or(CallError::ArenaExhausted)?;
        if let Some(zig_init) = self.zig_init {
            zig::init_request(zig_init, arena).ok_or(CallError::ArenaExhausted)?;
        }
        // SAFETY: `request` and everything it points to live in `arena` or on
        // this stack frame for the whole call; the library stays loaded
        // because `self` is borrowed. That the exported symbol really has the
        // ABI's signature cannot be checked: libraries are trusted code.
        let response = unsafe { (self.handle_request)(&mut request) };
        let result = if response.is_null() {
            Err(CallError::NullResponse)
        } else {
            // SAFETY: a non-NULL return points to a `flexilib_response` that
            // the library keeps valid until `request_deinit`, which runs below,
            // after this copy.
            unsafe { copy_response(response) }
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
fn build_request(arena: &RequestArena, head: &Parts, body: &[u8]) -> Option<abi::Request> {
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
    Some(abi::Request {
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
    })
}

/// Copies a library's response into owned memory: one buffer holding the
/// body, reason and header bytes, handed out as `Bytes` slices of it.
///
/// # Safety
/// `response` must point to a valid `flexilib_response` whose pointers are
/// valid for their lengths (or NULL with length 0).
unsafe fn copy_response(response: *const abi::Response) -> Result<LibraryResponse, CallError> {
    if !response.is_aligned() {
        return Err(CallError::InvalidResponse("response (misaligned)"));
    }
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
    })
}

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

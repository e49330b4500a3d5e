//! Unit-testing handlers without a server.
//!
//! [`TestRequest`] owns a request and plays the host: it lays the request out
//! exactly as FlexiLib-rs does (ABI 1, empty fields as NULL pointers, an
//! arena-backed `alloc` callback) and copies the response back out into a
//! [`HostResponse`] before releasing the arena.
//!
//! ```
//! use flexilib_sdk::testing::TestRequest;
//! use flexilib_sdk::{Request, Response};
//!
//! fn hello(req: &Request<'_>) -> Response {
//!     Response::ok(format!("hello {}", req.path()))
//! }
//!
//! let resp = TestRequest::new("GET", "/world?x=1").dispatch(hello).expect("a response");
//! assert_eq!(resp.status, 200);
//! assert_eq!(resp.body, b"hello /world");
//! ```

use core::alloc::Layout;
use core::cell::{Cell, RefCell};
use core::ffi::{c_char, c_void};
use core::ptr::{self, NonNull};

use flexilib_abi as abi;

use crate::raw::{raw_bytes, raw_slice};
use crate::{dispatch, Handler, Request};

/// A request owned by the test, handed to handlers as the host would.
#[derive(Debug, Clone)]
pub struct TestRequest {
    method: Vec<u8>,
    target: Vec<u8>,
    body: Vec<u8>,
    headers: Vec<(Vec<u8>, Vec<u8>)>,
    arena_limit: usize,
    with_alloc: bool,
    abi_version: usize,
}

impl TestRequest {
    /// A request with `method` and `target`, no headers and no body.
    pub fn new(method: impl Into<Vec<u8>>, target: impl Into<Vec<u8>>) -> Self {
        TestRequest {
            method: method.into(),
            target: target.into(),
            body: Vec::new(),
            headers: Vec::new(),
            arena_limit: usize::MAX,
            with_alloc: true,
            abi_version: abi::ABI_VERSION,
        }
    }

    /// Appends a header; the name is lowercased, as the host does.
    #[must_use]
    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers
            .push((name.to_ascii_lowercase().into_bytes(), value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Makes the arena's allocator fail once `bytes` have been handed out.
    #[must_use]
    pub fn arena_limit(mut self, bytes: usize) -> Self {
        self.arena_limit = bytes;
        self
    }

    /// Passes no `alloc` callback, like a host that has none.
    #[must_use]
    pub fn without_alloc(mut self) -> Self {
        self.with_alloc = false;
        self
    }

    /// Sets the `abi_version` field of the request.
    #[must_use]
    pub fn abi_version(mut self, version: usize) -> Self {
        self.abi_version = version;
        self
    }

    /// Calls `f` with a [`Request`] view of this request.
    pub fn view<R>(&self, f: impl FnOnce(&Request<'_>) -> R) -> R {
        self.with_raw(|raw| {
            // SAFETY: `with_raw` passes a complete ABI-1 request whose
            // pointers (into `self`) and arena outlive this closure.
            let request = unsafe { Request::from_ref(raw) };
            f(&request)
        })
    }

    /// Runs `handler` the way the [`export_handler!`](crate::export_handler)
    /// exports do (panics become a 500, the response is copied into the
    /// arena) and reads the result back. `None` is what the host would see
    /// as NULL (and answer with 500).
    pub fn dispatch(&self, handler: Handler) -> Option<HostResponse> {
        self.with_raw(|raw| {
            // SAFETY: as in `view`.
            let request = unsafe { Request::from_ref(raw) };
            let response = dispatch::run(&request, handler);
            // SAFETY: `run` returns NULL or a response it wrote into this
            // request's arena, which is still alive.
            unsafe { HostResponse::read(response) }
        })
    }

    /// Calls an exported `handle_request` with this request, as the host
    /// would, and reads the result back (`None` for NULL).
    ///
    /// For a library using [`export_handler!`](crate::export_handler), call
    /// its `flexilib_init(1)` first, as the host does.
    ///
    /// # Safety
    ///
    /// `handle_request` must honour the FlexiLib ABI: read the request only
    /// during the call and return NULL or a response whose memory is valid
    /// until this function has copied it.
    pub unsafe fn call(&self, handle_request: abi::HandleRequestFn) -> Option<HostResponse> {
        self.with_raw(|raw| {
            // SAFETY: `raw` is a complete, valid request for the call; the
            // caller vouches for `handle_request`.
            let response = unsafe { handle_request(raw) };
            // SAFETY: the caller guarantees the result is NULL or valid now.
            unsafe { HostResponse::read(response) }
        })
    }

    /// Lays the request out as the host does and calls `f` with it; the
    /// arena is released after `f` returns.
    pub(crate) fn with_raw<R>(&self, f: impl FnOnce(&mut abi::Request) -> R) -> R {
        let arena = TestArena::new(self.arena_limit);
        let mut headers: Vec<abi::Header> = self
            .headers
            .iter()
            .map(|(name, value)| abi::Header {
                name_ptr: ptr_or_null(name).cast_mut(),
                name_len: name.len(),
                value_ptr: ptr_or_null(value).cast_mut(),
                value_len: value.len(),
            })
            .collect();
        let mut raw = abi::Request {
            target: ptr_or_null(&self.target),
            target_len: self.target.len(),
            method: ptr_or_null(&self.method).cast_mut(),
            method_len: self.method.len(),
            content: ptr_or_null(&self.body).cast_mut(),
            content_len: self.body.len(),
            headers_len: headers.len(),
            headers: if headers.is_empty() {
                ptr::null_mut()
            } else {
                headers.as_mut_ptr()
            },
            abi_version: self.abi_version,
            alloc: self.with_alloc.then_some(test_alloc as abi::AllocFn),
            arena: ptr::from_ref(&arena).cast_mut().cast::<c_void>(),
            instance: ptr::null_mut(),
            call: 0,
            host: ptr::null(),
        };
        f(&mut raw)
    }
}

/// NULL for empty data (as the host may pass), else the data pointer.
fn ptr_or_null(bytes: &[u8]) -> *const c_char {
    if bytes.is_empty() {
        ptr::null()
    } else {
        bytes.as_ptr().cast()
    }
}

/// A response as the host sees it, copied out of the arena.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostResponse {
    /// Status as returned (`0` means 200).
    pub status: usize,
    /// Reason phrase, if the library set one.
    pub reason: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HostResponse {
    /// The body as text (invalid UTF-8 replaced).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The value of the first header called `name` (ignoring ASCII case).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value.as_slice())
    }

    /// Copies a library's response; `None` for NULL.
    ///
    /// # Safety
    ///
    /// `ptr` must be NULL or point to a valid [`abi::Response`] whose
    /// pointer/length pairs are readable now.
    unsafe fn read(ptr: *const abi::Response) -> Option<HostResponse> {
        // SAFETY: the caller guarantees NULL or a valid response.
        let raw = unsafe { ptr.as_ref() }?;
        // SAFETY: the caller guarantees the headers array is readable.
        let headers = unsafe { raw_slice(raw.headers.cast_const(), raw.headers_len) };
        let headers = headers
            .iter()
            .map(|h| {
                // SAFETY: each header's pairs are readable (caller).
                let (name, value) = unsafe {
                    (
                        raw_bytes(h.name_ptr, h.name_len),
                        raw_bytes(h.value_ptr, h.value_len),
                    )
                };
                (name.to_vec(), value.to_vec())
            })
            .collect();
        // SAFETY: the body pair is readable (caller).
        let body = unsafe { raw_bytes(raw.ptr, raw.len) }.to_vec();
        let reason = (!raw.reason_ptr.is_null()).then(|| {
            // SAFETY: the reason pair is readable (caller).
            unsafe { raw_bytes(raw.reason_ptr, raw.reason_len) }.to_vec()
        });
        Some(HostResponse {
            status: raw.status,
            reason,
            headers,
            body,
        })
    }
}

/// A bump-free stand-in for the host's arena: every allocation is a separate
/// `std::alloc` block, all freed when the arena is dropped.
struct TestArena {
    limit: usize,
    used: Cell<usize>,
    blocks: RefCell<Vec<(NonNull<u8>, Layout)>>,
}

impl TestArena {
    fn new(limit: usize) -> Self {
        TestArena {
            limit,
            used: Cell::new(0),
            blocks: RefCell::new(Vec::new()),
        }
    }

    fn alloc(&self, size: usize, align: usize) -> *mut c_void {
        let Ok(layout) = Layout::from_size_align(size, align) else {
            return ptr::null_mut();
        };
        let Some(used) = self.used.get().checked_add(size) else {
            return ptr::null_mut();
        };
        if used > self.limit {
            return ptr::null_mut();
        }
        if size == 0 {
            return ptr::without_provenance_mut(align);
        }
        let Ok(mut blocks) = self.blocks.try_borrow_mut() else {
            return ptr::null_mut();
        };
        // SAFETY: `layout` has a non-zero size.
        let Some(block) = NonNull::new(unsafe { std::alloc::alloc(layout) }) else {
            return ptr::null_mut();
        };
        blocks.push((block, layout));
        self.used.set(used);
        block.as_ptr().cast()
    }
}

impl Drop for TestArena {
    fn drop(&mut self) {
        for (block, layout) in self.blocks.get_mut().drain(..) {
            // SAFETY: `block` was returned by `std::alloc::alloc(layout)` and
            // is freed exactly once, here.
            unsafe { std::alloc::dealloc(block.as_ptr(), layout) };
        }
    }
}

/// The `alloc` callback handed to handlers.
///
/// # Safety
///
/// `arena` must be NULL or point to a live `TestArena` (as `with_raw`
/// passes).
unsafe extern "C" fn test_alloc(arena: *mut c_void, size: usize, align: usize) -> *mut c_void {
    // SAFETY: `with_raw` always passes a pointer to its live `TestArena`.
    match unsafe { arena.cast::<TestArena>().as_ref() } {
        Some(arena) => arena.alloc(size, align),
        None => ptr::null_mut(),
    }
}

/// What `instance` reports through [`Instance::gauges`](crate::Instance::gauges),
/// as the server's admin listener would receive it: `(name, help, value)`
/// in the order set.
pub fn gauges_of<T: crate::Instance>(instance: &T) -> Vec<(&'static str, &'static str, f64)> {
    let mut list = Vec::new();
    instance.gauges(&mut crate::Gauges::into_list(&mut list));
    list
}

//! A safe, zero-copy view of the request the host hands to `handle_request`.

use core::alloc::Layout;
use core::ffi::c_void;
use core::fmt;
use core::iter::FusedIterator;
use core::ptr::{self, NonNull};

use flexilib_abi as abi;

use crate::raw::{raw_bytes, raw_slice};

/// One HTTP request, borrowed from the host for the duration of a call.
///
/// Nothing is copied: every accessor returns a slice of the host's memory.
/// Text accessors return `""` (or `None`) when the bytes are not UTF-8; the
/// `*_bytes` variants return the raw bytes.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    method: &'a [u8],
    target: &'a [u8],
    body: &'a [u8],
    headers: &'a [abi::Header],
    abi_version: usize,
    alloc: Option<abi::AllocFn>,
    arena: *mut c_void,
}

impl<'a> Request<'a> {
    /// Wraps the host's request pointer; `None` if it is NULL.
    ///
    /// # Safety
    ///
    /// `ptr` must be NULL or point to a complete ABI ≥ 1 [`abi::Request`]
    /// (all eleven fields, i.e. a FlexiLib-rs host) such that, for all of
    /// `'a`:
    ///
    /// * the struct and every non-NULL pointer/length pair reachable from it
    ///   (target, method, content, the headers array and each header's name
    ///   and value) are readable, properly aligned and not modified;
    /// * `alloc`, if present, is safe to call with `arena` as described by
    ///   [`abi::AllocFn`].
    ///
    /// NULL pointers with any length are read as empty.
    pub unsafe fn from_raw(ptr: *const abi::Request) -> Option<Request<'a>> {
        // SAFETY: the caller guarantees `ptr` is NULL or valid for reads of a
        // whole `abi::Request` for `'a`; `as_ref` handles the NULL case.
        let raw: &'a abi::Request = unsafe { ptr.as_ref() }?;
        // SAFETY: forwarded from this function's contract.
        Some(unsafe { Self::from_ref(raw) })
    }

    /// Builds the view from a request the caller has a reference to.
    ///
    /// # Safety
    ///
    /// The pointer/length pairs and `alloc`/`arena` of `raw` must satisfy the
    /// contract of [`Request::from_raw`] for `'a`.
    pub(crate) unsafe fn from_ref(raw: &'a abi::Request) -> Request<'a> {
        // SAFETY: the caller guarantees each pointer/length pair describes
        // memory readable for `'a`; NULL pointers become empty.
        let method = unsafe { raw_bytes(raw.method, raw.method_len) };
        // SAFETY: as above.
        let target = unsafe { raw_bytes(raw.target, raw.target_len) };
        // SAFETY: as above.
        let body = unsafe { raw_bytes(raw.content, raw.content_len) };
        // SAFETY: as above.
        let headers = unsafe { raw_slice(raw.headers.cast_const(), raw.headers_len) };
        Request {
            method,
            target,
            body,
            headers,
            abi_version: raw.abi_version,
            alloc: raw.alloc,
            arena: raw.arena,
        }
    }

    /// The method, e.g. `"GET"`; `""` if it is not UTF-8.
    pub fn method(&self) -> &'a str {
        core::str::from_utf8(self.method).unwrap_or("")
    }

    /// The method as raw bytes.
    pub fn method_bytes(&self) -> &'a [u8] {
        self.method
    }

    /// The request target (path and query), e.g. `"/a/b?c=1"`; `""` if it is
    /// not UTF-8.
    pub fn target(&self) -> &'a str {
        core::str::from_utf8(self.target).unwrap_or("")
    }

    /// The request target as raw bytes.
    pub fn target_bytes(&self) -> &'a [u8] {
        self.target
    }

    /// The part of [`target`](Self::target) before the first `?`.
    pub fn path(&self) -> &'a str {
        let target = self.target();
        target.split_once('?').map_or(target, |(path, _)| path)
    }

    /// The part of [`target`](Self::target) after the first `?`, if there is
    /// a `?` (so `"/a?"` gives `Some("")`).
    pub fn query(&self) -> Option<&'a str> {
        self.target().split_once('?').map(|(_, query)| query)
    }

    /// The value of the first header called `name` (compared ignoring ASCII
    /// case); `None` if there is none or its value is not UTF-8.
    ///
    /// Use [`header_bytes`](Self::header_bytes) or
    /// [`has_header`](Self::has_header) when only presence matters.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.header_bytes(name)
            .and_then(|value| core::str::from_utf8(value).ok())
    }

    /// The raw value of the first header called `name` (compared ignoring
    /// ASCII case).
    pub fn header_bytes(&self, name: &str) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .map(|header| {
                // SAFETY: `self` was built by `from_raw`/`from_ref`, whose
                // contract makes every header's pointers valid for `'a`.
                unsafe { header_parts(header) }
            })
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// Whether a header called `name` is present (compared ignoring ASCII
    /// case), whatever its value.
    pub fn has_header(&self, name: &str) -> bool {
        self.header_bytes(name).is_some()
    }

    /// All headers, grouped by name in the order each name first appeared
    /// (`A, B, A` arrives as `A, A, B`). Names arrive lowercase
    /// from the host; a name that is not UTF-8 is yielded as `""`.
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            inner: self.headers.iter(),
        }
    }

    /// The number of request headers.
    pub fn header_count(&self) -> usize {
        self.headers.len()
    }

    /// The request body (empty when there is none).
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The ABI version the host announced in the request.
    pub fn abi_version(&self) -> usize {
        self.abi_version
    }

    /// Request-scoped memory from the host's arena: `None` if the host has no
    /// allocator (ABI < 1), the allocator fails or returns a misaligned
    /// pointer. A zero-size layout gets a dangling, aligned pointer without
    /// calling the host.
    pub(crate) fn alloc(&self, layout: Layout) -> Option<NonNull<u8>> {
        if self.abi_version < 1 {
            return None;
        }
        let alloc = self.alloc?;
        if layout.size() == 0 {
            return NonNull::new(ptr::without_provenance_mut(layout.align()));
        }
        // SAFETY: the contract of `from_raw` makes `alloc` safe to call with
        // `arena` for `'a`; size and align come from a valid `Layout`.
        let ptr = unsafe { alloc(self.arena, layout.size(), layout.align()) };
        let ptr = NonNull::new(ptr.cast::<u8>())?;
        (ptr.as_ptr().addr() % layout.align() == 0).then_some(ptr)
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &String::from_utf8_lossy(self.method))
            .field("target", &String::from_utf8_lossy(self.target))
            .field("headers", &self.header_count())
            .field("body_len", &self.body.len())
            .field("abi_version", &self.abi_version)
            .finish()
    }
}

/// Splits one host header into name and value bytes.
///
/// # Safety
///
/// The header's pointer/length pairs must be readable for as long as
/// `header` is borrowed (true for every header of a [`Request<'a>`], which
/// borrows them for `'a`).
unsafe fn header_parts(header: &abi::Header) -> (&[u8], &[u8]) {
    // SAFETY: forwarded to the caller.
    let name = unsafe { raw_bytes(header.name_ptr, header.name_len) };
    // SAFETY: forwarded to the caller.
    let value = unsafe { raw_bytes(header.value_ptr, header.value_len) };
    (name, value)
}

/// Iterator over a request's headers as `(name, value)` pairs; see
/// [`Request::headers`]. Its [`len`](ExactSizeIterator::len) is the number of
/// headers left.
#[derive(Clone)]
pub struct Headers<'a> {
    inner: core::slice::Iter<'a, abi::Header>,
}

/// Turns a header of a [`Request`] into an iterator item.
fn header_item<'a>((name, value): (&'a [u8], &'a [u8])) -> (&'a str, &'a [u8]) {
    (core::str::from_utf8(name).unwrap_or(""), value)
}

impl<'a> Iterator for Headers<'a> {
    type Item = (&'a str, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let header = self.inner.next()?;
        // SAFETY: `Headers` is only created by `Request::headers`, and every
        // header of a `Request<'a>` is valid for `'a` (see `from_raw`).
        Some(header_item(unsafe { header_parts(header) }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl DoubleEndedIterator for Headers<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let header = self.inner.next_back()?;
        // SAFETY: as in `next`.
        Some(header_item(unsafe { header_parts(header) }))
    }
}

impl ExactSizeIterator for Headers<'_> {}

impl FusedIterator for Headers<'_> {}

impl fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Headers")
            .field("left", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::TestRequest;

    #[test]
    fn accessors() {
        let req = TestRequest::new("POST", "/a/b?c=1&d")
            .header("Host", "example.com")
            .header("X-Two", "first")
            .header("x-two", "second")
            .header("x-bin", b"\xff\xfe".to_vec())
            .body("payload");
        req.view(|r| {
            assert_eq!(r.method(), "POST");
            assert_eq!(r.method_bytes(), b"POST");
            assert_eq!(r.target(), "/a/b?c=1&d");
            assert_eq!(r.target_bytes(), b"/a/b?c=1&d");
            assert_eq!(r.path(), "/a/b");
            assert_eq!(r.query(), Some("c=1&d"));
            assert_eq!(r.header("HOST"), Some("example.com"));
            assert_eq!(r.header("X-TWO"), Some("first"));
            assert_eq!(r.header_bytes("x-two"), Some(&b"first"[..]));
            assert_eq!(r.header("missing"), None);
            assert!(!r.has_header("missing"));
            assert_eq!(r.header("x-bin"), None, "non-UTF-8 value");
            assert!(r.has_header("X-Bin"));
            assert_eq!(r.header_count(), 4);
            assert_eq!(r.abi_version(), crate::abi::ABI_VERSION);
            assert_eq!(r.body(), b"payload");
            let headers = r.headers();
            assert_eq!(headers.len(), 4);
            let names: Vec<&str> = headers.map(|(name, _)| name).collect();
            assert_eq!(names, ["host", "x-two", "x-two", "x-bin"]);
            assert_eq!(r.headers().next_back(), Some(("x-bin", &b"\xff\xfe"[..])));
        });
    }

    #[test]
    fn empty_fields_are_null_pointers_read_as_empty() {
        TestRequest::new("", "").view(|r| {
            assert_eq!(r.method(), "");
            assert_eq!(r.target(), "");
            assert_eq!(r.path(), "");
            assert_eq!(r.query(), None);
            assert!(r.body().is_empty());
            assert_eq!(r.header_count(), 0);
            assert_eq!(r.headers().next(), None);
            assert_eq!(r.header("host"), None);
        });
    }

    #[test]
    fn path_and_query_edges() {
        TestRequest::new("GET", "/p?").view(|r| {
            assert_eq!((r.path(), r.query()), ("/p", Some("")));
        });
        TestRequest::new("GET", "/p?a?b").view(|r| {
            assert_eq!((r.path(), r.query()), ("/p", Some("a?b")));
        });
        TestRequest::new("GET", b"/\xff?x".to_vec()).view(|r| {
            assert_eq!((r.target(), r.path(), r.query()), ("", "", None));
            assert_eq!(r.target_bytes(), b"/\xff?x");
        });
    }

    #[test]
    fn from_raw_null_is_none() {
        // SAFETY: NULL is explicitly allowed.
        let req = unsafe { super::Request::from_raw(core::ptr::null()) };
        assert!(req.is_none());
    }
}

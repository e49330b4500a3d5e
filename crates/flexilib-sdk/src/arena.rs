//! Copying a [`Response`] into the host's request arena.
//!
//! Everything the host reads — the [`abi::Response`] struct, its headers
//! array and all bytes (body, reason, header names and values) — is placed in
//! one block from `req.alloc(req.arena, size, align)`. The block stays valid
//! until the host has copied the response and is released by the host, so
//! the library never frees it. Zero-length fields point into the block (at
//! its end), so the host never sees a dangling pointer.

use core::alloc::Layout;
use core::ffi::c_char;
use core::ptr::{self, NonNull};

use flexilib_abi as abi;

use crate::{Request, Response};

/// Copies `resp` into memory from the host's request arena and returns the
/// pointer to hand back from `handle_request`.
///
/// Returns NULL — which the host answers with a 500 — when the host has no
/// allocator (`abi_version < 1` or `alloc` is NULL: the SDK requires a
/// FlexiLib-rs host, ABI ≥ 1), when the allocator fails (the host is out
/// of memory), or when the sizes overflow.
pub fn copy_response(req: &Request<'_>, resp: &Response) -> *mut abi::Response {
    try_copy(req, resp, None).map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// [`copy_response`] for ABI 2: the block starts with a
/// `flexilib_response_v2` carrying `flags`.
pub(crate) fn copy_response_v2(
    req: &Request<'_>,
    resp: &Response,
    flags: usize,
) -> *mut abi::Response {
    try_copy(req, resp, Some(flags)).map_or(ptr::null_mut(), NonNull::as_ptr)
}

/// Where each part goes inside the single arena block.
struct Plan {
    layout: Layout,
    headers_offset: usize,
    bytes_offset: usize,
}

impl Plan {
    /// Lays out struct, headers array and bytes; `None` on overflow.
    fn new(resp: &Response, v2: bool) -> Option<Plan> {
        let mut bytes = resp.body_bytes().len();
        bytes = bytes.checked_add(resp.reason_phrase().map_or(0, str::len))?;
        for (name, value) in resp.headers() {
            bytes = bytes.checked_add(name.len())?.checked_add(value.len())?;
        }
        let headers = Layout::array::<abi::Header>(resp.headers().len()).ok()?;
        let head = if v2 {
            Layout::new::<abi::ResponseV2>()
        } else {
            Layout::new::<abi::Response>()
        };
        let (layout, headers_offset) = head.extend(headers).ok()?;
        let bytes = Layout::array::<u8>(bytes).ok()?;
        let (layout, bytes_offset) = layout.extend(bytes).ok()?;
        Some(Plan {
            layout,
            headers_offset,
            bytes_offset,
        })
    }
}

/// Appends byte strings to the bytes region of the block.
struct ByteWriter {
    next: *mut u8,
}

impl ByteWriter {
    /// Copies `src` to the cursor and returns its pointer/length pair.
    ///
    /// # Safety
    ///
    /// `src.len()` bytes starting at the cursor must be writable and must not
    /// overlap `src`.
    unsafe fn put(&mut self, src: &[u8]) -> (*mut c_char, usize) {
        let start = self.next;
        // SAFETY: the caller guarantees `src.len()` writable, non-overlapping
        // bytes at `start`.
        unsafe { ptr::copy_nonoverlapping(src.as_ptr(), start, src.len()) };
        // SAFETY: stays within (or one past the end of) the same block, as
        // the caller guaranteed room for `src.len()` bytes.
        self.next = unsafe { start.add(src.len()) };
        (start.cast::<c_char>(), src.len())
    }
}

fn try_copy(
    req: &Request<'_>,
    resp: &Response,
    flags: Option<usize>,
) -> Option<NonNull<abi::Response>> {
    let plan = Plan::new(resp, flags.is_some())?;
    let base = req.alloc(plan.layout)?.as_ptr();
    // SAFETY: both offsets lie within the `plan.layout.size()` bytes just
    // allocated at `base` (Layout::extend computed them).
    let (headers_ptr, bytes_ptr) = unsafe {
        (
            base.add(plan.headers_offset).cast::<abi::Header>(),
            base.add(plan.bytes_offset),
        )
    };
    let mut bytes = ByteWriter { next: bytes_ptr };
    // SAFETY: the bytes region was sized by `Plan::new` for exactly the body,
    // the reason and every header name and value, which are written once
    // each below; the block is fresh, so it overlaps none of them.
    let (body_ptr, body_len) = unsafe { bytes.put(resp.body_bytes()) };
    let (reason_ptr, reason_len) = match resp.reason_phrase() {
        // SAFETY: as above.
        Some(reason) => unsafe { bytes.put(reason.as_bytes()) },
        None => (ptr::null_mut(), 0),
    };
    for (i, (name, value)) in resp.headers().iter().enumerate() {
        // SAFETY: as above.
        let (name_ptr, name_len) = unsafe { bytes.put(name.as_bytes()) };
        // SAFETY: as above.
        let (value_ptr, value_len) = unsafe { bytes.put(value.as_bytes()) };
        let header = abi::Header {
            name_ptr,
            name_len,
            value_ptr,
            value_len,
        };
        // SAFETY: `i < headers().len()`, the array was laid out for that many
        // `abi::Header`s at an offset aligned for them, and `base` is
        // aligned to the block's alignment (checked by `Request::alloc`).
        unsafe { headers_ptr.add(i).write(header) };
    }
    let response = base.cast::<abi::Response>();
    // SAFETY: the block starts with room for one `abi::Response` and `base`
    // is aligned for it (the layout's alignment is at least its alignment).
    unsafe {
        response.write(abi::Response {
            ptr: body_ptr,
            len: body_len,
            headers: headers_ptr,
            headers_len: resp.headers().len(),
            status: usize::from(resp.status_code()),
            reason_ptr,
            reason_len,
        });
    }
    if let Some(flags) = flags {
        // SAFETY: with flags the block starts with room for a whole
        // `abi::ResponseV2` (see `Plan::new`), aligned as above; its `base`
        // was written just now.
        unsafe { (*response.cast::<abi::ResponseV2>()).flags = flags };
    }
    NonNull::new(response)
}

#[cfg(test)]
mod tests {
    use crate::testing::TestRequest;
    use crate::{Request, Response};

    fn full(_: &Request<'_>) -> Response {
        Response::ok("body bytes")
            .status(201)
            .reason("Made It")
            .header("X-A", "1")
            .header("Content-Type", "text/x-test")
    }

    fn empty(_: &Request<'_>) -> Response {
        Response::new()
    }

    #[test]
    fn copies_status_reason_headers_body() {
        let resp = TestRequest::new("GET", "/").dispatch(full).expect("copied");
        assert_eq!(resp.status, 201);
        assert_eq!(resp.reason.as_deref(), Some(&b"Made It"[..]));
        assert_eq!(
            resp.headers,
            [
                (b"X-A".to_vec(), b"1".to_vec()),
                (b"Content-Type".to_vec(), b"text/x-test".to_vec()),
            ]
        );
        assert_eq!(resp.body, b"body bytes");
    }

    #[test]
    fn empty_response_has_no_reason_and_no_headers() {
        let resp = TestRequest::new("GET", "/")
            .dispatch(empty)
            .expect("copied");
        assert_eq!(resp.status, 200);
        assert_eq!(resp.reason, None);
        assert!(resp.headers.is_empty() && resp.body.is_empty());
    }

    #[test]
    fn empty_fields_point_into_the_block() {
        TestRequest::new("GET", "/").view(|req| {
            let raw = super::copy_response(req, &Response::new());
            // SAFETY: non-NULL results point to a response in the live arena.
            let raw = unsafe { raw.as_ref() }.expect("copied");
            assert!(!raw.ptr.is_null() && raw.len == 0);
            assert!(!raw.headers.is_null() && raw.headers_len == 0);
            assert!(raw.headers.is_aligned());
            assert!(raw.reason_ptr.is_null() && raw.reason_len == 0);
        });
    }

    #[test]
    fn null_without_allocator() {
        assert_eq!(
            TestRequest::new("GET", "/").without_alloc().dispatch(full),
            None
        );
        assert_eq!(
            TestRequest::new("GET", "/").abi_version(0).dispatch(full),
            None
        );
    }

    #[test]
    fn null_when_arena_is_full() {
        assert_eq!(
            TestRequest::new("GET", "/").arena_limit(64).dispatch(full),
            None
        );
        let fits = TestRequest::new("GET", "/")
            .arena_limit(4096)
            .dispatch(full);
        assert_eq!(fits.map(|r| r.status), Some(201));
    }
}

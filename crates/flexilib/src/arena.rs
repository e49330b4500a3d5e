//! The per-request arena of a handler thread.
//!
//! Each handler thread owns one [`RequestArena`]. The request handed to a
//! library (method, target, headers, body) is copied into it, and libraries
//! allocate their response from it through the ABI's `alloc` callback
//! ([`arena_alloc`]). After the response has been copied out, the arena is
//! reset, keeping its memory for the next request, unless it grew past the
//! retain cap, in which case it is freed and pre-allocated afresh so that one
//! huge response does not pin memory for ever.

use std::alloc::Layout;
use std::cell::Cell;
use std::ffi::c_void;
use std::ptr;

use bumpalo::Bump;

/// Bump arena with usage accounting, reset between requests.
pub struct RequestArena {
    bump: Bump,
    used: Cell<usize>,
    prealloc: usize,
    retain: usize,
}

/// What the arena looked like around one request, for the access log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArenaUsage {
    /// Bytes the arena held ready when the request started.
    pub preallocated: usize,
    /// Bytes handed out during the request.
    pub allocated: usize,
}

impl RequestArena {
    /// An arena pre-warmed with `prealloc` bytes that keeps at most `retain` bytes between requests.
    pub fn new(prealloc: usize, retain: usize) -> Self {
        Self {
            bump: prewarmed(prealloc),
            used: Cell::new(0),
            prealloc,
            retain: retain.max(prealloc),
        }
    }

    /// Bytes currently reserved by the arena's chunks.
    pub fn capacity(&self) -> usize {
        self.bump.allocated_bytes()
    }

    /// Bytes handed out since the last reset.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// Copies `bytes` into the arena, followed by a NUL when `nul` is set.
    /// Returns `None` when memory is exhausted.
    pub fn copy(&self, bytes: &[u8], nul: bool) -> Option<&mut [u8]> {
        let len = bytes.len() + usize::from(nul);
        let dst = self.bump.try_alloc_slice_fill_copy(len, 0u8).ok()?;
        dst[..bytes.len()].copy_from_slice(bytes);
        self.used.set(self.used.get() + len);
        Some(dst)
    }

    /// Moves `value` into the arena. Returns `None` when memory is exhausted.
    pub fn alloc_value<T>(&self, value: T) -> Option<&mut T> {
        let dst = self.bump.try_alloc(value).ok()?;
        self.used.set(self.used.get() + std::mem::size_of::<T>());
        Some(dst)
    }

    /// An arena slice of `len` copies of `fill`. Returns `None` when memory is exhausted.
    pub fn slice_filled<T: Copy>(&self, len: usize, fill: T) -> Option<&mut [T]> {
        let dst = self.bump.try_alloc_slice_fill_copy(len, fill).ok()?;
        self.used
            .set(self.used.get() + len * std::mem::size_of::<T>());
        Some(dst)
    }

    /// Raw allocation for the library callback.
    fn alloc_raw(&self, size: usize, align: usize) -> *mut c_void {
        let Ok(layout) = Layout::from_size_align(size.max(1), align.max(1)) else {
            return ptr::null_mut();
        };
        match self.bump.try_alloc_layout(layout) {
            Ok(p) => {
                self.used.set(self.used.get() + size);
                p.as_ptr().cast()
            }
            Err(_) => ptr::null_mut(),
        }
    }

    /// Ends a request: reports its usage and makes the arena ready for the next one.
    pub fn finish(&mut self, preallocated: usize) -> ArenaUsage {
        let usage = ArenaUsage {
            preallocated,
            allocated: self.used.replace(0),
        };
        if self.bump.allocated_bytes() > self.retain {
            self.bump = prewarmed(self.prealloc);
        } else {
            self.bump.reset();
        }
        usage
    }

    /// The opaque pointer libraries pass back to [`arena_alloc`]: the
    /// arena's address, so an arena handed to a library must not move
    /// (arenas live in a `Box`).
    pub fn as_ffi_handle(&self) -> *mut c_void {
        ptr::from_ref(self).cast_mut().cast()
    }
}

/// A bump arena holding `bytes` ready, or an empty one if that much memory
/// cannot be had (the request then allocates as it goes, and fails cleanly
/// if memory really is exhausted).
fn prewarmed(bytes: usize) -> Bump {
    Bump::try_with_capacity(bytes).unwrap_or_else(|_| Bump::new())
}

/// The ABI's `alloc` callback: `size` bytes aligned to `align` from the arena behind `arena`.
///
/// # Safety
/// `arena` must be the handle from [`RequestArena::as_ffi_handle`] of an arena
/// that is alive and used by one thread at a time; the server passes it in
/// the request and keeps the arena alive and untouched (but for this callback)
/// for the whole `handle_request` call, and for a request answered later
/// (ABI 2), until it is completed.
pub unsafe extern "C" fn arena_alloc(arena: *mut c_void, size: usize, align: usize) -> *mut c_void {
    if arena.is_null() || !align.is_power_of_two() {
        return ptr::null_mut();
    }
    // SAFETY: per this function's contract `arena` points to a live
    // `RequestArena` used by the calling thread alone; we only take a
    // shared reference, and `RequestArena` mutates only through `Cell` and
    // bumpalo's interior mutability, which are single-threaded like the call.
    let arena = unsafe { &*arena.cast::<RequestArena>() };
    arena.alloc_raw(size, align)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_count_and_reset() {
        let mut arena = RequestArena::new(1024, 4096);
        let pre = arena.capacity();
        assert!(pre >= 1024);
        let copied = arena.copy(b"GET", true).map(|s| s.to_vec());
        assert_eq!(copied.as_deref(), Some(&b"GET\0"[..]));
        assert_eq!(arena.used(), 4);
        let usage = arena.finish(pre);
        assert_eq!(
            usage,
            ArenaUsage {
                preallocated: pre,
                allocated: 4
            }
        );
        assert_eq!(arena.used(), 0);
    }

    #[test]
    fn oversized_arena_is_replaced() {
        let mut arena = RequestArena::new(1024, 4096);
        let pre = arena.capacity();
        assert!(arena.copy(&vec![7u8; 64 * 1024], false).is_some());
        assert!(arena.capacity() > 4096);
        arena.finish(pre);
        assert!(arena.capacity() <= 4096, "capacity {}", arena.capacity());
    }

    #[test]
    fn an_impossible_preallocation_gives_an_empty_arena() {
        let arena = RequestArena::new(usize::MAX / 2, usize::MAX / 2);
        assert_eq!(arena.capacity(), 0);
        assert!(arena.copy(b"still works", false).is_some());
    }

    #[test]
    fn callback_aligns_and_rejects_bad_alignment() {
        let arena = RequestArena::new(1024, 4096);
        // SAFETY: the handle comes from a live arena used on this thread only.
        let p = unsafe { arena_alloc(arena.as_ffi_handle(), 24, 16) };
        assert!(!p.is_null());
        assert_eq!(p as usize % 16, 0);
        // SAFETY: as above.
        let bad = unsafe { arena_alloc(arena.as_ffi_handle(), 8, 3) };
        assert!(bad.is_null());
    }
}

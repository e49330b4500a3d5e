//! `zigInit`: the original FlexiLib's hook for Zig libraries.
//!
//! A library may export `void zigInit(void *allocator)`. Like the original,
//! the server calls it on the handler thread before every `handle_request`,
//! passing a pointer to a Zig `std.mem.Allocator` value. Its memory comes
//! from the request arena, so it needs no freeing and stays valid until the
//! request ends (after `request_deinit`); the `Allocator` value itself lives
//! in the arena too.
//!
//! The layout is Zig 0.13's, the version the original was built with and so
//! the one its libraries expect (later Zig changed the interface: Zig 0.17
//! has a fourth function, `remap`, and an `Alignment` enum):
//!
//! * `Allocator` is `{ ptr: *anyopaque, vtable: *const VTable }`, in that
//!   order (Zig keeps the declared order of these two pointer fields);
//! * `VTable` is `{ alloc, resize, free }`:
//!   * `alloc(ctx, len, ptr_align: u8, ret_addr) ?[*]u8`, `ptr_align` being
//!     log2 of the alignment;
//!   * `resize(ctx, buf: []u8, buf_align: u8, new_len, ret_addr) bool`;
//!   * `free(ctx, buf: []u8, buf_align: u8, ret_addr) void`.
//!
//! Zig calls these through pointers of its unspecified calling convention,
//! which its LLVM backend lowers to `fastcc`. On x86-64 that assigns
//! registers as the C convention does, with a slice passed as two arguments
//! (pointer, length). Two differences matter and are handled here: a `u8`
//! argument is not widened by the caller (so it is read as a full register
//! and masked), and a `bool` result is read from bit 0 of `al` (so a whole
//! register holding 0 or 1 is returned). `tests/zig_libraries.rs` checks
//! this against a library built with Zig 0.13.
//!
//! `resize` succeeds only when shrinking (the arena cannot grow a block in
//! place), so Zig falls back to allocate-copy-free; `free` does nothing.

use std::ffi::c_void;
use std::ptr;

use flexilib_abi::ZigInitFn;

use crate::arena::{arena_alloc, RequestArena};

/// Zig 0.13's `std.mem.Allocator`.
#[repr(C)]
#[derive(Clone, Copy)]
struct Allocator {
    ptr: *mut c_void,
    vtable: &'static VTable,
}

/// Zig 0.13's `std.mem.Allocator.VTable`.
#[repr(C)]
struct VTable {
    alloc: unsafe extern "C" fn(*mut c_void, usize, usize, usize) -> *mut u8,
    resize: extern "C" fn(*mut c_void, *mut u8, usize, usize, usize, usize) -> usize,
    free: extern "C" fn(*mut c_void, *mut u8, usize, usize, usize),
}

static VTABLE: VTable = VTable {
    alloc,
    resize,
    free,
};

/// Calls the library's `zigInit` with an allocator over `arena`. Returns
/// `None` when the arena cannot hold the allocator value.
pub fn init_request(zig_init: ZigInitFn, arena: &RequestArena) -> Option<()> {
    let allocator = Allocator {
        ptr: arena.as_ffi_handle(),
        vtable: &VTABLE,
    };
    let allocator = arena.slice_filled(1, allocator)?;
    // SAFETY: `zigInit` takes one pointer (the ABI in flexilib.h). It points
    // to an `Allocator` in the arena, whose `ptr` is that arena's handle: the
    // arena belongs to this handler thread and is neither reset nor dropped
    // before the request's `handle_request` and `request_deinit` return, so
    // the value and every block it hands out stay valid that long.
    unsafe { zig_init(allocator.as_mut_ptr().cast()) };
    Some(())
}

/// `alloc(ctx, len, ptr_align: u8, ret_addr) ?[*]u8`. The `u8` comes in the
/// low byte of a register whose upper bits are undefined.
///
/// # Safety
/// `ctx` must be the handle of a live arena used by the calling thread only:
/// it is the `ptr` of an [`Allocator`] made by [`init_request`], which the
/// library uses during its request on the thread that received it.
unsafe extern "C" fn alloc(ctx: *mut c_void, len: usize, ptr_align: usize, _: usize) -> *mut u8 {
    let Some(align) = 1usize.checked_shl((ptr_align & 0xff) as u32) else {
        return ptr::null_mut();
    };
    // SAFETY: `ctx` is such an arena handle per this function's contract,
    // which is exactly `arena_alloc`'s.
    unsafe { arena_alloc(ctx, len, align) }.cast()
}

/// `resize(ctx, buf: []u8, buf_align: u8, new_len, ret_addr) bool`: in
/// place, so only a shrink succeeds.
extern "C" fn resize(
    _: *mut c_void,
    _: *mut u8,
    len: usize,
    _: usize,
    new_len: usize,
    _: usize,
) -> usize {
    usize::from(new_len <= len)
}

/// `free(ctx, buf: []u8, buf_align: u8, ret_addr) void`: the arena frees
/// everything when the request ends.
extern "C" fn free(_: *mut c_void, _: *mut u8, _: usize, _: usize, _: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_zig_0_13() {
        assert_eq!(std::mem::size_of::<Allocator>(), 16);
        assert_eq!(std::mem::offset_of!(Allocator, ptr), 0);
        assert_eq!(std::mem::offset_of!(Allocator, vtable), 8);
        assert_eq!(std::mem::offset_of!(VTable, alloc), 0);
        assert_eq!(std::mem::offset_of!(VTable, resize), 8);
        assert_eq!(std::mem::offset_of!(VTable, free), 16);
    }

    #[test]
    fn alloc_masks_the_alignment_byte() {
        let arena = RequestArena::new(1024, 4096);
        let ctx = arena.as_ffi_handle();
        // Log2 alignment 6 (64 bytes) with garbage above the low byte.
        // SAFETY: `ctx` is a live arena used on this thread only.
        let p = unsafe { (VTABLE.alloc)(ctx, 24, 0xdead_be00 | 6, 0) };
        assert!(!p.is_null());
        assert_eq!(p as usize % 64, 0);
        // SAFETY: as above; 2^200 is no alignment.
        let bad = unsafe { (VTABLE.alloc)(ctx, 8, 200, 0) };
        assert!(bad.is_null());
    }

    #[test]
    fn resize_only_shrinks_and_free_is_a_no_op() {
        let p = ptr::null_mut();
        assert_eq!((VTABLE.resize)(p, p.cast(), 16, 0, 8, 0), 1);
        assert_eq!((VTABLE.resize)(p, p.cast(), 16, 0, 16, 0), 1);
        assert_eq!((VTABLE.resize)(p, p.cast(), 16, 0, 17, 0), 0);
        (VTABLE.free)(p, p.cast(), 16, 0, 0);
    }

    #[test]
    fn zig_init_receives_an_allocator_over_the_arena() {
        thread_local! {
            static SEEN: std::cell::Cell<*mut c_void> = const { std::cell::Cell::new(ptr::null_mut()) };
        }
        unsafe extern "C" fn record(allocator: *mut c_void) {
            SEEN.with(|seen| seen.set(allocator));
        }
        let arena = RequestArena::new(1024, 4096);
        assert!(init_request(record, &arena).is_some());
        let seen = SEEN.with(std::cell::Cell::get).cast::<Allocator>();
        assert!(!seen.is_null());
        // SAFETY: `record` stored the pointer to the arena's `Allocator`,
        // and the arena is still alive and untouched.
        let allocator = unsafe { *seen };
        assert_eq!(allocator.ptr, arena.as_ffi_handle());
        assert!(ptr::eq(allocator.vtable, &VTABLE));
    }
}

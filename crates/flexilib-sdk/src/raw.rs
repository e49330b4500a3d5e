//! Turning the host's pointer + length pairs into slices.
//!
//! The only job of this module is to never call `slice::from_raw_parts` with
//! a pointer it must not be called with: a NULL pointer (which the C ABI
//! allows for empty fields) or a misaligned one is read as an empty slice.

use core::slice;

/// Borrows `len` elements at `ptr`, or returns an empty slice when `ptr` is
/// NULL, misaligned or `len` is zero.
///
/// # Safety
///
/// When `ptr` is non-NULL, aligned and `len` is non-zero, `ptr` must point to
/// `len` initialised `T`s inside one allocation that stay valid and unmodified
/// for `'a`, and `len * size_of::<T>()` must not exceed `isize::MAX`.
pub(crate) unsafe fn raw_slice<'a, T>(ptr: *const T, len: usize) -> &'a [T] {
    if ptr.is_null() || len == 0 || !ptr.is_aligned() {
        return &[];
    }
    // SAFETY: `ptr` is non-NULL and aligned (checked above) and the caller
    // guarantees it points to `len` valid `T`s that live for `'a`.
    unsafe { slice::from_raw_parts(ptr, len) }
}

/// Borrows `len` bytes at `ptr` (a C `char *`), or an empty slice when `ptr`
/// is NULL or `len` is zero.
///
/// # Safety
///
/// As for [`raw_slice`]: a non-NULL `ptr` with non-zero `len` must point to
/// `len` readable bytes that stay valid and unmodified for `'a`.
pub(crate) unsafe fn raw_bytes<'a>(ptr: *const core::ffi::c_char, len: usize) -> &'a [u8] {
    // SAFETY: forwarded to the caller; `u8` and `c_char` have the same size
    // and alignment.
    unsafe { raw_slice(ptr.cast::<u8>(), len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ptr;

    #[test]
    fn null_and_empty_are_empty() {
        // SAFETY: NULL is always accepted and read as empty.
        let a: &[u32] = unsafe { raw_slice(ptr::null(), 5) };
        assert!(a.is_empty());
        let data = [1u8, 2, 3];
        // SAFETY: `data` outlives the borrow; len 0 reads nothing.
        let b = unsafe { raw_bytes(data.as_ptr().cast(), 0) };
        assert!(b.is_empty());
        // SAFETY: `data` holds 3 bytes and outlives the borrow.
        let c = unsafe { raw_bytes(data.as_ptr().cast(), 3) };
        assert_eq!(c, &[1, 2, 3]);
    }
}

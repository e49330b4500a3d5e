//! Native library targets: shared objects called through the C ABI.
//!
//! * [`library`] — one configured library and its generations: loaded on
//!   first use, reloaded when the file changes.
//! * [`copy`] — private copies of library files, one per generation.
//! * [`ffi`] — the only place that touches `dlopen` and the library's raw
//!   structs: loading, calling `handle_request`, copying the response out.
//! * [`zig`] — the `zigInit` export of Zig libraries written for the
//!   original: a Zig 0.13 `std.mem.Allocator` over the request arena.

pub mod copy;
pub mod ffi;
pub mod library;
pub mod zig;

pub use ffi::{CallError, LibraryResponse, LoadError};
pub use library::{NativeLibrary, Reloaded};

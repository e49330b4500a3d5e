//! Native library targets: shared objects called through the C ABI.
//!
//! * [`library`] — one configured library and its generations: loaded on
//!   first use, reloaded when the file changes.
//! * [`copy`] — private copies of library files, one per generation.
//! * [`elf`] — the header checks a file passes before it is copied and loaded.
//! * [`ffi`] — the only place that touches `dlopen` and the library's raw
//!   structs: loading, calling `handle_request`, copying the response out.

pub mod copy;
pub mod elf;
pub mod ffi;
pub mod library;

pub use ffi::{CallError, LibraryResponse, LoadError};
pub use library::{NativeLibrary, Reloaded};

//! Native library targets: shared objects called through the C ABI.
//!
//! * [`library`] — one configured library: loaded on first use, cached.
//! * [`ffi`] — the only place that touches `dlopen` and the library's raw
//!   structs: loading, calling `handle_request`, copying the response out.

pub mod ffi;
pub mod library;

pub use ffi::{CallError, LibraryResponse, LoadError};
pub use library::NativeLibrary;

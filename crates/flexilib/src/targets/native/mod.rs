//! Native library targets: shared objects called through the C ABI.
//!
//! * [`library`] — one configured library and its generations: loaded on
//!   first use, reloaded when the file changes.
//! * [`copy`] — private copies of library files, one per generation.
//! * [`ffi`] — the only place that touches `dlopen` and the library's raw
//!   structs: loading, calling `handle_request`, copying the response out.
//! * [`serve`] — one request to a library: body, handler slot, reply.

pub mod copy;
pub mod ffi;
pub mod library;
mod serve;

pub use ffi::{CallError, LibraryResponse, LoadError};
pub use library::{NativeLibrary, Reloaded};
pub use serve::{reload, serve};

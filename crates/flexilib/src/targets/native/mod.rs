//! Native library targets: shared objects called through the C ABI.
//!
//! * [`route`] — one library route: the shared library and, for ABI-2
//!   libraries, the route's instance generations.
//! * [`library`] — one configured library file and its generations: loaded
//!   on first use, reloaded when the file changes.
//! * [`instance`] — building and freeing per-route instances (ABI 2).
//! * [`copy`] — private copies of library files, one per generation.
//! * [`elf`] — the header checks a file passes before it is copied and loaded.
//! * [`ffi`] — the FFI boundary: `dlopen`, the library's raw structs,
//!   calling `handle_request`, copying the response out.
//! * [`calls`] — calls that outlive `handle_request` (asynchronous
//!   completion, streamed bodies) and the host callbacks behind them.
//! * [`reply`] — a library's response validated into a reply.
//! * [`serve`] — one request to a library route.
//! * [`upgrade`] — a connection a library took over with `101` (ABI 3).
//! * [`zig`] — the `zigInit` export of Zig libraries written for the
//!   original: a Zig 0.13 `std.mem.Allocator` over the request arena.

pub mod calls;
pub mod copy;
pub mod elf;
pub mod ffi;
pub mod instance;
pub mod library;
pub mod reply;
pub mod route;
mod serve;
pub mod upgrade;
pub mod zig;

pub use ffi::{LibraryResponse, LoadError};
pub use library::{NativeLibrary, Reloaded};
pub use route::LibraryRoute;
pub use serve::serve;

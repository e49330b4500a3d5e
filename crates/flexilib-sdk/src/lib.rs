//! Write [FlexiLib](https://git.lerch.org/lobo/FlexiLib) request handlers in
//! safe Rust.
//!
//! A FlexiLib handler library is a shared object exporting the C function
//! `handle_request` (see `include/flexilib.h` and [`abi`]). This crate hides
//! that ABI: you write `fn(&Request<'_>) -> Response` and
//! [`export_handler!`] generates the exports, which
//!
//! * give the handler a zero-copy [`Request`] view of the host's request,
//! * catch panics (a panic becomes a `500` instead of aborting the server),
//! * copy the [`Response`] into request-scoped memory from the host's arena
//!   (nothing to free, nothing leaked).
//!
//! The SDK requires a FlexiLib-rs host (ABI ≥ 1, see
//! [`MIN_HOST_ABI_VERSION`]): it needs the host's `alloc` callback, and the
//! generated `flexilib_init` refuses to load into an older host. Build with
//! `panic = "unwind"` (the default); with `panic = "abort"` a handler panic
//! still takes the whole server down.
//!
//! # Example: a complete handler library
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [package]
//! name = "hello-handler"
//! version = "0.1.0"
//! edition = "2021"
//!
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! flexilib-sdk = { path = "../flexilib/crates/flexilib-sdk" }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```no_run
//! use std::fmt::Write as _;
//!
//! use flexilib_sdk::{export_handler, Request, Response};
//!
//! /// Greets the caller; `GET /hello?name=bob` → `hello, bob`.
//! fn hello(req: &Request<'_>) -> Response {
//!     if req.method() != "GET" {
//!         return Response::ok("only GET here\n").status(405);
//!     }
//!     let name = req
//!         .query()
//!         .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("name=")))
//!         .unwrap_or("world");
//!     let mut resp = Response::new().header("Content-Type", "text/plain; charset=utf-8");
//!     let _ = writeln!(resp, "hello, {name}");
//!     if let Some(agent) = req.header("user-agent") {
//!         let _ = writeln!(resp, "({} headers, user agent {agent})", req.header_count());
//!     }
//!     resp
//! }
//!
//! export_handler!(hello);
//! # fn main() {}
//! ```
//!
//! `cargo build --release` produces `target/release/libhello_handler.so`;
//! route requests to it in the server's configuration. Handlers can be unit
//! tested without a server through [`testing::TestRequest`].
//!
//! # ABI 2: instances, answering later, streaming
//!
//! A library exported with [`export_instance!`] instead gets one
//! [`Instance`] per route, built from the route's options
//! (`/w = lib/libmine.so script=app.js`) and rebuilt when a file it read
//! changes; its handler may answer now, later from any thread
//! ([`Call::respond_later`], holding no handler slot meanwhile), or with a
//! body streamed at the client's pace ([`Call::stream`], [`BodyWriter`]).
//! Such a library needs an ABI-2 host and refuses to load into an older one.
//! See [`export_instance!`] for a complete example. An instance may also
//! report gauges of its own (instances of its runtime alive, requests
//! queued) on the server's admin listener: see [`Instance::gauges`].
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// The raw C ABI (`flexilib-abi`), re-exported so libraries need only depend
/// on this crate.
pub use flexilib_abi as abi;

mod arena;
mod call;
mod dispatch;
mod dispatch_instance;
mod gauges;
mod instance;
mod macros;
mod raw;
mod request;
mod response;
pub mod testing;
mod upgrade;

pub use arena::copy_response;
pub use call::{Answer, BodyWriter, Call, Responder, WriteError};
pub use dispatch::MIN_HOST_ABI_VERSION;
#[doc(hidden)]
pub use dispatch::{__dispatch, __init};
pub use dispatch_instance::MIN_INSTANCE_HOST_ABI_VERSION;
#[doc(hidden)]
pub use dispatch_instance::{
    __handle_instance, __init_instance, __instance_free, __instance_gauges, __instance_new,
};
pub use gauges::Gauges;
pub use instance::{Instance, InstanceConfig};
pub use request::{Headers, Request};
pub use response::Response;
pub use upgrade::{ReadError, Upgraded};

/// A request handler, as taken by [`export_handler!`].
pub type Handler = for<'r, 'a> fn(&'r Request<'a>) -> Response;

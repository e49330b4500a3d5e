//! The control runtime: where tasks tied to no client connection run
//! (Lambda instances, their Runtime API, asynchronous invocations), away
//! from the I/O threads that a library call may block. The worker starts
//! it; everything else only asks for its handle.

use std::sync::OnceLock;

use tokio::runtime::Handle;

/// Name of the control runtime's thread.
pub const CONTROL_THREAD_NAME: &str = "flexilib-control";

static CONTROL: OnceLock<Handle> = OnceLock::new();

/// Sets the control runtime (once, at start; later calls are ignored).
pub fn set(handle: Handle) {
    let _ = CONTROL.set(handle);
}

/// The control runtime. Before it is set (unit tests), the runtime of the
/// caller.
///
/// Tokio I/O objects (sockets, pipes, child processes) belong to the runtime
/// they were created in: create them inside `handle().enter()` when the
/// control runtime's tasks will use them.
pub fn handle() -> Handle {
    CONTROL.get().cloned().unwrap_or_else(Handle::current)
}

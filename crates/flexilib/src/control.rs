//! The control runtime: where tasks tied to no client connection run
//! (Lambda instances' processes, log forwarders, deadlines, asynchronous
//! invocations), away from the I/O threads that a library call may block.
//! The worker starts it; everything else only asks for its handle.
//!
//! One exception, for speed: a Lambda instance's Runtime API is served by
//! the core thread that started the instance ([`home`]), so an invocation
//! from that thread (the usual case: the pool prefers instances homed on
//! the asking thread) hands its event over and gets its result back without
//! waking another thread of the server.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;

use parking_lot::Mutex;

use tokio::runtime::Handle;

/// Name of the control runtime's thread.
pub const CONTROL_THREAD_NAME: &str = "flexilib-control";

static CONTROL: OnceLock<Handle> = OnceLock::new();

/// Sets the control runtime (once, at start; later calls are ignored).
pub fn set(handle: Handle) {
    let _ = CONTROL.set(handle.clone());
    for task in PENDING.lock().drain(..) {
        handle.spawn(task);
    }
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

/// Tasks spawned before the control runtime was set (the first route
/// table is built before it starts), spawned by [`set`].
static PENDING: Mutex<Vec<Pin<Box<dyn Future<Output = ()> + Send>>>> = Mutex::new(Vec::new());

/// Spawns `task` on the control runtime, or as soon as it is set (never,
/// in unit tests that set none).
pub fn spawn_soon(task: impl Future<Output = ()> + Send + 'static) {
    let mut pending = PENDING.lock();
    match CONTROL.get() {
        Some(handle) => {
            handle.spawn(task);
        }
        None => pending.push(Box::pin(task)),
    }
}

thread_local! {
    /// The runtime of the core I/O thread this is, if it is one.
    static CORE_RUNTIME: RefCell<Option<Handle>> = const { RefCell::new(None) };
}

/// Marks the calling thread as a core I/O thread running `runtime` (core
/// threads live as long as the server; reserve threads do not, and are
/// never marked).
pub fn set_core_thread(runtime: Handle) {
    CORE_RUNTIME.with(|core| *core.borrow_mut() = Some(runtime));
}

/// True on a core I/O thread.
pub fn on_core_thread() -> bool {
    CORE_RUNTIME.with(|core| core.borrow().is_some())
}

/// Where a task that serves the calling thread's own work should run: the
/// calling core thread's runtime, or the control runtime when called from
/// any other thread.
pub fn home() -> Handle {
    CORE_RUNTIME
        .with(|core| core.borrow().clone())
        .unwrap_or_else(handle)
}

//! A panic outside a connection task ends the worker process at once.
//!
//! Tokio catches a panic inside a task (one connection's, or a Lambda
//! instance's on the control thread) and the server goes on. A panic anywhere else (the main thread while starting or
//! shutting down, the reload, housekeeping or stall-guard thread) leaves a
//! worker that cannot serve, or one that hangs: unwinding the main thread
//! out of a half-started tokio runtime waits for its threads for ever. So
//! after the usual message the hook ends the process with status 101 (as an
//! uncaught panic does), without unwinding and without exit handlers; the
//! supervisor restarts it.

/// Start of the I/O threads' names (`flexilib-io-0`, …, `flexilib-io-r0`
/// for a reserve thread), whose panics tokio contains.
pub const IO_THREAD_NAME: &str = "flexilib-io";

/// Whether a panic on the thread named `name` is contained by tokio.
fn is_task_thread(name: Option<&str>) -> bool {
    name.is_some_and(|name| {
        name.starts_with(IO_THREAD_NAME) || name == crate::control::CONTROL_THREAD_NAME
    })
}

/// Status of a process ended by a panic.
pub const PANIC_EXIT_STATUS: i32 = 101;

/// Installs the hook (in the worker process).
pub fn exit_on_fatal_panics() {
    let print = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        print(info);
        if !is_task_thread(std::thread::current().name()) {
            crate::stderr_log::flush(std::time::Duration::from_millis(500));
            crate::os::exit_at_once(PANIC_EXIT_STATUS);
        }
    }));
}

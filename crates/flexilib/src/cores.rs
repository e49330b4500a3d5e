//! Thread-per-core I/O: the threads that accept and serve connections, and
//! the control runtime for work tied to no connection.
//!
//! * **Core threads** (`SERVER_THREAD_COUNT`): each runs its own tokio
//!   `current_thread` runtime and its own accept loop on a duplicate of the
//!   listening socket. A connection is served, library calls included, on
//!   the thread that accepted it, and never moves: no work stealing, no
//!   hand-off. The kernel wakes every thread waiting on the socket; the
//!   first to `accept` gets the connection, so a thread stalled in a
//!   library call simply takes none.
//! * **Reserve threads** (`RESERVED_IO_THREADS`): the same, but their accept
//!   loop runs only while the stall guard ([`crate::handlers`]) sees a core
//!   thread stalled in a library call. Quiet, they hold no registration of
//!   the socket, so new connections do not wake them; they keep serving the
//!   connections they accepted until those close.
//! * **Control runtime** ([`control`]): one thread for tasks tied to no
//!   client connection (Lambda instances' processes, log forwarders,
//!   reapers, deadline enforcers, `Event` invocations), so a library call on
//!   a core thread never delays them. The main thread's signal handling and
//!   graceful shutdown run on it too. A Lambda instance's Runtime API is
//!   the exception: it runs on the core thread that started the instance
//!   ([`control::home`]), which saves two thread wake-ups per invocation.

use std::net::TcpListener as StdListener;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::conn::limit::ConnLimit;
use crate::conn::ConnSettings;
use crate::listen;
use crate::service::Server;

/// Name of the I/O threads' blocking-pool threads (at most 15 bytes, the
/// kernel's limit).
const BLOCKING_THREAD_NAME: &str = "flexilib-io-blk";
/// Most threads in an I/O thread's blocking pool.
const MAX_BLOCKING_THREADS: usize = 64;

/// What every I/O thread serves with.
pub struct Plan<'a> {
    /// The listening socket, non-blocking; each thread gets a duplicate.
    pub listener: &'a StdListener,
    /// The TLS listening socket and its acceptor (`TLS_PORT`), served by
    /// the core threads beside the plain one.
    pub tls: Option<(&'a StdListener, tokio_rustls::TlsAcceptor)>,
    /// Core threads.
    pub cores: usize,
    /// Reserve threads.
    pub reserve: usize,
    /// The server.
    pub server: Arc<Server>,
    /// Connection settings.
    pub conn_settings: Arc<ConnSettings>,
    /// The connection cap, and the open connections shutdown waits for.
    pub limit: Arc<ConnLimit>,
    /// Turns true when shutdown begins (connections drain).
    pub shutdown: watch::Receiver<bool>,
    /// True while a core thread is stalled in a library call.
    pub reserve_accepting: watch::Receiver<bool>,
}

/// The running I/O threads. Dropping them stops them (see [`IoThreads::stop`]).
pub struct IoThreads {
    stop: watch::Sender<bool>,
    done: mpsc::Receiver<()>,
    running: usize,
}

/// The I/O threads could not all start (out of threads, memory or
/// descriptors): a lack of resources, not a bad config, so a supervised
/// worker exits with [`crate::supervisor::EXIT_NO_RESOURCES`] and is
/// restarted.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the I/O threads: {0}")]
pub struct StartError(#[from] std::io::Error);

/// What an I/O thread is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Core,
    Reserve,
}

/// Starts the core and reserve threads; returns once each has its runtime
/// and socket, or the first error.
pub fn start(plan: Plan<'_>) -> Result<IoThreads, StartError> {
    let (stop, stop_rx) = watch::channel(false);
    let (done_tx, done) = mpsc::channel();
    let mut threads = IoThreads {
        stop,
        done,
        running: 0,
    };
    let roles = std::iter::repeat_n(Role::Core, plan.cores)
        .chain(std::iter::repeat_n(Role::Reserve, plan.reserve));
    for (index, role) in roles.enumerate() {
        let name = match role {
            Role::Core => format!("{}-{index}", crate::panics::IO_THREAD_NAME),
            Role::Reserve => format!("{}-r{}", crate::panics::IO_THREAD_NAME, index - plan.cores),
        };
        let tls = match (&plan.tls, role) {
            (Some((listener, acceptor)), Role::Core) => {
                Some((listener.try_clone()?, acceptor.clone()))
            }
            _ => None,
        };
        let thread = IoThread {
            role,
            tls,
            listener: plan.listener.try_clone()?,
            server: Arc::clone(&plan.server),
            conn_settings: Arc::clone(&plan.conn_settings),
            limit: Arc::clone(&plan.limit),
            shutdown: plan.shutdown.clone(),
            reserve_accepting: plan.reserve_accepting.clone(),
            stop: stop_rx.clone(),
        };
        let (ready_tx, ready) = mpsc::sync_channel(1);
        let done_tx = done_tx.clone();
        std::thread::Builder::new().name(name).spawn(move || {
            // A panic outside a connection task (in the accept loop) would
            // leave the server a thread short, or not accepting at all.
            let run = std::panic::AssertUnwindSafe(|| thread.run(&ready_tx));
            if std::panic::catch_unwind(run).is_err() {
                crate::stderr_log::flush(Duration::from_millis(500));
                crate::os::exit_at_once(crate::panics::PANIC_EXIT_STATUS);
            }
            let _ = done_tx.send(());
        })?;
        threads.running += 1;
        // The thread always answers before it serves (or fails).
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error.into()),
            Err(_) => {
                let ended = std::io::Error::other("an I/O thread ended while starting");
                return Err(ended.into());
            }
        }
    }
    Ok(threads)
}

impl IoThreads {
    /// Stops every I/O thread: its accept loop ends and its connections are
    /// dropped (their log lines written). Waits at most `limit` in all: a
    /// thread inside a library call that does not return is left behind
    /// (the shutdown deadline bounds the process).
    pub fn stop(&mut self, limit: Duration) {
        let _ = self.stop.send(true);
        let deadline = Instant::now() + limit;
        while self.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left) {
                Ok(()) => self.running -= 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        threads = self.running,
                        "I/O threads still busy (in a library call?); going on without them"
                    );
                    self.running = 0;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => self.running = 0,
            }
        }
    }
}

impl Drop for IoThreads {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(1));
    }
}

/// One I/O thread's share of the plan.
struct IoThread {
    role: Role,
    tls: Option<(StdListener, tokio_rustls::TlsAcceptor)>,
    listener: StdListener,
    server: Arc<Server>,
    conn_settings: Arc<ConnSettings>,
    limit: Arc<ConnLimit>,
    shutdown: watch::Receiver<bool>,
    reserve_accepting: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
}

impl IoThread {
    /// Builds the thread's runtime, reports on `ready`, then serves until
    /// told to stop.
    fn run(self, ready: &mpsc::SyncSender<std::io::Result<()>>) {
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            // Its blocking pool's threads (DNS lookups for the proxy, static
            // files' opens and reads): their panics are contained like the
            // I/O thread's. At most 64 per I/O thread (tokio's default is
            // 512): a disk that stalls queues the jobs past them instead of
            // starting hundreds of threads.
            .thread_name(BLOCKING_THREAD_NAME)
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                let _ = ready.send(Err(error));
                return;
            }
        };
        crate::handlers::set_reserve_thread(self.role == Role::Reserve);
        let mut stop = self.stop.clone();
        match self.role {
            Role::Core => {
                crate::control::set_core_thread(runtime.handle().clone());
                let listeners = {
                    let _context = runtime.enter();
                    let tls = match self.tls {
                        Some((listener, acceptor)) => {
                            TcpListener::from_std(listener).map(|l| Some((l, acceptor)))
                        }
                        None => Ok(None),
                    };
                    TcpListener::from_std(self.listener).and_then(|plain| Ok((plain, tls?)))
                };
                let (listener, tls) = match listeners {
                    Ok(listeners) => listeners,
                    Err(error) => {
                        let _ = ready.send(Err(error));
                        return;
                    }
                };
                let _ = ready.send(Ok(()));
                runtime.block_on(async {
                    let tls_loop = async {
                        match &tls {
                            Some((listener, acceptor)) => {
                                listen::tls_accept_loop(
                                    listener,
                                    acceptor,
                                    &self.server,
                                    &self.conn_settings,
                                    &self.limit,
                                    self.shutdown.clone(),
                                )
                                .await;
                            }
                            None => std::future::pending::<()>().await,
                        }
                    };
                    tokio::select! {
                        () = listen::accept_loop(
                            &listener,
                            &self.server,
                            &self.conn_settings,
                            &self.limit,
                            self.shutdown.clone(),
                        ) => {}
                        () = tls_loop => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                });
            }
            Role::Reserve => {
                let _ = ready.send(Ok(()));
                runtime.block_on(async {
                    tokio::select! {
                        () = self.accept_while_needed() => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                });
            }
        }
        // Drops the thread's connections, on this thread.
        runtime.shutdown_timeout(Duration::from_secs(1));
    }

    /// A reserve thread's accept loop: runs while a core thread is stalled.
    /// The socket is registered with this thread's runtime only meanwhile,
    /// so a quiet reserve thread is not woken by new connections.
    async fn accept_while_needed(&self) {
        let mut accepting = self.reserve_accepting.clone();
        loop {
            if accepting.wait_for(|needed| *needed).await.is_err() {
                // The stall guard is gone: the reserve is never needed again.
                return std::future::pending().await;
            }
            let listener = match self.listener.try_clone().and_then(TcpListener::from_std) {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "a reserve I/O thread cannot accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            tracing::debug!("reserve I/O thread accepting");
            tokio::select! {
                () = listen::accept_loop(
                    &listener,
                    &self.server,
                    &self.conn_settings,
                    &self.limit,
                    self.shutdown.clone(),
                ) => {}
                _ = accepting.wait_for(|needed| !*needed) => {}
            }
            tracing::debug!("reserve I/O thread quiet");
        }
    }
}

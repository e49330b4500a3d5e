//! The listening socket and the accept loop.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::conn::{self, ConnSettings};
use crate::service::{handle, Server};

/// Open connections, so shutdown can wait for them.
#[derive(Debug, Default)]
pub struct OpenConnections(AtomicUsize);

impl OpenConnections {
    /// How many connections are open.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

struct OpenGuard(Arc<OpenConnections>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Binds the listening socket (non-blocking, registered with no runtime:
/// each I/O thread registers a duplicate with its own).
pub async fn bind(address: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    TcpListener::bind(address).await?.into_std()
}

/// Adopts the listening socket inherited from the supervisor (non-blocking,
/// registered with no runtime).
pub fn adopt(fd: i32) -> std::io::Result<std::net::TcpListener> {
    let listener = crate::os::adopt_listener(fd)?;
    // Not for processes a library might start.
    crate::os::close_on_exec(fd)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

/// Accepts connections, serving each on its own task of the calling
/// thread's runtime, until the future is dropped. Once `shutdown` turns true, connections already open finish
/// their requests (and are counted in `open`), and connections accepted
/// since are answered 503 with `Connection: close` at once, instead of
/// waiting unanswered in the listen queue (the supervisor holds the socket
/// open until the server exits).
pub async fn accept_loop(
    listener: &TcpListener,
    server: &Arc<Server>,
    settings: &Arc<ConnSettings>,
    open: &Arc<OpenConnections>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut draining = *shutdown.borrow();
    // Connections accepted while draining must not see the shutdown signal:
    // it would close them before their request is read and answered.
    let (_keep, never) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.changed(), if !draining => {
                draining = true;
                continue;
            }
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::debug!(%error, "cannot set TCP_NODELAY");
                }
                let guard = (!draining).then(|| {
                    open.0.fetch_add(1, Ordering::AcqRel);
                    OpenGuard(Arc::clone(open))
                });
                let server = Arc::clone(server);
                let settings = Arc::clone(settings);
                let shutdown = if draining {
                    never.clone()
                } else {
                    shutdown.clone()
                };
                tokio::spawn(async move {
                    let service = move |activity: Arc<conn::Activity>| {
                        move |request| handle(Arc::clone(&server), Arc::clone(&activity), request)
                    };
                    conn::serve(stream, peer, service, settings, shutdown, draining).await;
                    drop(guard);
                });
            }
            Err(error) => {
                // Out of file descriptors or memory: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

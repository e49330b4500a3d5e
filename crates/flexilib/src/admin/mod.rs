//! The admin listener (`ADMIN_ADDRESS`, off by default; never the public
//! port): `/metrics` (Prometheus), `/healthz`, `/readyz` and `/status`
//! (JSON). Like the Invoke API's ([`crate::invoke_api`]), its accept loop
//! and connections run on the control runtime, served by
//! [`crate::conn::serve`], at most [`MAX_CONNECTIONS`] at once; requests are
//! not written to the access log (a scraper every few seconds would fill
//! it).
//!
//! It keeps answering while the server drains after SIGTERM — `/readyz`
//! then says 503, so a load balancer or Kubernetes stops sending traffic —
//! and stops with the control runtime, at the very end.
//!
//! * [`endpoints`] — what each path answers.
//! * [`status`] — the JSON of `/status`.

mod endpoints;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::conn::limit::ConnLimit;
use crate::conn::{self, ConnSettings};
use crate::service::Server;

/// Connections the admin listener serves at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 64;

/// What the endpoints read.
pub struct AdminState {
    /// The server: routes, their counters, the lifecycle.
    pub server: Arc<Server>,
    /// The public listeners' open connections.
    pub open: Arc<ConnLimit>,
    /// The config file, as `/status` names it.
    pub config_path: PathBuf,
}

/// Binds `address` (a failure stops the server at startup, naming it).
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves the admin endpoints on `listener` for as long as the runtime runs.
pub async fn serve(listener: TcpListener, state: Arc<AdminState>, settings: Arc<ConnSettings>) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Admin connections are not shut down with the public ones: `/readyz`
    // must go on saying "draining" while open requests finish.
    let (_keep, never) = watch::channel(false);
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: try again shortly, without spinning.
                tracing::debug!(%error, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let state = Arc::clone(&state);
        let settings = Arc::clone(&settings);
        let shutdown = never.clone();
        tokio::spawn(async move {
            conn::serve(
                stream,
                peer,
                move |_activity| {
                    move |request: hyper::Request<_>| {
                        let state = Arc::clone(&state);
                        let method = request.method().clone();
                        let path = request.uri().path().to_owned();
                        // On a blocking thread: `/metrics` calls the
                        // libraries' gauge exports, and one that blocks must
                        // not hold up the control thread (it also runs the
                        // Lambda instances' tasks).
                        async move {
                            tokio::task::spawn_blocking(move || {
                                endpoints::answer(&state, &method, &path)
                            })
                            .await
                            .unwrap_or_else(|_| endpoints::failed())
                        }
                    }
                },
                settings,
                shutdown,
                None,
            )
            .await;
            drop(permit);
        });
    }
}

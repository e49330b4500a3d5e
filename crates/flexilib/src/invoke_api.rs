//! The Lambda Invoke API's own listener (`INVOKE_API_ADDRESS`, off by
//! default): `POST /2015-03-31/functions/{name}/invocations` for every
//! function of the live route table, whatever route guards it. That is
//! why it never shares the public port: bind it to loopback (or a private
//! network) for `aws lambda invoke --endpoint-url` and `cargo lambda
//! invoke`. Connections are served by [`crate::conn::serve`] on the control
//! runtime, logged in the access log like public requests, and capped at
//! [`MAX_CONNECTIONS`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::conn::{self, ConnSettings};
use crate::request_log::RequestLog;
use crate::service::Server;
use crate::targets::lambda::event_queue::EventQueue;

/// Connections the Invoke API serves at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 256;

/// Binds `address` (a failure stops the server at startup, naming it).
pub async fn bind(address: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(address).await
}

/// Serves the Invoke API on `listener` until `shutdown` turns true.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    events: Arc<EventQueue>,
    settings: Arc<ConnSettings>,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = shutdown.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of descriptors, say: try again shortly, without spinning.
                tracing::debug!(%error, "invoke API accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let server = Arc::clone(&server);
        let events = Arc::clone(&events);
        let settings = Arc::clone(&settings);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            conn::serve(
                stream,
                peer,
                move |activity| {
                    move |request| {
                        let server = Arc::clone(&server);
                        let events = Arc::clone(&events);
                        let log = RequestLog::start(&server.log, Arc::clone(&activity), &request);
                        async move {
                            let routes = server.routes.load_full();
                            let served = crate::targets::lambda::invoke(
                                &server.env,
                                &routes,
                                &events,
                                request,
                            )
                            .await;
                            log.respond(served)
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

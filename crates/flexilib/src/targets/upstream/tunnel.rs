//! Upgrade tunnels (WebSocket): bytes copied both ways between the client
//! and the upstream after the upstream's `101`, counted while they last.

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::upgrade::OnUpgrade;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::connection::UpstreamConn;

/// The client's side of an upgrade: how its connection is taken over
/// after the `101`. hyper's server hands it out through the request's
/// extensions; the one place that knows it.
pub fn client_side<B>(request: &mut Request<B>) -> OnUpgrade {
    hyper::upgrade::on(request)
}

/// Open tunnels, which graceful shutdown waits for like connections.
#[derive(Debug, Default, Clone)]
pub struct Tunnels(Arc<AtomicUsize>);

impl Tunnels {
    /// How many are open.
    pub fn open(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }

    /// Copies bytes both ways between the client and the upstream until
    /// either side closes. `conn` is the upstream connection that answered
    /// `101` with `response`; it is driven until it hands its socket over.
    pub fn start<B>(&self, client: OnUpgrade, mut conn: UpstreamConn, response: &mut Response<B>) {
        struct Open(Arc<AtomicUsize>);
        impl Drop for Open {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let upstream = hyper::upgrade::on(response);
        self.0.fetch_add(1, Ordering::AcqRel);
        let open = Open(Arc::clone(&self.0));
        tokio::spawn(async move {
            let _open = open;
            let upstream = async {
                poll_fn(|cx| conn.poll_driver(cx)).await?;
                upstream.await
            };
            let (client, upstream) = match tokio::try_join!(client, upstream) {
                Ok(pair) => pair,
                Err(error) => {
                    tracing::debug!(%error, "upgrade failed");
                    return;
                }
            };
            let mut client = TokioIo::new(client);
            let mut upstream = TokioIo::new(upstream);
            if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(%error, "tunnel closed with an error");
            }
        });
    }
}

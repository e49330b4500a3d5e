//! Upgrade tunnels (WebSocket): bytes copied both ways between the client
//! and the upstream after the upstream's `101`, counted while they last.

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::connection::UpstreamConn;

use crate::http1::OnUpgrade;

/// The client's side of an upgrade: how its connection is taken over
/// after the `101`. FlexiLib's HTTP/1.1 codec hands it out through the
/// request's extensions; the one place that knows it.
pub fn client_side<B>(request: &mut Request<B>) -> Option<OnUpgrade> {
    request.extensions_mut().remove::<OnUpgrade>()
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
            let (mut client, upstream) = match tokio::join!(client, upstream) {
                (Ok(client), Ok(upstream)) => (client, upstream),
                (Err(error), _) => {
                    tracing::debug!(%error, "upgrade failed on the client side");
                    return;
                }
                (_, Err(error)) => {
                    tracing::debug!(%error, "upgrade failed on the upstream side");
                    return;
                }
            };
            let mut upstream = TokioIo::new(upstream);
            if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(%error, "tunnel closed with an error");
            }
        });
    }
}

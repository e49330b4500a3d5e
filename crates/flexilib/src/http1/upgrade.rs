//! Handing a connection over after `101 Switching Protocols`.
//!
//! A request asking for an upgrade carries an [`OnUpgrade`] in its
//! extensions. When the response is `101`, the connection writes its head,
//! then gives up the socket (and any bytes the client sent after the
//! request) to whoever awaits the `OnUpgrade`, and serves no more requests.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// A socket after an upgrade.
pub trait UpgradedIo: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> UpgradedIo for T {}

/// The connection after `101`: bytes already read come first.
pub struct Upgraded {
    io: Box<dyn UpgradedIo>,
    read_ahead: Bytes,
}

impl Upgraded {
    /// `io`, with `read_ahead` to be read before it.
    pub fn new(io: Box<dyn UpgradedIo>, read_ahead: Bytes) -> Self {
        Self { io, read_ahead }
    }
}

/// The upgraded connection, once the response went out (cloneable, as
/// request extensions must be; the first to await it gets it).
#[derive(Clone)]
pub struct OnUpgrade(Arc<Mutex<Option<oneshot::Receiver<Upgraded>>>>);

/// The connection's end: where the socket goes after a `101`.
pub struct UpgradeSender(oneshot::Sender<Upgraded>);

/// A pair for one request.
pub fn pending() -> (UpgradeSender, OnUpgrade) {
    let (sender, receiver) = oneshot::channel();
    (
        UpgradeSender(sender),
        OnUpgrade(Arc::new(Mutex::new(Some(receiver)))),
    )
}

impl UpgradeSender {
    /// Hands the connection over (nothing happens if nobody waits).
    pub fn send(self, upgraded: Upgraded) {
        let _ = self.0.send(upgraded);
    }
}

/// The connection was not upgraded (no `101`, or it closed first).
#[derive(Debug, thiserror::Error)]
#[error("the connection was not upgraded")]
pub struct NotUpgraded;

impl Future for OnUpgrade {
    type Output = Result<Upgraded, NotUpgraded>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.0.lock();
        let Some(receiver) = slot.as_mut() else {
            return Poll::Ready(Err(NotUpgraded));
        };
        let result = Pin::new(receiver).poll(cx);
        if result.is_ready() {
            *slot = None;
        }
        result.map(|result| result.map_err(|_| NotUpgraded))
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.read_ahead.is_empty() {
            let n = self.read_ahead.len().min(buf.remaining());
            buf.put_slice(&self.read_ahead[..n]);
            self.read_ahead.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

//! One HTTP/1.1 connection to an upstream server (over TCP or TLS), driven
//! by whoever uses it.
//!
//! hyper's `client::conn::http1` splits a connection into a `SendRequest`
//! and a `Connection` future that does the I/O. Nothing spawns that future:
//! the request's own task polls it together with the response (here, in
//! [`UpstreamConn::send`]) and then with the response body
//! ([`super::response_body::UpstreamBody`]), so a proxied request costs no task and
//! no wake-up of another one.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::client::conn::{http1, TrySendError};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::group::UpstreamServer;
pub use super::stream::ConnectError;
use super::stream::{Protocol, UpstreamStream};

pub use super::request_body::{BoxError, RequestBody};

type Io = TokioIo<UpstreamStream>;

/// Why a request got no response head.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The connection was not ready or closed before the request was
    /// written: it can go to another connection.
    #[error("connection closed before the request was sent: {error}")]
    Unsent {
        request: Box<Request<RequestBody>>,
        error: hyper::Error,
    },
    /// Failed after (part of) the request was sent.
    #[error("{0}")]
    Failed(hyper::Error),
    /// The connection ended without answering nor returning the request.
    #[error("connection closed before the response")]
    Closed,
}

impl From<TrySendError<Request<RequestBody>>> for SendError {
    fn from(mut error: TrySendError<Request<RequestBody>>) -> Self {
        match error.take_message() {
            Some(request) => SendError::Unsent {
                request: Box::new(request),
                error: error.into_error(),
            },
            None => SendError::Failed(error.into_error()),
        }
    }
}

/// The future that does a connection's I/O.
enum Driver {
    /// A keep-alive connection, which may go back to the pool. Boxed once
    /// per connection, so moving it in and out of the pool copies a pointer.
    Plain(Box<http1::Connection<Io, RequestBody>>),
    /// A connection that may switch protocols (hyper's type for it cannot
    /// be named, hence the box; only upgrade requests pay for it). Never
    /// pooled.
    Upgrades(Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>),
    /// Finished: closed, failed, or upgraded.
    Ended,
}

/// A connection to one upstream server.
pub struct UpstreamConn {
    sender: http1::SendRequest<RequestBody>,
    driver: Driver,
    /// The thread that opened it ([`super::idle_pool::thread_index`]): the only
    /// one that takes it from the pool.
    pub thread: usize,
}

impl UpstreamConn {
    /// Connects to `server` (TCP, and TLS with ALPN `http/1.1` for https)
    /// within `timeout`.
    pub async fn open(
        server: &UpstreamServer,
        timeout: Duration,
        thread: usize,
    ) -> Result<Self, ConnectError> {
        let stream = super::stream::connect(server, Protocol::Http1, timeout).await?;
        let (sender, connection) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await?;
        Ok(Self {
            sender,
            driver: Driver::Plain(Box::new(connection)),
            thread,
        })
    }

    /// Lets the connection switch protocols (for an upgrade request).
    pub fn allow_upgrades(&mut self) {
        self.driver = match std::mem::replace(&mut self.driver, Driver::Ended) {
            Driver::Plain(connection) => Driver::Upgrades(Box::pin((*connection).with_upgrades())),
            other => other,
        };
    }

    /// Does the connection's I/O; `Ready` once it has ended (the peer
    /// closed, an error, an upgrade), after which it is dropped.
    pub fn poll_driver(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        let result = match &mut self.driver {
            Driver::Plain(connection) => std::task::ready!(Pin::new(&mut **connection).poll(cx)),
            Driver::Upgrades(connection) => std::task::ready!(connection.as_mut().poll(cx)),
            Driver::Ended => return Poll::Ready(Ok(())),
        };
        // Dropping the dispatcher hands back or fails what it still held.
        self.driver = Driver::Ended;
        Poll::Ready(result)
    }

    /// True when the connection can take another request: a keep-alive one,
    /// still open, and idle (its last exchange finished both ways). Polls it
    /// once so it notices a close and marks itself ready.
    pub fn reusable(&mut self, cx: &mut Context<'_>) -> bool {
        matches!(self.driver, Driver::Plain(_))
            && self.poll_driver(cx).is_pending()
            && self.sender.is_ready()
    }

    /// Sends `request` and drives the connection until the response head.
    pub async fn send(
        &mut self,
        request: Request<RequestBody>,
    ) -> Result<Response<Incoming>, SendError> {
        let mut response = pin!(self.sender.try_send_request(request));
        poll_fn(|cx| {
            if let Poll::Ready(result) = response.as_mut().poll(cx) {
                return Poll::Ready(result.map_err(SendError::from));
            }
            if self.poll_driver(cx).is_pending() {
                return Poll::Pending;
            }
            // The connection ended (and its dispatcher was dropped, which
            // answers the request's callback).
            match response.as_mut().poll(cx) {
                Poll::Ready(result) => Poll::Ready(result.map_err(SendError::from)),
                Poll::Pending => Poll::Ready(Err(SendError::Closed)),
            }
        })
        .await
    }
}

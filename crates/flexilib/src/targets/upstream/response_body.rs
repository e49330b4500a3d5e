//! An upstream's response body, which drives its connection while it is
//! read and gives the connection back to the pool once read to the end.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::connection::UpstreamConn;
use super::group::InFlight;
use super::idle_pool::ServerPool;

/// A connection on loan to one exchange, and where it goes back.
pub struct Lease {
    conn: UpstreamConn,
    pool: Arc<ServerPool>,
    idle_timeout: Duration,
}

impl Lease {
    pub fn new(conn: UpstreamConn, pool: Arc<ServerPool>, idle_timeout: Duration) -> Self {
        Self {
            conn,
            pool,
            idle_timeout,
        }
    }

    /// The exchange is complete: back to the pool if the connection can
    /// take another request, else closed. (The connection is polled once
    /// more with a waker that does nothing: an idle connection wakes nobody.)
    pub fn release(self) {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        self.pool.checkin(self.conn, self.idle_timeout, &mut cx);
    }
}

/// The response body of an upstream. Reading it polls the connection (the
/// request's task does the upstream I/O); the connection is pooled when
/// the last frame has been read, and closed with the body if it was not.
pub struct UpstreamBody {
    body: Incoming,
    lease: Option<Lease>,
    /// The answer to a `HEAD`: it has no body, and its size is not known
    /// here (the upstream's `content-length`, if it sent one, is among the
    /// fields), so none is made up.
    head_response: bool,
    /// Counts the request in flight (`least_conn`) until the body is
    /// dropped.
    _in_flight: Option<InFlight>,
}

impl UpstreamBody {
    /// `body` read through `lease`'s connection. A body that is already
    /// complete (`HEAD`, 204, 304, `Content-Length: 0`) releases it at once.
    pub fn new(body: Incoming, lease: Lease) -> Self {
        let lease = if body.is_end_stream() {
            lease.release();
            None
        } else {
            Some(lease)
        };
        Self {
            body,
            lease,
            head_response: false,
            _in_flight: None,
        }
    }

    /// `body` without a connection to drive (an upgrade's empty body).
    pub fn detached(body: Incoming) -> Self {
        Self {
            body,
            lease: None,
            head_response: false,
            _in_flight: None,
        }
    }

    /// Counts the request in flight while the body lasts.
    pub fn counted(mut self, in_flight: InFlight) -> Self {
        self._in_flight = Some(in_flight);
        self
    }

    /// Marks the body as the answer to a `HEAD` request: its size is
    /// unknown, so the connection adds no `content-length` of its own.
    pub fn for_head(mut self) -> Self {
        self.head_response = true;
        self
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        if let Some(lease) = &mut this.lease {
            if let Poll::Ready(result) = lease.conn.poll_driver(cx) {
                // Closed or failed: the body still yields what was read,
                // and an error if that is short.
                if let Err(error) = result {
                    tracing::debug!(%error, "upstream connection failed mid-body");
                }
                this.lease = None;
            }
        }
        let frame = std::task::ready!(Pin::new(&mut this.body).poll_frame(cx));
        // hyper's server stops polling once `is_end_stream` says so, so the
        // last data frame ends the exchange too.
        let complete = match &frame {
            None => true,
            Some(Ok(_)) => this.body.is_end_stream(),
            Some(Err(_)) => {
                this.lease = None;
                false
            }
        };
        if complete {
            if let Some(lease) = this.lease.take() {
                lease.release();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.head_response {
            return SizeHint::default();
        }
        self.body.size_hint()
    }
}

//! The body sent upstream: the client's, streamed, or none.
//!
//! Its error is a named type, not `Box<dyn Error>` (which `Either` would
//! make it): hyper's HTTP/2 client spawns a connection whose body error
//! must convert into a boxed error of any lifetime, which only a named
//! type proves.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};

/// Why the request body stopped (the client's error, boxed).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client's body failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BodyError(pub BoxError);

/// Body sent upstream: the client's, streamed (boxed: the pool holds
/// connections of one type whatever the server's body type is), or nothing.
pub enum RequestBody {
    /// The client's body.
    Stream(UnsyncBoxBody<Bytes, BodyError>),
    /// No body.
    Empty,
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RequestBody::Stream(_) => "RequestBody::Stream",
            RequestBody::Empty => "RequestBody::Empty",
        })
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            RequestBody::Stream(body) => Pin::new(body).poll_frame(cx),
            RequestBody::Empty => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Stream(body) => body.is_end_stream(),
            RequestBody::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Stream(body) => body.size_hint(),
            RequestBody::Empty => SizeHint::with_exact(0),
        }
    }
}

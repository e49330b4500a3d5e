//! A response body compressed as it is sent: each piece the target's body
//! yields goes through the encoder; compressed bytes go out as the encoder
//! makes them, and when the target's body has nothing more for now (a
//! stream waiting on its producer) the encoder is flushed, so a streamed
//! response is never held back by the compression.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};

use super::encoder::Encoder;
use crate::respond::{BodyError, ReplyBody};

/// `inner`, compressed.
pub struct CompressedBody {
    inner: ReplyBody,
    /// `None` once finished.
    encoder: Option<Encoder>,
    /// Input written since the last flush.
    unflushed: bool,
}

impl CompressedBody {
    /// `inner` through `encoder`.
    pub fn new(inner: ReplyBody, encoder: Encoder) -> Self {
        Self {
            inner,
            encoder: Some(encoder),
            unflushed: false,
        }
    }
}

fn data(bytes: Vec<u8>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
    Poll::Ready(Some(Ok(Frame::data(Bytes::from(bytes)))))
}

impl Body for CompressedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    // Trailers are not kept: a compressed body is sent
                    // chunked by the server, without them.
                    let Ok(piece) = frame.into_data() else {
                        continue;
                    };
                    encoder.write(&piece)?;
                    this.unflushed = true;
                    let out = encoder.take();
                    if !out.is_empty() {
                        return data(out);
                    }
                }
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => {
                    let Some(encoder) = this.encoder.take() else {
                        return Poll::Ready(None);
                    };
                    let out = encoder.finish()?;
                    return if out.is_empty() {
                        Poll::Ready(None)
                    } else {
                        data(out)
                    };
                }
                Poll::Pending => {
                    if this.unflushed {
                        this.unflushed = false;
                        encoder.flush()?;
                        let out = encoder.take();
                        if !out.is_empty() {
                            return data(out);
                        }
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.encoder.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

//! The access-log line of one request in flight: written exactly once,
//! whatever happens to the request.
//!
//! [`RequestLog`] is made when the request head arrives. Normally the
//! target's answer is attached to it ([`RequestLog::respond`]) and the line
//! is written when the response body is done ([`Finished`], carried by
//! [`LoggedBody`]). If the request is abandoned before that (the client
//! closed the connection while the target was still working), the line is
//! written when the request is dropped, with status 499 as nginx logs it.

use std::sync::Arc;
use std::time::Instant;

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::{Method, Request, Response, Uri, Version};

use crate::access_log::{AccessLog, Entry, TargetNote};
use crate::arena::ArenaUsage;
use crate::conn::Activity;
use crate::http1::encode::{EncodedFields, ResponseBody};
use crate::metrics::{Outcome, RouteStats};
use crate::respond::{BodyError, ReplyBody};
use crate::targets::Served;

/// Status logged for a request whose client went away before the answer.
pub const CLIENT_CLOSED: u16 = 499;

/// A request whose log line is not written yet.
pub struct RequestLog {
    state: Option<Box<Finished>>,
}

/// Everything the log line needs, gathered as the request goes.
pub struct Finished {
    log: Arc<AccessLog>,
    activity: Arc<Activity>,
    method: Method,
    target: Uri,
    version: Version,
    started: Instant,
    ready: Option<Instant>,
    status: u16,
    usage: ArenaUsage,
    note: Option<TargetNote>,
    /// Body bytes handed to the connection.
    handed: u64,
    /// The connection's socket byte count when the first body byte was handed.
    written_at_first_byte: Option<u64>,
    /// The whole body was handed to the connection.
    pub ended: bool,
    /// Where the request is counted for the admin listener's metrics.
    stats: Option<Arc<RouteStats>>,
}

impl RequestLog {
    /// Starts the log of `request`, just parsed on `activity`'s connection.
    pub fn start<B>(log: &Arc<AccessLog>, activity: Arc<Activity>, request: &Request<B>) -> Self {
        activity.begin_request();
        Self {
            state: Some(Box::new(Finished {
                log: Arc::clone(log),
                activity,
                method: request.method().clone(),
                target: request.uri().clone(),
                version: request.version(),
                started: Instant::now(),
                ready: None,
                status: CLIENT_CLOSED,
                usage: ArenaUsage::default(),
                note: None,
                handed: 0,
                written_at_first_byte: None,
                ended: false,
                stats: None,
            })),
        }
    }

    /// Counts the request in `stats` (its route's, or the unrouted
    /// requests') when its line is written.
    pub fn count_in(&mut self, stats: &Arc<RouteStats>) {
        if let Some(state) = &mut self.state {
            state.stats = Some(Arc::clone(stats));
        }
    }

    /// The response to send for `served`; the line is written when its body is done.
    pub fn respond(mut self, served: Served) -> Response<LoggedBody> {
        let (parts, body) = served.response.into_parts();
        // Always present: only taken here, and `respond` consumes `self`.
        let state = self.state.take().map(|mut state| {
            state.ready = Some(Instant::now());
            state.status = parts.status.as_u16();
            state.usage = served.usage;
            state.note = served.note;
            state
        });
        Response::from_parts(parts, LoggedBody::new(body, state, served.fields))
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        if let Some(state) = self.state.take() {
            state.write();
        }
    }
}

impl Finished {
    /// `len` more body bytes were handed to the connection.
    pub fn body_handed(&mut self, len: usize) {
        if self.written_at_first_byte.is_none() {
            self.written_at_first_byte = Some(self.activity.bytes_written());
        }
        self.handed += len as u64;
    }

    /// Body bytes delivered: all that were handed when the body ended;
    /// otherwise no more than the socket took since the first one (the
    /// connection may have held the rest unsent when it went away).
    fn delivered(&self) -> u64 {
        match self.written_at_first_byte {
            Some(at_start) if !self.ended => {
                let written = self.activity.bytes_written().saturating_sub(at_start);
                self.handed.min(written)
            }
            _ => self.handed,
        }
    }

    /// Writes the line and tells the connection the request is over.
    pub fn write(self: Box<Self>) {
        let now = Instant::now();
        let ttlb = now.duration_since(self.started);
        let delivered = self.delivered();
        if let Some(stats) = &self.stats {
            stats.record(&Outcome {
                status: self.status,
                elapsed: ttlb,
                bytes_received: self.activity.take_bytes_read(),
                body_bytes_sent: delivered,
            });
        }
        self.log.write(&Entry {
            peer: &self.activity.peer,
            method: &self.method,
            target: &self.target,
            version: self.version,
            status: self.status,
            ttfb: self
                .ready
                .map_or(ttlb, |ready| ready.duration_since(self.started)),
            bytes: delivered,
            ttlb,
            usage: self.usage,
            note: self.note.as_ref(),
        });
        self.activity.end_request();
    }
}

/// A response body that writes the request's access-log line when the
/// connection is done with it: after the last byte was handed to the
/// connection, or when the connection went away.
pub struct LoggedBody {
    body: ReplyBody,
    log: Option<Box<Finished>>,
    fields: Option<EncodedFields>,
}

impl LoggedBody {
    /// `body`, logged by `log` when done; `fields` go out with the head.
    pub fn new(body: ReplyBody, log: Option<Box<Finished>>, fields: Option<EncodedFields>) -> Self {
        Self { body, log, fields }
    }
}

impl ResponseBody for LoggedBody {
    fn encoded_fields(&self) -> Option<&EncodedFields> {
        self.fields.as_ref()
    }

    fn take_encoded_fields(&mut self) -> Option<EncodedFields> {
        self.fields.take()
    }
}

impl Body for LoggedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Some(log) = &mut this.log {
            match &frame {
                Poll::Ready(Some(Ok(frame))) => {
                    if let Some(data) = frame.data_ref() {
                        log.body_handed(data.len());
                    }
                }
                Poll::Ready(None) => log.ended = true,
                _ => {}
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        if let Some(mut log) = self.log.take() {
            log.ended |= self.body.is_end_stream();
            log.write();
        }
    }
}

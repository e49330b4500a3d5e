//! HTTP/2 connections (h2 by ALPN on the TLS port, h2c with prior
//! knowledge on the plain port), served by hyper's HTTP/2 server over the
//! `h2` crate. Each stream becomes the same `Request<RequestBody>` an
//! HTTP/1.1 request becomes, and its response goes back through the same
//! service, so no target knows the protocol.
//!
//! Bounds, against the known HTTP/2 attacks: at most
//! [`MAX_CONCURRENT_STREAMS`] streams at once per connection; header lists
//! no larger than the HTTP/1.1 head limit (`MAX_HEADER_BYTES`), which also
//! bounds what HPACK may decode and what CONTINUATION frames may carry;
//! streams reset by the client before the server answered count against
//! [`MAX_PENDING_RESETS`] (CVE-2023-44487, "rapid reset": past it the
//! connection is closed); and streams the server had to reset for the
//! client's errors against [`MAX_ERROR_RESETS`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_LENGTH, HOST};
use hyper::{Request, Response, Uri, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::{Activity, ConnSettings};
use crate::http1::encode::ResponseBody;
use crate::http1::RequestBody;
use crate::respond::BodyError;

/// Streams open at once on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;
/// Streams the client reset before they were answered, before the
/// connection is closed (rapid reset).
pub const MAX_PENDING_RESETS: usize = 32;
/// Streams reset for the client's protocol errors, before the connection
/// is closed.
pub const MAX_ERROR_RESETS: usize = 64;
/// The client's connection-level receive window (bytes a client may send
/// before the server reads).
const CONNECTION_WINDOW: u32 = 1024 * 1024;
/// Each stream's receive window.
const STREAM_WINDOW: u32 = 256 * 1024;

/// Serves an HTTP/2 connection on `io` until the client closes it, it idles
/// past the keep-alive timeout, or shutdown (a GOAWAY, then the streams in
/// flight finish).
pub async fn serve<I, S, Fut, B>(
    io: I,
    activity: Arc<Activity>,
    service: S,
    settings: &ConnSettings,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: FnMut(Request<RequestBody>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody + Send + 'static,
    B::Error: Into<BodyError>,
{
    // hyper calls the service through `&self`; requests are taken one at a
    // time, so the lock is never contended.
    let service = Arc::new(Mutex::new(service));
    let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
        let future = (service.lock())(adapt(request));
        async move { Ok::<_, std::convert::Infallible>(respond(future.await)) }
    });
    let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .max_header_list_size(u32::try_from(settings.limits.max_bytes).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(MAX_PENDING_RESETS)
        .max_local_error_reset_streams(MAX_ERROR_RESETS)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .initial_stream_window_size(STREAM_WINDOW)
        .keep_alive_interval(Some(settings.keepalive_timeout))
        .keep_alive_timeout(Duration::from_secs(20));
    let connection = builder.serve_connection(TokioIo::new(io), handler);
    tokio::pin!(connection);
    let closing = *shutdown.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    let stop = async move {
        if !closing {
            let _ = shutdown.wait_for(|stop| *stop).await;
        }
    };
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stop, if !closing => {
            connection.as_mut().graceful_shutdown();
            connection.as_mut().await
        }
    };
    if let Err(error) = result {
        tracing::debug!(peer = %activity.peer, %error, "HTTP/2 connection ended");
    }
}

/// A stream's request as the service takes it: origin-form target, `Host`
/// from `:authority` (as HTTP/1.1 would carry it), the body read as the
/// target asks for it.
fn adapt(request: Request<Incoming>) -> Request<RequestBody> {
    let (mut head, body) = request.into_parts();
    if !head.headers.contains_key(HOST) {
        if let Some(authority) = head.uri.authority() {
            if let Ok(value) = HeaderValue::from_str(authority.as_str()) {
                head.headers.insert(HOST, value);
            }
        }
    }
    if let Some(path) = head.uri.path_and_query() {
        if let Ok(origin) = Uri::try_from(path.as_str()) {
            head.uri = origin;
        }
    }
    let body = if body_is_empty(&body) {
        RequestBody::empty()
    } else {
        RequestBody::from_body(body.map_err(BodyError::from))
    };
    Request::from_parts(head, body)
}

fn body_is_empty(body: &Incoming) -> bool {
    use hyper::body::Body as _;
    body.is_end_stream()
}

/// A response as HTTP/2 sends it: fields kept in wire form (a library's)
/// become header-map entries; the connection-level ones HTTP/2 forbids are
/// dropped.
fn respond<B: ResponseBody>(response: Response<B>) -> Response<B> {
    let (mut head, mut body) = response.into_parts();
    head.version = Version::HTTP_2;
    if let Some(fields) = body.take_encoded_fields() {
        for line in fields.lines.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                head.headers.append(name, value);
            }
        }
        if let Some(length) = fields.content_length {
            head.headers
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
    }
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ] {
        head.headers.remove(name);
    }
    Response::from_parts(head, body)
}

/// Whether `bytes` begin HTTP/2's connection preface (with prior
/// knowledge, a client's first bytes on a plain connection).
pub fn starts_preface(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PRI * HTTP/2.0\r\n")
}

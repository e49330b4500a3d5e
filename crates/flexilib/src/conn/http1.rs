//! The HTTP/1.1 loop of one connection, on FlexiLib's own codec
//! ([`crate::http1`]): read a head, hand the request to the service, write
//! the response while feeding the request body on demand, then the next
//! request (pipelined ones are answered in order) or the close.

use std::future::{poll_fn, Future};
use std::io::IoSlice;
use std::pin::{pin, Pin};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use super::io::{CountingStream, Transport};
use super::limit::{ConnLimit, Parked};
use super::watchdog::{Verdict, Watchdog};
use super::{Activity, ConnSettings};
use crate::http1::encode::{self, BodyMode, Exchange, ResponseBody};
use crate::http1::head::{self, BodyFraming, FieldSpan, Head, HeadError};
use crate::http1::request_body::{BodyFeed, BodyReadError, Decoded, Decoder, Demand};
use crate::http1::upgrade::{self, UpgradeSender, Upgraded};
use crate::http1::RequestBody;
use crate::respond::{BodyError, Reply};

/// Response bodies up to this size are copied behind the head (one write).
const COPY_BODY_UP_TO: usize = 1024;
/// Bodies up to this size that arrive right behind their head are read
/// before the target is called, and handed over whole.
const INLINE_BODY: usize = 64 * 1024;
/// Body frames are gathered behind pending output up to this size before
/// a write.
const GATHER_UP_TO: usize = 16 * 1024;
/// How long a connection closed with unread input keeps reading (and
/// dropping) it, so the client sees the response rather than a reset.
const LINGER: Duration = Duration::from_secs(1);
/// How long a connection refused at the cap lingers: short, since a
/// descriptor is scarce then (the client's request has usually arrived
/// before it is accepted, and is read before the answer is written).
const LINGER_REFUSED: Duration = Duration::from_millis(100);
/// Most bytes dropped while lingering.
const LINGER_BYTES: usize = 1024 * 1024;
/// Most lingered bytes kept for the log line of a refused connection.
const CAPTURE_BYTES: usize = 1024;

/// Completes when shutdown begins.
type Stop = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What the connection does after an exchange.
enum After {
    /// Read the next request.
    KeepAlive,
    /// Close; `linger`: the client may still be sending.
    Close { linger: bool },
    /// Close at once (the response could not be completed).
    Cut,
    /// Hand the socket to the upgrade's owner.
    Upgrade(UpgradeSender),
}

/// What reading a head gave. Not boxed: it is returned once per request,
/// and a box would cost an allocation each time.
#[allow(clippy::large_enum_variant)]
enum Next {
    Head(Head),
    Close,
    Refuse(HeadError),
    /// HTTP/2's preface, with prior knowledge (see [`super::http2`]).
    Http2,
}

/// A connection's state between requests.
struct Conn<'a, T> {
    io: CountingStream<T>,
    /// Bytes read and not yet consumed (a head, a body, a next request).
    buf: BytesMut,
    /// The response being written.
    out: Vec<u8>,
    /// Scratch list for parsing heads.
    spans: Vec<FieldSpan>,
    activity: &'a Activity,
    settings: &'a ConnSettings,
    stop: Stop,
    /// Shutdown began: close once idle.
    closing: bool,
    watchdog: Watchdog,
}

/// Serves requests on `io` until the connection ends.
///
/// Returns the connection and what was read of it when the client spoke
/// HTTP/2 with prior knowledge (only where `settings.h2c` allows it).
pub async fn run<T, S, Fut, B>(
    io: CountingStream<T>,
    activity: &Activity,
    service: &mut S,
    settings: &ConnSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(CountingStream<T>, Bytes)>
where
    T: Transport,
    S: FnMut(Request<RequestBody>) -> Fut,
    Fut: Future<Output = Response<B>>,
    B: ResponseBody,
    B::Error: Into<BodyError>,
{
    // One future for the connection's life: re-creating `changed()` for
    // every read would register and unregister a waiter each time.
    let mut receiver = shutdown.clone();
    let mut conn = Conn {
        io,
        buf: BytesMut::new(),
        out: Vec::new(),
        spans: Vec::new(),
        activity,
        settings,
        stop: Box::pin(async move {
            let _ = receiver.changed().await;
        }),
        closing: *shutdown.borrow(),
        watchdog: Watchdog::new(settings, activity),
    };
    loop {
        let next = conn.read_head().await;
        let head = match next {
            Next::Head(head) => head,
            Next::Close => break,
            Next::Http2 => {
                let preread = conn.buf.split().freeze();
                return Some((conn.io, preread));
            }
            Next::Refuse(error) => {
                tracing::debug!(peer = %activity.peer, %error, "request refused");
                let reply = Reply::text(error.status(), error.response_text()).closing();
                let Conn { io, out, buf, .. } = &mut conn;
                let mut first_line = request_line(buf).to_vec();
                answer_and_close(io, out, reply, activity, settings, &mut first_line, LINGER).await;
                return None;
            }
        };
        let after = conn.exchange(head, service).await;
        match after {
            After::KeepAlive if !conn.closing => {}
            After::KeepAlive => break,
            After::Close { linger } => {
                close(&mut conn.io, linger).await;
                return None;
            }
            After::Cut => return None,
            After::Upgrade(sender) => {
                let read_ahead = conn.buf.split().freeze();
                sender.send(Upgraded::new(Box::new(conn.io), read_ahead));
                return None;
            }
        }
    }
    close(&mut conn.io, false).await;
    None
}

/// Answers a connection `refusal` (see [`super::limit`]) at once, before
/// its request is read, then closes; the request line, if it arrives while
/// the connection lingers, is logged with the answer.
pub async fn refuse<T: Transport>(
    mut io: CountingStream<T>,
    activity: &Activity,
    settings: &ConnSettings,
    refusal: super::limit::Refusal,
) {
    let reply = Reply::text(StatusCode::SERVICE_UNAVAILABLE, refusal.response_text()).closing();
    // What already arrived is read first: unread input at the close would
    // reset the connection, losing the answer.
    let mut first_line = vec![0; CAPTURE_BYTES];
    let mut read = 0;
    while read < first_line.len() {
        let mut buf = ReadBuf::new(&mut first_line[read..]);
        let ready = poll_fn(|cx| Poll::Ready(Pin::new(&mut io).poll_read(cx, &mut buf))).await;
        match ready {
            Poll::Ready(Ok(())) if !buf.filled().is_empty() => read += buf.filled().len(),
            _ => break,
        }
    }
    first_line.truncate(read);
    let mut out = Vec::new();
    answer_and_close(
        &mut io,
        &mut out,
        reply,
        activity,
        settings,
        &mut first_line,
        LINGER_REFUSED,
    )
    .await;
}

/// Writes `reply` (a server-made answer that closes the connection),
/// closes with a linger, and logs the request by `first_line` (what the
/// client sent of it; the linger adds to it if it is empty).
async fn answer_and_close<T: Transport>(
    io: &mut CountingStream<T>,
    out: &mut Vec<u8>,
    reply: Reply,
    activity: &Activity,
    settings: &ConnSettings,
    first_line: &mut Vec<u8>,
    linger: Duration,
) {
    let started = std::time::Instant::now();
    out.clear();
    let (parts, body) = reply.into_response().into_parts();
    let mut exchange = Exchange {
        head_request: false,
        version: hyper::Version::HTTP_11,
        keep_alive: false,
    };
    encode::head(&parts, None, &body.size_hint(), &mut exchange, out);
    let mut body_bytes = 0;
    if let crate::respond::ReplyBody::Full(text) = body {
        body_bytes = text.len() as u64;
        out.extend_from_slice(&text);
    }
    let written = io.write_all(out).await.is_ok();
    let time = started.elapsed();
    if written {
        let capture = first_line.is_empty().then_some(&mut *first_line);
        close_capturing(io, Some(linger), capture).await;
    }
    if let Some(log) = &settings.log {
        // Probes and broken clients leave a trace too.
        log.write_refused(&crate::access_log::Refused {
            peer: &activity.peer,
            request_line: request_line(first_line),
            status: parts.status.as_u16(),
            bytes: if written { body_bytes } else { 0 },
            time,
        });
    }
}

/// The first line of what the client sent (the request line of a head
/// that was refused), at most 512 bytes of it.
fn request_line(buf: &[u8]) -> &[u8] {
    let line = buf.split(|&byte| byte == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    &line[..line.len().min(512)]
}

/// Sends FIN; with `linger`, reads and drops what the client still sends
/// for a while, so that closing does not reset the connection (and lose
/// the response) while its data is unread.
async fn close<T: Transport>(io: &mut CountingStream<T>, linger: bool) {
    close_capturing(io, linger.then_some(LINGER), None).await;
}

/// [`close`], keeping the first [`CAPTURE_BYTES`] lingered bytes in
/// `capture`.
async fn close_capturing<T: Transport>(
    io: &mut CountingStream<T>,
    linger: Option<Duration>,
    mut capture: Option<&mut Vec<u8>>,
) {
    let Some(linger) = linger else {
        let _ = io.shutdown().await;
        return;
    };
    if io.shutdown().await.is_err() {
        return;
    }
    // On the heap: an array here would be part of every connection's task.
    let mut sink = vec![0u8; 4096];
    let mut dropped = 0;
    let _ = tokio::time::timeout(linger, async {
        while dropped < LINGER_BYTES {
            match io.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(capture) = capture.as_deref_mut() {
                        let room = CAPTURE_BYTES.saturating_sub(capture.len());
                        capture.extend_from_slice(&sink[..n.min(room)]);
                    }
                    dropped += n;
                }
            }
        }
    })
    .await;
}

impl<T: Transport> Conn<'_, T> {
    /// Reads the next request head.
    async fn read_head(&mut self) -> Next {
        let Conn {
            io,
            buf,
            out,
            spans,
            activity,
            settings,
            stop,
            closing,
            watchdog,
        } = self;
        read_head(
            io, buf, out, spans, activity, settings, stop, closing, watchdog,
        )
        .await
    }

    /// Serves one request whose head was read.
    async fn exchange<S, Fut, B>(&mut self, head: Head, service: &mut S) -> After
    where
        S: FnMut(Request<RequestBody>) -> Fut,
        Fut: Future<Output = Response<B>>,
        B: ResponseBody,
        B::Error: Into<BodyError>,
    {
        let Conn {
            io,
            buf,
            out,
            activity,
            settings,
            stop,
            closing,
            watchdog,
            ..
        } = self;
        exchange(
            io, buf, out, head, service, activity, settings, stop, closing, watchdog,
        )
        .await
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_head<T: Transport>(
    io: &mut CountingStream<T>,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    spans: &mut Vec<FieldSpan>,
    activity: &Activity,
    settings: &ConnSettings,
    stop: &mut Stop,
    closing: &mut bool,
    watchdog: &mut Watchdog,
) -> Next {
    // Parked under a connection cap: may be closed to make room.
    let mut parked_slot: Option<Parked<'_>> = None;
    loop {
        if !buf.is_empty() {
            parked_slot = None;
            if settings.h2c && activity.completed() == 0 && super::http2::starts_preface(buf) {
                return Next::Http2;
            }
            match head::parse(buf, settings.limits, spans) {
                Ok(Some(head)) => return Next::Head(head),
                Ok(None) => activity.head_in_progress(buf.len()),
                Err(error) => return Next::Refuse(error),
            }
        } else if *closing {
            return Next::Close;
        }
        // A parked connection holds no buffer until the client sends.
        let parked = buf.capacity() == 0;
        let read = tokio::select! {
            biased;
            read = read_more(io, buf, parked) => read,
            () = stop.as_mut(), if !*closing => {
                *closing = true;
                continue;
            }
            () = evicted(&mut parked_slot), if parked_slot.is_some() => {
                tracing::debug!(peer = %activity.peer, "idle connection closed to make room");
                return Next::Close;
            }
            () = watchdog.sleep.as_mut() => {
                match watchdog.check(activity, settings, *closing) {
                    Verdict::Close => return Next::Close,
                    Verdict::Park => {
                        if buf.is_empty() {
                            *buf = BytesMut::new();
                            *out = Vec::new();
                            *spans = Vec::new();
                            parked_slot = settings.limit.as_deref().map(ConnLimit::park);
                        }
                        settings.stats.parked_one();
                    }
                    Verdict::Continue => {}
                }
                continue;
            }
        };
        match read {
            Ok(0) | Err(_) => return Next::Close,
            Ok(_) => {}
        }
    }
}

/// Completes when the parked connection is chosen to close.
async fn evicted(parked: &mut Option<Parked<'_>>) {
    match parked {
        Some(parked) => parked.evicted().await,
        None => std::future::pending().await,
    }
}

/// Reads more bytes into `buf` (after waiting for readability without a
/// buffer, if `parked`). The socket is read into the thread's scratch
/// buffer, and only what arrived is copied: one read takes a head and the
/// body behind it, yet the connection's buffer is the size of the request.
async fn read_more<T: Transport>(
    io: &mut CountingStream<T>,
    buf: &mut BytesMut,
    parked: bool,
) -> std::io::Result<usize> {
    if parked {
        io.readable().await?;
    }
    poll_fn(|cx| read_via_scratch(io, cx, buf)).await
}

/// Size of each I/O thread's read scratch buffer.
const SCRATCH_SIZE: usize = 16 * 1024;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn read_via_scratch<T: Transport>(
    io: &mut CountingStream<T>,
    cx: &mut Context<'_>,
    buf: &mut BytesMut,
) -> Poll<std::io::Result<usize>> {
    SCRATCH.with(|cell| {
        let mut scratch = cell.borrow_mut();
        if scratch.is_empty() {
            scratch.resize(SCRATCH_SIZE, 0);
        }
        let mut read_buf = ReadBuf::new(&mut scratch[..]);
        match Pin::new(&mut *io).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => {
                let filled = read_buf.filled();
                buf.extend_from_slice(filled);
                Poll::Ready(Ok(filled.len()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => Poll::Pending,
        }
    })
}

/// The state of one request/response exchange, polled as one: the service
/// future, the request body fed on demand, the response written.
struct Exchanging<B> {
    feed: Option<BodyFeed>,
    decoder: Decoder,
    /// `100 Continue` is to be sent before the body is read.
    continue_due: bool,
    exchange: Exchange,
    /// The response's status, once the target answered.
    status: Option<StatusCode>,
    body: Option<B>,
    mode: BodyMode,
    /// Bytes of a `Length` body still allowed.
    length_left: u64,
    /// Pending output: `out[out_pos..]`, then `data`, then `tail`.
    out_pos: usize,
    data: Bytes,
    tail: &'static [u8],
    trailers: Option<HeaderMap>,
    body_done: bool,
    /// The end of a chunked body is still to be written.
    end_due: bool,
    /// The target's body broke off or did not match its length: the
    /// connection is cut once what can be sent is sent.
    cut: Option<Cut>,
}

/// Why an exchange ended with the connection cut, and whose fault it was.
#[derive(Debug, thiserror::Error)]
enum Cut {
    /// The client closed the connection, or writing to it failed.
    #[error("the client closed the connection")]
    ClientGone,
    /// The client stopped reading its response (the watchdog's timeout).
    #[error("the client stopped reading its response")]
    ClientStalled,
    /// The target's response body failed midway.
    #[error("the response body failed: {0}")]
    TargetBody(BodyError),
    /// The target's body was shorter or longer than its `Content-Length`.
    #[error("the response body did not match its Content-Length")]
    TargetLength,
}

impl Cut {
    /// The side that failed, for the log.
    fn side(&self) -> &'static str {
        match self {
            Self::ClientGone | Self::ClientStalled => "client",
            Self::TargetBody(_) | Self::TargetLength => "target",
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn exchange<T, S, Fut, B>(
    io: &mut CountingStream<T>,
    buf: &mut BytesMut,
    out: &mut Vec<u8>,
    head: Head,
    service: &mut S,
    activity: &Activity,
    settings: &ConnSettings,
    stop: &mut Stop,
    closing: &mut bool,
    watchdog: &mut Watchdog,
) -> After
where
    T: Transport,
    S: FnMut(Request<RequestBody>) -> Fut,
    Fut: Future<Output = Response<B>>,
    B: ResponseBody,
    B::Error: Into<BodyError>,
{
    let Head {
        request,
        framing,
        keep_alive,
        expect_continue,
        upgrade,
    } = head;
    let exchange = Exchange {
        head_request: request.method() == Method::HEAD,
        version: request.version(),
        keep_alive: keep_alive && !*closing && activity.refusal.is_none(),
    };
    if let BodyFraming::Length(length) = framing {
        if !expect_continue {
            take_arrived_body(io, buf, length).await;
        }
    }
    let (body, feed, decoder) = match framing {
        BodyFraming::Empty => (RequestBody::empty(), None, Decoder::Done),
        BodyFraming::Length(length) if !expect_continue && buf.len() as u64 >= length => {
            // Checked: `length` is at most `buf.len()`.
            let whole = buf.split_to(length as usize).freeze();
            (RequestBody::full(whole), None, Decoder::Done)
        }
        BodyFraming::Length(length) => {
            let (body, feed) = RequestBody::streamed(Some(length));
            (body, Some(feed), Decoder::Length(length))
        }
        BodyFraming::Chunked => {
            let (body, feed) = RequestBody::streamed(None);
            (body, Some(feed), Decoder::chunked())
        }
    };
    let mut request = request.map(|()| body);
    let upgrade_sender = upgrade.then(|| {
        let (sender, on_upgrade) = upgrade::pending();
        request.extensions_mut().insert(on_upgrade);
        sender
    });
    let mut future = pin!(service(request));
    let mut state = Exchanging {
        feed,
        decoder,
        continue_due: expect_continue,
        exchange,
        status: None,
        body: None,
        mode: BodyMode::None,
        length_left: 0,
        out_pos: 0,
        data: Bytes::new(),
        tail: b"",
        trailers: None,
        body_done: false,
        end_due: false,
        cut: None,
    };
    out.clear();
    let finished = loop {
        let step = tokio::select! {
            biased;
            result = poll_fn(|cx| state.poll(cx, future.as_mut(), io, buf, out)) => Some(result),
            () = stop.as_mut(), if !*closing => {
                *closing = true;
                None
            }
            () = watchdog.sleep.as_mut() => {
                if watchdog.check(activity, settings, false) == Verdict::Close {
                    break Err(Cut::ClientStalled);
                }
                None
            }
        };
        if let Some(result) = step {
            break result;
        }
    };
    // The response body (and with it the access-log line) is done only now
    // that its bytes were handed to the socket.
    drop(state.body.take());
    if let Some(cut) = finished.err().or(state.cut) {
        tracing::debug!(peer = %activity.peer, side = cut.side(), %cut, "connection cut");
        return After::Cut;
    }
    let status = state.status;
    if status == Some(StatusCode::SWITCHING_PROTOCOLS) {
        return match upgrade_sender {
            Some(sender) => After::Upgrade(sender),
            None => After::Close { linger: false },
        };
    }
    let body_read = state.decoder.is_done();
    if !body_read {
        // The target answered without reading the whole body: the rest of
        // it cannot be told from a next request.
        return After::Close { linger: true };
    }
    if state.exchange.keep_alive {
        After::KeepAlive
    } else {
        After::Close { linger: false }
    }
}

impl<B> Exchanging<B>
where
    B: ResponseBody,
    B::Error: Into<BodyError>,
{
    /// Ready when the response is written (or the connection failed).
    fn poll<T: Transport, Fut: Future<Output = Response<B>>>(
        &mut self,
        cx: &mut Context<'_>,
        future: Pin<&mut Fut>,
        io: &mut CountingStream<T>,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Poll<Result<(), Cut>> {
        if self.feed.is_some() {
            self.poll_feed(cx, io, buf, out)?;
        }
        if self.status.is_none() {
            let Poll::Ready(response) = future.poll(cx) else {
                if self.feed.is_none() && watch_for_close(cx, io, buf) {
                    // The client left: dropping the service future abandons
                    // the request (logged 499).
                    return Poll::Ready(Err(Cut::ClientGone));
                }
                return self.poll_flush_interim(cx, io, out);
            };
            let (parts, body) = response.into_parts();
            // A `100 Continue` not sent yet is no longer needed.
            self.continue_due = false;
            self.mode = encode::head(
                &parts,
                body.encoded_fields(),
                &body.size_hint(),
                &mut self.exchange,
                out,
            );
            if let BodyMode::Length(length) = self.mode {
                self.length_left = length;
            }
            self.body_done = self.mode == BodyMode::None;
            self.status = Some(parts.status);
            // A body that is not sent (HEAD, 204, 304) is done at once.
            self.body = (!self.body_done).then_some(body);
        }
        self.poll_write(cx, io, out)
    }

    /// Before the response: writes a pending `100 Continue`.
    fn poll_flush_interim<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut CountingStream<T>,
        out: &mut Vec<u8>,
    ) -> Poll<Result<(), Cut>> {
        while self.out_pos < out.len() {
            match Pin::new(&mut *io).poll_write(cx, &out[self.out_pos..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(Cut::ClientGone))
                }
                Poll::Ready(Ok(n)) => self.out_pos += n,
                Poll::Pending => return Poll::Pending,
            }
        }
        out.clear();
        self.out_pos = 0;
        Poll::Pending
    }

    /// Feeds the request body while the target asks for it.
    fn poll_feed<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut CountingStream<T>,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<(), Cut> {
        let Some(feed) = self.feed.take() else {
            return Ok(());
        };
        let result = self.feed_while_wanted(&feed, cx, io, buf, out);
        if let Ok(true) = result {
            self.feed = Some(feed);
        }
        result.map(|_| ())
    }

    /// Feeds frames; `Ok(true)` while the body has more to come.
    fn feed_while_wanted<T: Transport>(
        &mut self,
        feed: &BodyFeed,
        cx: &mut Context<'_>,
        io: &mut CountingStream<T>,
        buf: &mut BytesMut,
        out: &mut Vec<u8>,
    ) -> Result<bool, Cut> {
        loop {
            match feed.poll_demand(cx) {
                Poll::Pending => return Ok(true),
                Poll::Ready(Demand::Gone) => return Ok(false),
                Poll::Ready(Demand::Frame) => {}
            }
            if self.continue_due {
                self.continue_due = false;
                if self.status.is_none() {
                    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                }
            }
            match self.decoder.decode(buf) {
                Ok(Decoded::Data(data)) => feed.send(Frame::data(data)),
                Ok(Decoded::Trailers(trailers)) => {
                    feed.send(Frame::trailers(trailers));
                    feed.finish();
                    return Ok(false);
                }
                Ok(Decoded::End) => {
                    feed.finish();
                    return Ok(false);
                }
                Ok(Decoded::NeedMore) => {
                    if !out.is_empty() && self.status.is_none() {
                        // The `100 Continue` goes out first; the client
                        // waits for it before it sends the body.
                        if let Poll::Ready(Err(cut)) = self.poll_flush_interim(cx, io, out) {
                            return Err(cut);
                        }
                        if !out.is_empty() {
                            return Ok(true);
                        }
                    }
                    match read_via_scratch(io, cx, buf) {
                        Poll::Pending => return Ok(true),
                        Poll::Ready(Ok(0)) => {
                            feed.fail(BodyReadError::Closed);
                            return Ok(false);
                        }
                        Poll::Ready(Ok(_)) => {}
                        Poll::Ready(Err(error)) => {
                            feed.fail(BodyReadError::Io(error.kind()));
                            return Ok(false);
                        }
                    }
                }
                Err(error) => {
                    // The target sees the error (and answers 400); the
                    // connection closes after that answer, as the body's
                    // end cannot be found.
                    feed.fail(error.into());
                    return Ok(false);
                }
            }
        }
    }

    /// Writes the head and the body; ready when all is on the socket.
    /// Body frames are gathered behind the head before writing, so a small
    /// response goes out in one write.
    fn poll_write<T: Transport>(
        &mut self,
        cx: &mut Context<'_>,
        io: &mut CountingStream<T>,
        out: &mut Vec<u8>,
    ) -> Poll<Result<(), Cut>> {
        loop {
            // Only behind `out`: a pending `data` or chunk-ending `tail`
            // goes out after it, so nothing may be appended until they left.
            while !self.body_done
                && self.data.is_empty()
                && self.tail.is_empty()
                && out.len() - self.out_pos < GATHER_UP_TO
            {
                let Some(body) = self.body.as_mut() else {
                    break;
                };
                let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) else {
                    break;
                };
                if !self.take_frame(frame, out) {
                    return Poll::Ready(Ok(()));
                }
            }
            if self.out_pos >= out.len() && self.data.is_empty() && self.tail.is_empty() {
                out.clear();
                self.out_pos = 0;
                if self.end_due {
                    // The last chunk is written: now the chunked body's end.
                    self.end_due = false;
                    encode::chunked_end(self.trailers.as_ref(), out);
                    continue;
                }
                return if self.body_done {
                    Poll::Ready(Ok(()))
                } else {
                    // The body has nothing yet; its waker is registered.
                    Poll::Pending
                };
            }
            let head = &out[self.out_pos.min(out.len())..];
            let slices = [
                IoSlice::new(head),
                IoSlice::new(&self.data),
                IoSlice::new(self.tail),
            ];
            let written = match Pin::new(&mut *io).poll_write_vectored(cx, &slices) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(Cut::ClientGone))
                }
                Poll::Ready(Ok(n)) => n,
                Poll::Pending => return Poll::Pending,
            };
            self.consume(written, out.len());
        }
    }

    /// Takes one body frame (or its end) into the output; false when the
    /// body broke off (`cut` says why) and the connection is to be cut.
    fn take_frame(
        &mut self,
        frame: Option<Result<Frame<Bytes>, B::Error>>,
        out: &mut Vec<u8>,
    ) -> bool {
        let ended = match frame {
            None => true,
            Some(Err(error)) => {
                self.cut = Some(Cut::TargetBody(error.into()));
                return false;
            }
            Some(Ok(frame)) => {
                match frame.into_data() {
                    Ok(data) => self.queue_data(data, out),
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            self.trailers = Some(trailers);
                        }
                    }
                }
                self.body_done || self.body.as_ref().is_none_or(Body::is_end_stream)
            }
        };
        if ended {
            // Dropped as soon as it ended, before the last write: the
            // access-log line goes out in the order requests are served.
            self.body = None;
            self.body_done = true;
            match self.mode {
                // Appended once what is pending (the last chunk) is out.
                BodyMode::Chunked => self.end_due = true,
                BodyMode::Length(_) if self.length_left > 0 => {
                    // Shorter than its Content-Length said.
                    self.cut = Some(Cut::TargetLength);
                    return false;
                }
                _ => {}
            }
        }
        true
    }

    /// Queues body bytes, framed for the mode.
    fn queue_data(&mut self, mut data: Bytes, out: &mut Vec<u8>) {
        if data.is_empty() {
            return;
        }
        match self.mode {
            BodyMode::None => return,
            BodyMode::Length(_) => {
                if data.len() as u64 > self.length_left {
                    // Longer than its Content-Length said: send what was
                    // announced, then cut.
                    data.truncate(self.length_left as usize);
                    self.cut = Some(Cut::TargetLength);
                    self.body_done = true;
                }
                self.length_left -= data.len() as u64;
            }
            BodyMode::Chunked => {
                encode::chunk_start(data.len(), out);
                self.tail = b"\r\n";
            }
            BodyMode::UntilClose => {}
        }
        if data.len() <= COPY_BODY_UP_TO {
            out.extend_from_slice(&data);
            if self.tail == b"\r\n" {
                out.extend_from_slice(self.tail);
                self.tail = b"";
            }
        } else {
            self.data = data;
        }
    }

    /// `written` bytes of the pending output went out.
    fn consume(&mut self, mut written: usize, out_len: usize) {
        let head_left = out_len - self.out_pos.min(out_len);
        let from_head = written.min(head_left);
        self.out_pos += from_head;
        written -= from_head;
        let from_data = written.min(self.data.len());
        let _ = self.data.split_to(from_data);
        written -= from_data;
        self.tail = &self.tail[written.min(self.tail.len())..];
    }
}

/// A small body (up to [`INLINE_BODY`]) that came right behind its head but
/// not in the same read: takes what the socket already holds, without
/// waiting, so that the target gets the body whole.
async fn take_arrived_body<T: Transport>(
    io: &mut CountingStream<T>,
    buf: &mut BytesMut,
    length: u64,
) {
    let Ok(length) = usize::try_from(length) else {
        return;
    };
    if buf.len() >= length || length > INLINE_BODY {
        return;
    }
    buf.reserve(length - buf.len());
    poll_fn(|cx| {
        while buf.len() < length {
            match read_via_scratch(io, cx, buf) {
                Poll::Ready(Ok(n)) if n > 0 => {}
                // Nothing more yet, the end, or an error: the streamed
                // body path deals with it.
                _ => break,
            }
        }
        Poll::Ready(())
    })
    .await;
}

/// While the target works and the body is not being read: true if the
/// client closed the connection (or it failed). Bytes of a next request
/// (pipelined) are kept in `buf`, up to a bound.
fn watch_for_close<T: Transport>(
    cx: &mut Context<'_>,
    io: &mut CountingStream<T>,
    buf: &mut BytesMut,
) -> bool {
    const KEEP_AHEAD: usize = 64 * 1024;
    while buf.len() < KEEP_AHEAD {
        match read_via_scratch(io, cx, buf) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return true,
            Poll::Ready(Ok(_)) => {}
            Poll::Pending => return false,
        }
    }
    false
}

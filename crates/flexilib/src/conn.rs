//! One client connection: HTTP/1.1 via hyper, plus the idle keep-alive and
//! header-read timeouts and graceful shutdown.
//!
//! Timeouts are enforced by a per-connection watchdog that wakes every
//! `tick` (a quarter of the shorter timeout, between 50 ms and 1 s) and
//! looks at counters the connection updates as it goes, so the request path
//! arms no timer per request.

use std::net::SocketAddr;
use std::pin::{pin, Pin};

use bytes::Bytes;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::service::{handle, Server};

/// Connection-level settings.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// The hyper HTTP/1 builder with limits applied.
    pub http: http1::Builder,
    /// Close a connection idle for this long.
    pub keepalive_timeout: Duration,
    /// Close a connection whose request head takes longer than this.
    pub header_read_timeout: Duration,
}

/// What a connection is doing, as seen by the watchdog, and who it is with.
#[derive(Debug, Default)]
pub struct Activity {
    /// The client address, formatted once for the access log.
    pub peer: String,
    /// The client IP alone (for `X-Forwarded-For`).
    pub peer_ip: String,
    bytes_read: AtomicU64,
    bytes_at_idle: AtomicU64,
    completed: AtomicU64,
    in_flight: AtomicUsize,
    /// The last write to the socket would have blocked: hyper still holds
    /// unsent bytes.
    write_blocked: AtomicBool,
    /// Bytes written to the socket, to see whether a blocked writer moves.
    bytes_written: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of a request.
    Idle,
    /// Some bytes of a request head arrived, no complete head yet.
    ReadingHead,
    /// A request is being served.
    Busy,
}

impl Activity {
    /// A request head was parsed.
    pub fn begin_request(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A response was sent (or abandoned).
    pub fn end_request(&self) {
        self.bytes_at_idle
            .store(self.bytes_read.load(Ordering::Relaxed), Ordering::Relaxed);
        self.completed.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    fn phase(&self) -> (Phase, u64) {
        let completed = self.completed.load(Ordering::Relaxed);
        let phase = if self.in_flight.load(Ordering::Relaxed) > 0 {
            Phase::Busy
        } else if self.bytes_read.load(Ordering::Relaxed)
            > self.bytes_at_idle.load(Ordering::Relaxed)
        {
            Phase::ReadingHead
        } else {
            Phase::Idle
        };
        (phase, completed)
    }
}

/// An idle connection hands its HTTP state (two 8 KiB buffers) back after
/// this long and waits for its next request holding only the socket.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// Connections parked since the housekeeping thread last looked.
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// How many connections parked since the last call (and resets the count).
pub fn take_parked_count() -> usize {
    PARKED.swap(0, Ordering::Relaxed)
}

/// How a run of the HTTP state machine on a connection ended.
enum Run {
    /// The connection is finished (closed, timed out, shut down, failed).
    Ended,
    /// Idle for [`PARK_AFTER`]: the socket, to wait on without hyper.
    Parked(TokioIo<CountingStream>, Instant),
}

/// Serves `stream` until the client closes, a timeout fires, or shutdown.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    server: Arc<Server>,
    settings: Arc<ConnSettings>,
    mut shutdown: watch::Receiver<bool>,
) {
    let activity = Arc::new(Activity {
        peer: peer.to_string(),
        peer_ip: peer.ip().to_string(),
        ..Activity::default()
    });
    let mut io = TokioIo::new(CountingStream {
        inner: stream,
        prefix: Bytes::new(),
        activity: Arc::clone(&activity),
    });
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |request| {
        handle(Arc::clone(&server), Arc::clone(&service_activity), request)
    });
    loop {
        // Boxed so that a parked connection's task does not keep room for
        // hyper's state in its own frame.
        let run = Box::pin(run_http(
            io,
            service.clone(),
            &activity,
            &settings,
            &mut shutdown,
        ));
        match run.await {
            Run::Ended => return,
            Run::Parked(parked, idle_since) => {
                io = parked;
                let deadline = idle_since + settings.keepalive_timeout;
                let readable = tokio::select! {
                    biased;
                    _ = shutdown.changed() => false,
                    () = tokio::time::sleep_until(deadline) => false,
                    ready = io.inner().inner.readable() => ready.is_ok(),
                };
                if !readable {
                    return;
                }
            }
        }
    }
}

/// Runs hyper on `io` until the connection ends or parks.
async fn run_http<S>(
    io: TokioIo<CountingStream>,
    service: S,
    activity: &Activity,
    settings: &ConnSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> Run
where
    S: hyper::service::HttpService<hyper::body::Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let peer = &activity.peer;
    let mut connection = settings.http.serve_connection(io, service).with_upgrades();
    let tick = (settings.keepalive_timeout.min(settings.header_read_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut watchdog = pin!(tokio::time::sleep(tick.min(PARK_AFTER)));
    let mut seen = activity.phase();
    let mut since = Instant::now();
    let mut closing = *shutdown.borrow();
    if closing {
        Pin::new(&mut connection).graceful_shutdown();
    }
    // A client that stops reading: how long the writer has been stuck.
    let mut written = activity.bytes_written.load(Ordering::Relaxed);
    let mut write_stuck_since = Instant::now();
    // When the idle timeout asked the connection to close.
    let mut closing_since: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            result = &mut connection => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return Run::Ended;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                Pin::new(&mut connection).graceful_shutdown();
            }
            () = watchdog.as_mut() => {
                let now = Instant::now();
                let current = activity.phase();
                if current != seen {
                    seen = current;
                    since = now;
                }
                let waited = now.duration_since(since);
                let now_written = activity.bytes_written.load(Ordering::Relaxed);
                if now_written != written || !activity.write_blocked.load(Ordering::Relaxed) {
                    written = now_written;
                    write_stuck_since = now;
                } else if now.duration_since(write_stuck_since) >= settings.keepalive_timeout {
                    tracing::debug!(%peer, "client stopped reading; closing");
                    return Run::Ended;
                }
                if closing_since.is_some_and(|at| now.duration_since(at) >= settings.keepalive_timeout) {
                    return Run::Ended;
                }
                match seen.0 {
                    Phase::Idle if waited >= settings.keepalive_timeout && !closing => {
                        closing = true;
                        closing_since = Some(now);
                        Pin::new(&mut connection).graceful_shutdown();
                    }
                    Phase::Idle
                        if waited >= PARK_AFTER
                            && !closing
                            && !activity.write_blocked.load(Ordering::Relaxed) =>
                    {
                        // Idle, and the last write did not block, so every
                        // response is flushed: hyper holds nothing but
                        // buffers. Bytes it read ahead are read again first.
                        // `None` only after an upgrade, which ends the connection.
                        let Some(parts) = connection.into_parts() else {
                            return Run::Ended;
                        };
                        let mut io = parts.io;
                        if !parts.read_buf.is_empty() {
                            io.inner_mut().prefix = parts.read_buf;
                        }
                        PARKED.fetch_add(1, Ordering::Relaxed);
                        return Run::Parked(io, since);
                    }
                    Phase::ReadingHead if waited >= settings.header_read_timeout => {
                        tracing::debug!(%peer, "request head not received in time; closing");
                        return Run::Ended;
                    }
                    _ => {}
                }
                // An idle connection is looked at again when it is due to park.
                let next = if seen.0 == Phase::Idle && !closing {
                    (since + PARK_AFTER).clamp(now + Duration::from_millis(10), now + tick)
                } else {
                    now + tick
                };
                watchdog.as_mut().reset(next);
            }
        }
    }
}

/// The TCP stream, counting bytes read for the watchdog. `prefix` holds
/// bytes read ahead before the connection was parked; they are read first.
struct CountingStream {
    inner: TcpStream,
    prefix: Bytes,
    activity: Arc<Activity>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            let chunk = self.prefix.split_to(n);
            buf.put_slice(&chunk);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.activity
                .bytes_read
                .fetch_add(read as u64, Ordering::Relaxed);
        }
        result
    }
}

impl CountingStream {
    fn note_write(&self, result: &Poll<std::io::Result<usize>>) {
        self.activity
            .write_blocked
            .store(result.is_pending(), Ordering::Relaxed);
        if let Poll::Ready(Ok(written)) = result {
            self.activity
                .bytes_written
                .fetch_add(*written as u64, Ordering::Relaxed);
        }
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note_write(&result);
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note_write(&result);
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

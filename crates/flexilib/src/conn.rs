//! One client connection: HTTP/1.1 via hyper, plus the idle keep-alive and
//! header-read timeouts and graceful shutdown.
//!
//! Timeouts are enforced by a per-connection watchdog that wakes every
//! `tick` (a quarter of the shorter timeout, between 50 ms and 1 s) and
//! looks at counters the connection updates as it goes, so the request path
//! arms no timer per request.

use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
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
    bytes_read: AtomicU64,
    bytes_at_idle: AtomicU64,
    completed: AtomicU64,
    in_flight: AtomicUsize,
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
        ..Activity::default()
    });
    let io = TokioIo::new(CountingStream {
        inner: stream,
        activity: Arc::clone(&activity),
    });
    let service_activity = Arc::clone(&activity);
    let service = service_fn(move |request| {
        handle(Arc::clone(&server), Arc::clone(&service_activity), request)
    });
    let mut connection = pin!(settings.http.serve_connection(io, service));

    let tick = (settings.keepalive_timeout.min(settings.header_read_timeout) / 4)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut watchdog = pin!(tokio::time::sleep(tick));
    let mut seen = activity.phase();
    let mut since = Instant::now();
    let mut closing = *shutdown.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                return;
            }
            _ = shutdown.changed(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            () = watchdog.as_mut() => {
                let now = Instant::now();
                let current = activity.phase();
                if current != seen {
                    seen = current;
                    since = now;
                }
                let waited = now.duration_since(since);
                match seen.0 {
                    Phase::Idle if waited >= settings.keepalive_timeout && !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    Phase::ReadingHead if waited >= settings.header_read_timeout => {
                        tracing::debug!(%peer, "request head not received in time; closing");
                        return;
                    }
                    _ => {}
                }
                watchdog.as_mut().reset(now + tick);
            }
        }
    }
}

/// The TCP stream, counting bytes read for the watchdog.
struct CountingStream {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
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

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
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

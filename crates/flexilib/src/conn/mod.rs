//! One client connection: what it is doing ([`Activity`], read by the
//! timeouts and the access log) and the loop that serves it ([`serve`]).
//!
//! * [`http1`] — the HTTP/1.1 loop on FlexiLib's codec ([`crate::http1`]):
//!   requests in order, bodies fed on demand, responses written, graceful
//!   shutdown, idle connections holding no buffers.
//! * [`watchdog`] — the header-read, keep-alive and stalled-reader
//!   timeouts, and when an idle connection parks.
//! * [`io`] — the byte stream: any [`io::Transport`] (TCP today), counting
//!   bytes both ways for the watchdog and the log.
//!
//! [`serve`] is generic over the transport and the service, so a listener
//! other than the public one (a loopback API, a TLS stream) reuses it.

mod http1;
mod http2;
pub mod io;
pub mod limit;
mod watchdog;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;

use hyper::{Request, Response};
use tokio::sync::watch;

use crate::access_log::AccessLog;
use crate::http1::encode::ResponseBody;
use crate::http1::head::HeadLimits;
use crate::http1::RequestBody;
use crate::respond::BodyError;
use io::{CountingStream, Transport};
use limit::{ConnLimit, Refusal};

/// Connection-level settings.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// Limits on request heads.
    pub limits: HeadLimits,
    /// Close a connection idle for this long.
    pub keepalive_timeout: Duration,
    /// Close a connection whose request head takes longer than this.
    pub header_read_timeout: Duration,
    /// Counters the housekeeping thread reads.
    pub stats: Arc<ConnStats>,
    /// The listener's connection cap, whose parked connections may be
    /// closed to make room (the public listener's).
    pub limit: Option<Arc<ConnLimit>>,
    /// Where a request refused at its head (400, 414, 431, 501) is logged.
    pub log: Option<Arc<AccessLog>>,
    /// A client may speak HTTP/2 with prior knowledge (h2c): served by
    /// [`serve_public`] only.
    pub h2c: bool,
}

/// What connections report to the housekeeping thread.
#[derive(Debug, Default)]
pub struct ConnStats {
    parked: AtomicUsize,
}

impl ConnStats {
    /// How many connections parked since the last call (and resets the count).
    pub fn take_parked_count(&self) -> usize {
        self.parked.swap(0, Ordering::Relaxed)
    }

    fn parked_one(&self) {
        self.parked.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a connection is doing, as seen by the watchdog, and who it is with.
#[derive(Debug, Default)]
pub struct Activity {
    /// The client address, formatted once for the access log.
    pub peer: String,
    /// The client IP alone (for `X-Forwarded-For`).
    pub peer_ip: String,
    /// The client came over TLS (`X-Forwarded-Proto: https`).
    pub secure: bool,
    /// Accepted after shutdown began or over the connection cap: every
    /// request gets 503 and the connection is closed.
    pub refusal: Option<Refusal>,
    bytes_read: AtomicU64,
    bytes_at_idle: AtomicU64,
    completed: AtomicU64,
    in_flight: AtomicUsize,
    /// The last write to the socket would have blocked: hyper still holds
    /// unsent bytes.
    pub(crate) write_blocked: AtomicBool,
    /// Bytes written to the socket, to see whether a blocked writer moves.
    bytes_written: AtomicU64,
    /// Bytes read already counted in a route's metrics.
    bytes_counted: AtomicU64,
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

    /// The start of the next request head (`buffered` bytes, read with the
    /// last request) is waiting: the header-read timeout applies, not the
    /// keep-alive one.
    pub fn head_in_progress(&self, buffered: usize) {
        let read = self.bytes_read.load(Ordering::Relaxed);
        self.bytes_at_idle
            .store(read.saturating_sub(buffered as u64), Ordering::Relaxed);
    }

    /// Requests completed on the connection.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Bytes read since the last call: what the request ending now
    /// brought (its head and body; a pipelined request's first bytes, if
    /// they came with them, are counted with it).
    pub fn take_bytes_read(&self) -> u64 {
        let read = self.bytes_read.load(Ordering::Relaxed);
        read.saturating_sub(self.bytes_counted.swap(read, Ordering::Relaxed))
    }

    /// Bytes written to the socket so far.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written.load(Ordering::Relaxed)
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

/// Answers `stream` from `peer` 503 for `refusal` at once, without
/// reading its request, and closes it (see [`limit`]).
pub async fn refuse<T: Transport>(
    stream: T,
    peer: SocketAddr,
    settings: Arc<ConnSettings>,
    refusal: Refusal,
) {
    let activity = Arc::new(Activity {
        peer: peer.to_string(),
        peer_ip: peer.ip().to_string(),
        refusal: Some(refusal),
        ..Activity::default()
    });
    let io = CountingStream::new(stream, Arc::clone(&activity));
    http1::refuse(io, &activity, &settings, refusal).await;
}

/// Serves `stream` from `peer` until the client closes, a timeout fires, or
/// shutdown. `service` makes the connection's request handler from its
/// [`Activity`]; `refusal` marks a connection to answer 503 and close.
pub async fn serve<T, M, S, Fut, B>(
    stream: T,
    peer: SocketAddr,
    service: M,
    settings: Arc<ConnSettings>,
    mut shutdown: watch::Receiver<bool>,
    refusal: Option<Refusal>,
) where
    T: Transport,
    M: FnOnce(Arc<Activity>) -> S,
    S: FnMut(Request<RequestBody>) -> Fut,
    Fut: Future<Output = Response<B>>,
    B: ResponseBody,
    B::Error: Into<BodyError>,
{
    let activity = Arc::new(Activity {
        peer: peer.to_string(),
        peer_ip: peer.ip().to_string(),
        secure: stream.is_tls(),
        refusal,
        ..Activity::default()
    });
    let io = CountingStream::new(stream, Arc::clone(&activity));
    let mut service = service(Arc::clone(&activity));
    // h2c is handed over only by `serve_public`.
    let _ = http1::run(io, &activity, &mut service, &settings, &mut shutdown).await;
}

/// [`serve`] for the public listeners: HTTP/1.1, or HTTP/2 when the client
/// starts with its preface (h2c with prior knowledge, if
/// `settings.h2c`); `h2` (from TLS's ALPN) serves HTTP/2 from the start.
#[allow(clippy::too_many_arguments)]
pub async fn serve_public<T, M, S, Fut, B>(
    stream: T,
    peer: SocketAddr,
    service: M,
    settings: Arc<ConnSettings>,
    mut shutdown: watch::Receiver<bool>,
    refusal: Option<Refusal>,
    h2: bool,
) where
    T: Transport,
    M: FnOnce(Arc<Activity>) -> S,
    S: FnMut(Request<RequestBody>) -> Fut + Send + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: ResponseBody + Send + 'static,
    B::Error: Into<BodyError>,
{
    let activity = Arc::new(Activity {
        peer: peer.to_string(),
        peer_ip: peer.ip().to_string(),
        secure: stream.is_tls(),
        refusal,
        ..Activity::default()
    });
    let io = CountingStream::new(stream, Arc::clone(&activity));
    let mut service = service(Arc::clone(&activity));
    if h2 {
        http2::serve(io, activity, service, &settings, shutdown).await;
        return;
    }
    if let Some((io, preread)) =
        http1::run(io, &activity, &mut service, &settings, &mut shutdown).await
    {
        let io = crate::http1::upgrade::Upgraded::new(Box::new(io), preread);
        http2::serve(io, activity, service, &settings, shutdown).await;
    }
}

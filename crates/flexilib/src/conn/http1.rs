//! The HTTP/1.1 driver of a connection: hyper's connection state machine,
//! plus the idle keep-alive and header-read timeouts, the stalled-reader
//! cut-off, graceful shutdown, and parking.
//!
//! Timeouts are enforced by a per-connection watchdog that wakes every
//! `tick` (a quarter of the shorter timeout, between 50 ms and 1 s) and
//! looks at counters the connection updates as it goes, so the request path
//! arms no timer per request.

use std::pin::{pin, Pin};
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::time::Instant;

use super::io::{CountingStream, Transport};
use super::{Activity, ConnSettings, Phase};

/// An idle connection hands its HTTP state (two 8 KiB buffers) back after
/// this long and waits for its next request holding only the socket.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// How a run of the HTTP state machine on a connection ended.
pub enum Run<T> {
    /// The connection is finished (closed, timed out, shut down, failed).
    Ended,
    /// Idle for [`PARK_AFTER`]: the socket, to wait on without hyper.
    Parked(TokioIo<CountingStream<T>>, Instant),
}

/// Runs hyper on `io` until the connection ends or parks.
pub async fn run<T, S>(
    io: TokioIo<CountingStream<T>>,
    service: S,
    activity: &Activity,
    settings: &ConnSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> Run<T>
where
    T: Transport,
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
                            io.inner_mut().set_prefix(parts.read_buf);
                        }
                        settings.stats.parked_one();
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

/// Waits for the next request on a parked connection. False if the
/// connection should end instead (keep-alive timeout, shutdown, error).
/// A parked connection holding the start of a request head resumes at
/// once: the header-read timeout, not the keep-alive one, bounds the rest.
pub async fn wait_while_parked<T: Transport>(
    io: &TokioIo<CountingStream<T>>,
    idle_since: Instant,
    settings: &ConnSettings,
    shutdown: &mut watch::Receiver<bool>,
) -> bool {
    if io.inner().has_prefix() {
        return true;
    }
    let deadline = idle_since + settings.keepalive_timeout;
    tokio::select! {
        biased;
        _ = shutdown.changed() => false,
        () = tokio::time::sleep_until(deadline) => false,
        ready = io.inner().readable() => ready.is_ok(),
    }
}

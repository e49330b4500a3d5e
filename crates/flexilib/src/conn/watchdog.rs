//! The timeouts of a connection: idle keep-alive, header read and a client
//! that stopped reading, plus the moment an idle connection parks.
//!
//! One timer per connection wakes every `tick` (a quarter of the shorter
//! timeout, between 50 ms and 1 s) and compares counters the connection
//! updates as it goes ([`Activity`]), so the request path arms no timer.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::{Activity, ConnSettings, Phase};

/// An idle connection gives its buffers back after this long and waits for
/// its next request holding only the socket.
pub const PARK_AFTER: Duration = Duration::from_millis(100);

/// What the watchdog decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Continue,
    /// Idle long enough to give the buffers back.
    Park,
    /// A timeout passed: close the connection.
    Close,
}

/// The per-connection timer and what it saw last.
pub struct Watchdog {
    /// Fires when the next look is due.
    pub sleep: Pin<Box<Sleep>>,
    tick: Duration,
    seen: (Phase, u64),
    since: Instant,
    written: u64,
    write_stuck_since: Instant,
    parked: bool,
}

impl Watchdog {
    /// A watchdog for a connection that just started.
    pub fn new(settings: &ConnSettings, activity: &Activity) -> Self {
        let tick = (settings.keepalive_timeout.min(settings.header_read_timeout) / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let now = Instant::now();
        Self {
            sleep: Box::pin(tokio::time::sleep(tick.min(PARK_AFTER))),
            tick,
            seen: activity.phase(),
            since: now,
            written: activity.bytes_written(),
            write_stuck_since: now,
            parked: false,
        }
    }

    /// Looks at the connection (the timer fired) and sets the next look.
    /// `closing`: the connection will close once idle (shutdown).
    pub fn check(
        &mut self,
        activity: &Activity,
        settings: &ConnSettings,
        closing: bool,
    ) -> Verdict {
        let now = Instant::now();
        let current = activity.phase();
        if current != self.seen {
            self.seen = current;
            self.since = now;
            self.parked = false;
        }
        let waited = now.duration_since(self.since);
        let written = activity.bytes_written();
        let verdict = if written != self.written || !activity.write_blocked.load(Ordering::Relaxed)
        {
            self.written = written;
            self.write_stuck_since = now;
            None
        } else if now.duration_since(self.write_stuck_since) >= settings.keepalive_timeout {
            tracing::debug!(peer = %activity.peer, "client stopped reading; closing");
            Some(Verdict::Close)
        } else {
            None
        };
        let verdict = verdict.unwrap_or(match self.seen.0 {
            Phase::Idle if waited >= settings.keepalive_timeout || closing => Verdict::Close,
            Phase::Idle if waited >= PARK_AFTER && !self.parked => {
                self.parked = true;
                Verdict::Park
            }
            Phase::ReadingHead if waited >= settings.header_read_timeout => {
                tracing::debug!(peer = %activity.peer, "request head not received in time; closing");
                Verdict::Close
            }
            _ => Verdict::Continue,
        });
        // An idle connection is looked at again when it is due to park.
        let next = if self.seen.0 == Phase::Idle && !self.parked {
            (self.since + PARK_AFTER).clamp(now + Duration::from_millis(10), now + self.tick)
        } else {
            now + self.tick
        };
        self.sleep.as_mut().reset(next);
        verdict
    }
}

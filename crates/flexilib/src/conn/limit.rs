//! The public listener's connection cap (`MAX_CONNECTIONS`).
//!
//! Connections are counted as they open and close. A client that arrives
//! at the cap is served if a parked keep-alive connection (idle past
//! [`super::watchdog::PARK_AFTER`]) can be closed to make room, as nginx
//! reuses its keep-alive connections; the longest parked one is closed
//! (its client reconnects, as HTTP allows for an idle connection). With
//! none parked, the newcomer is answered `503` and closed, never left
//! waiting in the listen queue; at most [`MAX_REFUSING`] such answers are
//! in progress at once, past which newcomers are closed at once.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

/// Most over-the-cap clients being answered `503` at once.
pub const MAX_REFUSING: usize = 64;

/// Why a connection is answered `503` and closed instead of served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Accepted after shutdown began.
    ShuttingDown,
    /// Accepted at the connection cap with no idle connection to close,
    /// or when the process was out of file descriptors.
    AtCapacity,
}

impl Refusal {
    /// The response body.
    pub fn response_text(self) -> &'static str {
        match self {
            Self::ShuttingDown => "503 Service Unavailable: the server is shutting down\n",
            Self::AtCapacity => {
                "503 Service Unavailable: the server is at its connection limit; try again\n"
            }
        }
    }
}

/// The cap and the connections it counts.
#[derive(Debug)]
pub struct ConnLimit {
    max: usize,
    open: AtomicUsize,
    parked: AtomicUsize,
    refusing: AtomicUsize,
    /// Wakes the longest-parked connection (`notify_one` wakes waiters in
    /// the order they started waiting), which then closes.
    evict: Notify,
}

/// What to do with a connection just accepted.
#[derive(Debug)]
pub enum Admission {
    /// Serve it; the guard counts it until dropped.
    Serve(#[allow(dead_code, reason = "held for its Drop")] OpenGuard),
    /// Answer `503` and close; the guard counts the answer in progress.
    Refuse(#[allow(dead_code, reason = "held for its Drop")] RefusalGuard),
    /// Close it at once: too many refusals in progress already.
    Close,
}

impl ConnLimit {
    /// A cap of `max` connections.
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            open: AtomicUsize::new(0),
            parked: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
            evict: Notify::new(),
        }
    }

    /// The cap.
    pub fn max(&self) -> usize {
        self.max
    }

    /// Connections being served.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Decides for a connection just accepted. At the cap, a parked
    /// connection is told to close and the newcomer is served (the count
    /// is one over until the parked one has closed).
    pub fn admit(self: &Arc<Self>) -> Admission {
        let open = self.open.fetch_add(1, Ordering::AcqRel);
        if open < self.max || self.make_room() {
            return Admission::Serve(OpenGuard(Arc::clone(self)));
        }
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.refuse()
    }

    /// A refusal, if fewer than [`MAX_REFUSING`] are in progress.
    pub fn refuse(self: &Arc<Self>) -> Admission {
        if self.refusing.fetch_add(1, Ordering::AcqRel) < MAX_REFUSING {
            Admission::Refuse(RefusalGuard(Arc::clone(self)))
        } else {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            Admission::Close
        }
    }

    /// Tells the longest-parked connection to close, if any is parked;
    /// true if one was told.
    pub fn make_room(&self) -> bool {
        if self.parked.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.evict.notify_one();
        true
    }

    /// Registers a connection that just parked as one that may be closed
    /// to make room; [`Parked::evicted`] completes when it is chosen.
    pub fn park(&self) -> Parked<'_> {
        let mut notified = Box::pin(self.evict.notified());
        // Registered now, so `notify_one` finds it before its first poll.
        notified.as_mut().enable();
        self.parked.fetch_add(1, Ordering::AcqRel);
        Parked {
            limit: self,
            notified,
        }
    }
}

/// Counts one connection being served until dropped.
#[derive(Debug)]
pub struct OpenGuard(Arc<ConnLimit>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Counts one refusal in progress until dropped.
#[derive(Debug)]
pub struct RefusalGuard(Arc<ConnLimit>);

impl Drop for RefusalGuard {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A parked connection that may be closed to make room. Dropping it (the
/// client sent a request) withdraws it; a notification it received but did
/// not act on passes to the next parked connection.
pub struct Parked<'a> {
    limit: &'a ConnLimit,
    notified: Pin<Box<Notified<'a>>>,
}

impl Parked<'_> {
    /// Completes when this connection is chosen to close.
    pub async fn evicted(&mut self) {
        self.notified.as_mut().await;
    }
}

impl Drop for Parked<'_> {
    fn drop(&mut self) {
        self.limit.parked.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn at_the_cap_the_longest_parked_connection_makes_room() {
        let limit = Arc::new(ConnLimit::new(2));
        let first = limit.admit();
        let second = limit.admit();
        assert!(matches!(first, Admission::Serve(_)));
        assert!(matches!(second, Admission::Serve(_)));
        // Nobody parked: the third is refused.
        assert!(matches!(limit.admit(), Admission::Refuse(_)));
        assert_eq!(limit.count(), 2);
        let mut older = limit.park();
        let mut newer = limit.park();
        assert!(matches!(limit.admit(), Admission::Serve(_)));
        let chosen = tokio::time::timeout(std::time::Duration::from_secs(1), older.evicted()).await;
        assert!(chosen.is_ok(), "the longest-parked connection is chosen");
        let untouched =
            tokio::time::timeout(std::time::Duration::from_millis(20), newer.evicted()).await;
        assert!(
            untouched.is_err(),
            "only one connection is closed per newcomer"
        );
    }

    #[test]
    fn refusals_in_progress_are_bounded() {
        let limit = Arc::new(ConnLimit::new(1));
        let _served = limit.admit();
        let refusals: Vec<_> = (0..MAX_REFUSING).map(|_| limit.admit()).collect();
        assert!(refusals.iter().all(|r| matches!(r, Admission::Refuse(_))));
        assert!(matches!(limit.admit(), Admission::Close));
        drop(refusals);
        assert!(matches!(limit.admit(), Admission::Refuse(_)));
    }
}

//! The bound of a JS thread's queue of requests: how many wait, and how
//! many body bytes they hold. Past it a request is answered 503 at once
//! instead of piling up in memory behind a busy thread.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests handed to one JS thread and not yet taken by it.
#[derive(Debug)]
pub struct Queue {
    count: AtomicUsize,
    bytes: AtomicUsize,
    max_count: usize,
    max_bytes: usize,
}

impl Queue {
    /// A queue of at most `max_count` requests holding `max_bytes` of bodies.
    pub fn new(max_count: usize, max_bytes: usize) -> Queue {
        Queue {
            count: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_count,
            max_bytes,
        }
    }

    /// Makes room for a request with a body of `bytes`; false when full
    /// (one request is always let in, whatever its body).
    pub fn enter(&self, bytes: usize) -> bool {
        let count = self.count.fetch_add(1, Ordering::AcqRel);
        let held = self.bytes.fetch_add(bytes, Ordering::AcqRel);
        if count < self.max_count && (count == 0 || held.saturating_add(bytes) <= self.max_bytes) {
            return true;
        }
        self.leave(bytes);
        false
    }

    /// Requests waiting now (for the admin listener's `/metrics`).
    pub fn waiting(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// A request of `bytes` left the queue (taken, or never sent).
    pub fn leave(&self, bytes: usize) {
        self.count.fetch_sub(1, Ordering::AcqRel);
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_by_count_or_by_bytes() {
        let queue = Queue::new(2, 100);
        assert!(queue.enter(10));
        assert!(queue.enter(10));
        assert!(!queue.enter(0), "two requests wait already");
        queue.leave(10);
        assert!(!queue.enter(91), "91 more bytes than room");
        assert!(queue.enter(90));
        queue.leave(10);
        queue.leave(90);
        assert!(queue.enter(1000), "one request always fits");
    }
}

//! The bound on asynchronous (`Event`) invocations: how many, and how many
//! payload bytes, may wait for an instance or run at once, across every
//! function. An event is accepted (202) only with a [`Ticket`], held until
//! its invocation ends; without room the Invoke API answers 429, so no
//! event is accepted that will not run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Limits and what is held against them.
#[derive(Debug)]
pub struct EventQueue {
    max_count: u64,
    max_bytes: u64,
    count: AtomicU64,
    bytes: AtomicU64,
}

impl EventQueue {
    /// A queue of at most `max_count` events and `max_bytes` payload bytes.
    pub fn new(max_count: u64, max_bytes: u64) -> Arc<Self> {
        Arc::new(Self {
            max_count,
            max_bytes,
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        })
    }

    /// Room for one event of `len` bytes, or `None` when the queue is full.
    pub fn reserve(self: &Arc<Self>, len: usize) -> Option<Ticket> {
        let len = len as u64;
        let counted = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |count| {
                (count < self.max_count).then_some(count + 1)
            });
        if counted.is_err() {
            return None;
        }
        let sized = self
            .bytes
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bytes| {
                bytes
                    .checked_add(len)
                    .filter(|total| *total <= self.max_bytes)
            });
        if sized.is_err() {
            self.count.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Ticket {
            queue: Arc::clone(self),
            len,
        })
    }
}

/// One accepted event's room in the queue, given back on drop.
#[derive(Debug)]
pub struct Ticket {
    queue: Arc<EventQueue>,
    len: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.queue.bytes.fetch_sub(self.len, Ordering::AcqRel);
        self.queue.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::EventQueue;

    #[test]
    fn bounded_by_count_and_bytes() {
        let queue = EventQueue::new(2, 100);
        let a = queue.reserve(60);
        assert!(a.is_some());
        assert!(queue.reserve(50).is_none(), "over the bytes");
        let b = queue.reserve(40);
        assert!(b.is_some());
        assert!(queue.reserve(0).is_none(), "over the count");
        drop(a);
        let c = queue.reserve(60);
        assert!(c.is_some(), "room given back");
        drop((b, c));
        assert!(queue.reserve(100).is_some(), "every byte given back");
    }
}

//! What a worker route's instance counts for the server's admin listener
//! (`Instance::gauges`, exported as `flexilib_library_worker_…`): its live
//! isolates, the requests they run, open WebSockets and Durable Objects.
//! Plain atomics, changed where the counted thing starts and ends (a
//! [`Held`] unit given back when dropped) and read when `/metrics` is
//! scraped, from the host's admin thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A count of things alive, each holding one unit of it.
#[derive(Debug, Default)]
pub(crate) struct Count(Arc<AtomicUsize>);

impl Count {
    /// One more, until the returned unit is dropped.
    pub(crate) fn hold(&self) -> Held {
        self.0.fetch_add(1, Ordering::Relaxed);
        Held(self.0.clone())
    }

    /// How many now.
    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// One unit of a [`Count`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A route's counts (one set per instance: a rebuilt instance starts its own).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    /// Isolates (QuickJS runtimes with the module loaded) serving.
    pub(crate) isolates: Count,
    /// Requests the isolates run, from their arrival until answered and
    /// their `waitUntil` work is done: fetches, scheduled events, service
    /// binding and Durable Object calls, open WebSockets.
    pub(crate) calls: Count,
    /// Open WebSockets.
    pub(crate) sockets: Count,
    /// Durable Objects constructed and alive on the objects' thread, as
    /// its isolate last said (`objectsLive`); 0 when that isolate ends.
    pub(crate) objects: AtomicUsize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_given_back_when_dropped() {
        let count = Count::default();
        let a = count.hold();
        let b = count.hold();
        assert_eq!(count.get(), 2);
        drop(a);
        assert_eq!(count.get(), 1);
        drop(b);
        assert_eq!(count.get(), 0);
    }
}

//! Idle keep-alive connections of one upstream server, per thread.
//!
//! A tokio I/O object belongs to the runtime that registered it, and the
//! server is headed for one current-thread runtime per core. So a
//! connection is tagged with the thread that opened it and only that thread
//! takes it out again. The idle connections sit in a few shards (a thread
//! uses shard `thread % SHARDS`, so with up to `SHARDS` threads each has its
//! own and its lock is never contended); the lock is there for the reaper,
//! one task per server that has idle connections, which closes those idle
//! for longer than the idle timeout. No task per connection, no hashing:
//! the pool lives in its `UpstreamServer`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::task::Context;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, MutexGuard};

use super::connection::UpstreamConn;

/// Shards per server; more threads than this share them (entries stay
/// tagged with their thread).
const SHARDS: usize = 16;

/// This thread's index, assigned on first use.
pub fn thread_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<Option<usize>> = const { Cell::new(None) };
    }
    INDEX.with(|index| {
        index.get().unwrap_or_else(|| {
            let new = NEXT.fetch_add(1, Ordering::Relaxed);
            index.set(Some(new));
            new
        })
    })
}

struct Idle {
    thread: usize,
    since: Instant,
    conn: UpstreamConn,
}

/// The idle connections to one server.
pub struct ServerPool {
    shards: [Mutex<Vec<Idle>>; SHARDS],
    /// A reaper task is running (or about to).
    reaping: AtomicBool,
}

impl Default for ServerPool {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(Vec::new())),
            reaping: AtomicBool::new(false),
        }
    }
}

impl std::fmt::Debug for ServerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerPool").finish_non_exhaustive()
    }
}

impl ServerPool {
    fn shard(&self, thread: usize) -> MutexGuard<'_, Vec<Idle>> {
        self.shards[thread % SHARDS].lock()
    }

    /// The most recently used idle connection this thread opened that is
    /// still usable (younger than `idle_timeout`, open, ready); the others
    /// met on the way are closed.
    pub fn checkout(&self, idle_timeout: Duration, cx: &mut Context<'_>) -> Option<UpstreamConn> {
        let thread = thread_index();
        loop {
            let idle = {
                let mut shard = self.shard(thread);
                let position = shard.iter().rposition(|idle| idle.thread == thread)?;
                shard.remove(position)
            };
            let mut conn = idle.conn;
            if idle.since.elapsed() < idle_timeout && conn.reusable(cx) {
                return Some(conn);
            }
        }
    }

    /// Keeps `conn` for reuse if it can take another request (else drops
    /// it), and makes sure a reaper will close it after `idle_timeout`.
    pub fn checkin(
        self: &Arc<Self>,
        mut conn: UpstreamConn,
        idle_timeout: Duration,
        cx: &mut Context<'_>,
    ) {
        if !conn.reusable(cx) {
            return;
        }
        // The reaper is a task: no runtime, no pooling.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let thread = conn.thread;
        self.shard(thread).push(Idle {
            thread,
            since: Instant::now(),
            conn,
        });
        if !self.reaping.swap(true, Ordering::AcqRel) {
            runtime.spawn(reap(Arc::downgrade(self), idle_timeout));
        }
    }

    /// Closes connections idle for `idle_timeout`; returns when the next
    /// one expires, or `None` when none is left.
    fn sweep(&self, idle_timeout: Duration) -> Option<Instant> {
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for thread in 0..SHARDS {
            let expired: Vec<Idle> = {
                let mut shard = self.shard(thread);
                let (expired, kept) = std::mem::take(&mut *shard)
                    .into_iter()
                    .partition(|idle| idle.since + idle_timeout <= now);
                *shard = kept;
                for idle in shard.iter() {
                    let at = idle.since + idle_timeout;
                    next = Some(next.map_or(at, |next| next.min(at)));
                }
                expired
            };
            // Closed outside the lock.
            drop(expired);
        }
        next
    }

    /// Number of idle connections (tests).
    #[cfg(test)]
    fn idle_count(&self) -> usize {
        (0..SHARDS).map(|shard| self.shard(shard).len()).sum()
    }
}

/// The reaper of one server's pool: sleeps until the oldest idle
/// connection expires, closes what expired, and ends when nothing is idle
/// (the next check-in starts another) or the pool is gone.
async fn reap(pool: Weak<ServerPool>, idle_timeout: Duration) {
    let mut wake = Instant::now() + idle_timeout;
    loop {
        tokio::time::sleep_until(wake.into()).await;
        let Some(pool) = pool.upgrade() else {
            return;
        };
        if let Some(next) = pool.sweep(idle_timeout) {
            wake = next;
            continue;
        }
        pool.reaping.store(false, Ordering::Release);
        // A check-in between the sweep and the store saw `reaping` set and
        // started no reaper: carry on for it, unless another one started.
        match pool.sweep(idle_timeout) {
            Some(next) if !pool.reaping.swap(true, Ordering::AcqRel) => wake = next,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_get_distinct_indexes() {
        let here = thread_index();
        assert_eq!(here, thread_index());
        let there = std::thread::spawn(thread_index).join().expect("thread");
        assert_ne!(here, there);
    }

    #[test]
    fn an_empty_pool_has_nothing_to_reap() {
        let pool = ServerPool::default();
        assert_eq!(pool.sweep(Duration::from_secs(1)), None);
        assert_eq!(pool.idle_count(), 0);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        assert!(pool.checkout(Duration::from_secs(1), &mut cx).is_none());
    }
}

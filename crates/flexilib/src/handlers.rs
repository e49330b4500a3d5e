//! Handler slots: where blocking library calls run, and the guard that lets
//! the reserve I/O threads accept while they do.
//!
//! Library calls block (a handler may sleep for seconds). They run *inline*
//! on the I/O thread that serves the connection (see [`crate::cores`]),
//! which saves a thread hand-off per request, but never on more than
//! `SERVER_THREAD_COUNT` threads at once: a call first takes one of that
//! many permits, and a request that finds none free awaits one
//! asynchronously, to be served as soon as any call returns.
//!
//! A core thread blocked in a call neither accepts nor serves its other
//! connections. The [`StallGuard`] thread watches the calls: one that is
//! still running after a tick (10 ms, `STALL_TICK`) on a core thread sets the reserve
//! threads accepting (a `watch` they await) until no core thread has
//! stalled for 100 ms. Fast calls cost two atomic increments; the guard
//! sleeps while no call runs.
//!
//! Each I/O thread owns a [`RequestArena`], created on its first call.

use parking_lot::Mutex;
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use crate::arena::{ArenaUsage, RequestArena};

/// How often the stall guard looks at running calls. Each look is a wake-up
/// of its thread, on the CPU the I/O threads share when the server is
/// pinned: at 1 ms those wake-ups cost 3–12% of keep-alive throughput on
/// one core (`wrk -c32`, alternating 5 s runs: 90.7k, 99.3k, 99.2k req/s at
/// 1 ms against 103.2k, 101.7k, 102.4k at 10 ms). A call is seen as
/// stalled after one to two ticks.
const STALL_TICK: Duration = Duration::from_millis(10);
/// Ticks without any call before the stall guard sleeps until the next call
/// (200 ms).
const QUIET_TICKS_BEFORE_SLEEP: u32 = 20;
/// Ticks without a stalled core thread before the reserve threads stop
/// accepting (100 ms).
const CALM_TICKS_BEFORE_QUIET: u32 = 10;

/// Bounds how many library calls run at once and sizes their arenas.
pub struct HandlerSlots {
    permits: Semaphore,
    prealloc: usize,
    retain: usize,
    guard: Arc<StallGuard>,
}

/// Per-I/O-thread state: the arena and the call counter the guard reads.
struct ThreadState {
    /// Boxed: libraries hold its address during a call (and a pending call
    /// takes it away, see [`SlotArena::take_for_pending`]).
    arena: Box<RequestArena>,
    /// Odd while a call runs; incremented at the start and end of each call.
    calls: Arc<AtomicU64>,
}

thread_local! {
    static THREAD_STATE: RefCell<Option<ThreadState>> = const { RefCell::new(None) };
    static RESERVE_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The thread's call counter (odd while a call runs), shared with the
    /// stall guard and with [`CallWatch`]es.
    static CALLS: Arc<AtomicU64> = Arc::new(AtomicU64::new(0));
}

/// Tells whether the I/O thread it was made on is inside a library call
/// (so work that only that thread can do would wait for the call).
#[derive(Debug, Clone)]
pub struct CallWatch(Arc<AtomicU64>);

impl CallWatch {
    /// The calling thread's.
    pub fn this_thread() -> Self {
        Self(CALLS.with(Arc::clone))
    }

    /// True while the thread is inside a library call.
    pub fn in_call(&self) -> bool {
        self.0.load(Ordering::Acquire) % 2 == 1
    }
}

/// Marks the calling thread as a reserve I/O thread (its stalls do not set
/// the reserve accepting) or not; set before its first call.
pub fn set_reserve_thread(reserve: bool) {
    RESERVE_THREAD.with(|cell| cell.set(reserve));
}

/// A thread's call counter, as the stall guard reads it.
struct Counter {
    calls: Arc<AtomicU64>,
    /// Of a core thread (not a reserve thread).
    core: bool,
}

impl HandlerSlots {
    /// `slots` concurrent calls on the I/O threads; each thread's arena
    /// pre-allocates `prealloc` bytes and keeps at most `retain` between
    /// requests. Starts the stall guard thread.
    pub fn start(slots: usize, prealloc: usize, retain: usize) -> std::io::Result<Self> {
        let guard = StallGuard::start()?;
        Ok(Self {
            permits: Semaphore::new(slots),
            prealloc,
            retain,
            guard,
        })
    }

    /// True while a core thread is stalled in a library call (and for 100 ms
    /// after): the reserve threads accept meanwhile.
    pub fn reserve_accepting(&self) -> watch::Receiver<bool> {
        self.guard.accepting.subscribe()
    }

    /// Runs `call` (a blocking library call) once a slot is free, on this
    /// I/O thread, with the thread's request arena; returns what it returned
    /// and the arena's use.
    pub async fn run<R>(&self, call: impl FnOnce(&mut SlotArena<'_>) -> R) -> (R, ArenaUsage) {
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => Some(permit),
            // The semaphore is never closed, so `acquire` cannot fail.
            Err(_) => self.permits.acquire().await.ok(),
        };
        self.run_now(call)
    }

    fn run_now<R>(&self, call: impl FnOnce(&mut SlotArena<'_>) -> R) -> (R, ArenaUsage) {
        THREAD_STATE.with(|cell| {
            let mut slot = cell.borrow_mut();
            let state = slot.get_or_insert_with(|| ThreadState {
                arena: Box::new(RequestArena::new(self.prealloc, self.retain)),
                calls: self.guard.register(!RESERVE_THREAD.with(Cell::get)),
            });
            let preallocated = state.arena.capacity();
            self.guard.call_starts(&state.calls);
            let mut arena = SlotArena {
                arena: &mut state.arena,
                prealloc: self.prealloc,
                retain: self.retain,
                usage: None,
            };
            let result = call(&mut arena);
            let usage = arena.usage.take();
            state.calls.fetch_add(1, Ordering::Release);
            let usage = usage.unwrap_or_else(|| state.arena.finish(preallocated));
            (result, usage)
        })
    }
}

/// The request arena of the I/O thread running a call.
pub struct SlotArena<'a> {
    arena: &'a mut Box<RequestArena>,
    prealloc: usize,
    retain: usize,
    usage: Option<ArenaUsage>,
}

impl SlotArena<'_> {
    /// The arena.
    pub fn get(&self) -> &RequestArena {
        self.arena
    }

    /// Hands the arena, with the request in it, to a call that completes
    /// later; the thread gets a fresh one.
    pub fn take_for_pending(&mut self) -> Box<RequestArena> {
        let fresh = Box::new(RequestArena::new(self.prealloc, self.retain));
        let taken = std::mem::replace(self.arena, fresh);
        self.usage = Some(ArenaUsage {
            preallocated: taken.capacity(),
            allocated: taken.used(),
        });
        taken
    }

    /// Gives back an arena taken by [`take_for_pending`](Self::take_for_pending)
    /// that was not needed after all (the call completed meanwhile): it is
    /// the thread's arena again.
    pub fn restore(&mut self, arena: Box<RequestArena>) {
        *self.arena = arena;
        self.usage = None;
    }
}

/// Sets the reserve threads accepting while a library call blocks a core
/// thread for longer than a tick.
struct StallGuard {
    counters: Mutex<Vec<Counter>>,
    /// True while the reserve threads should accept.
    accepting: watch::Sender<bool>,
    sleeping: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

impl StallGuard {
    fn start() -> std::io::Result<Arc<Self>> {
        let guard = Arc::new(Self {
            counters: Mutex::new(Vec::new()),
            accepting: watch::Sender::new(false),
            sleeping: AtomicBool::new(false),
            thread: Mutex::new(None),
        });
        let watcher = Arc::clone(&guard);
        let handle = std::thread::Builder::new()
            .name("flexilib-stall-guard".into())
            .spawn(move || watcher.run())?;
        *guard.thread.lock() = Some(handle.thread().clone());
        Ok(guard)
    }

    /// A new I/O thread's call counter.
    fn register(&self, core: bool) -> Arc<AtomicU64> {
        let calls = CALLS.with(Arc::clone);
        self.counters.lock().push(Counter {
            calls: Arc::clone(&calls),
            core,
        });
        calls
    }

    /// Marks a call as started, waking the guard if it sleeps.
    fn call_starts(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.unpark();
        }
    }

    fn unpark(&self) {
        if let Some(thread) = &*self.thread.lock() {
            thread.unpark();
        }
    }

    fn set_accepting(&self, accepting: bool) {
        self.accepting.send_if_modified(|current| {
            let changed = *current != accepting;
            *current = accepting;
            changed
        });
    }

    fn run(&self) {
        // Per counter: the value seen at the last tick.
        let mut seen: Vec<u64> = Vec::new();
        let mut counters: Vec<(Arc<AtomicU64>, bool)> = Vec::new();
        let mut quiet = 0u32;
        let mut calm = 0u32;
        loop {
            std::thread::sleep(STALL_TICK);
            {
                // Re-read the list only when an I/O thread registered since.
                let list = self.counters.lock();
                if list.len() != counters.len() {
                    counters = list
                        .iter()
                        .map(|c| (Arc::clone(&c.calls), c.core))
                        .collect();
                }
            }
            seen.resize(counters.len(), 0);
            let mut active = false;
            let mut core_stalled = false;
            for ((counter, core), last) in counters.iter().zip(seen.iter_mut()) {
                let now = counter.load(Ordering::Acquire);
                // Odd and unchanged: the same call has been running for at least a tick.
                core_stalled |= *core && now == *last && now % 2 == 1;
                active |= now != *last || now % 2 == 1;
                *last = now;
            }
            if core_stalled {
                calm = 0;
                self.set_accepting(true);
            } else {
                calm = calm.saturating_add(1);
                if calm == CALM_TICKS_BEFORE_QUIET {
                    self.set_accepting(false);
                }
            }
            quiet = if active { 0 } else { quiet + 1 };
            if quiet >= QUIET_TICKS_BEFORE_SLEEP {
                self.sleeping.store(true, Ordering::SeqCst);
                let running = counters
                    .iter()
                    .any(|(c, _)| c.load(Ordering::SeqCst) % 2 == 1);
                if running {
                    self.sleeping.store(false, Ordering::SeqCst);
                } else {
                    std::thread::park();
                }
                quiet = 0;
            }
        }
    }
}

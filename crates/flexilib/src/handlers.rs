//! Handler slots: where blocking library calls run, and the guard that keeps
//! I/O flowing while they do.
//!
//! Library calls block (a handler may sleep for seconds). They run *inline*
//! on the I/O runtime's threads, which saves a thread hand-off per
//! request, but never on more than `SERVER_THREAD_COUNT` threads at once: a
//! call first takes one of that many permits, and a request that finds none
//! free awaits one asynchronously, to be served as soon as any call returns.
//! The runtime has `RESERVED_IO_THREADS` threads beyond the permits, so some
//! I/O thread is always outside a library call. ("Worker" is the server
//! process; tokio's worker threads are called I/O threads here.)
//!
//! An I/O thread blocked in a call neither polls the socket driver nor runs
//! its queued tasks, and tokio's idle threads sleep until told there is work.
//! The [`StallGuard`] thread watches the calls: one that is still running
//! after a tick (1 ms) makes it wake an idle I/O thread, which then takes
//! over the driver and steals the blocked thread's queued tasks. Fast calls
//! cost two atomic increments; only slow calls cost a wake-up.
//!
//! Each I/O thread owns a [`RequestArena`], created on its first call.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::Thread;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use crate::arena::{ArenaUsage, RequestArena};

/// How often the stall guard looks at running calls.
const STALL_TICK: Duration = Duration::from_millis(1);
/// Ticks without any call before the stall guard sleeps until the next call.
const QUIET_TICKS_BEFORE_SLEEP: u32 = 200;
/// Ticks without a stalled call before the reserve I/O threads are held back again.
const CALM_TICKS_BEFORE_HOLD: u32 = 100;
/// How often a released reserve I/O thread checks whether it may be held again.
const RESERVE_RECHECK: Duration = Duration::from_millis(20);

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
}

impl HandlerSlots {
    /// `slots` concurrent calls on `runtime`'s I/O threads; each thread's arena
    /// pre-allocates `prealloc` bytes and keeps at most `retain` between
    /// requests. Starts the stall guard thread.
    /// `reserved` I/O threads are held out of the runtime until a call stalls.
    pub fn start(
        slots: usize,
        reserved: usize,
        prealloc: usize,
        retain: usize,
        runtime: Handle,
    ) -> std::io::Result<Self> {
        let guard = StallGuard::start(runtime.clone())?;
        for _ in 0..reserved {
            drop(runtime.spawn(hold_in_reserve(Arc::clone(&guard))));
        }
        Ok(Self {
            permits: Semaphore::new(slots),
            prealloc,
            retain,
            guard,
        })
    }

    /// Lets the reserve I/O threads go for good (before the runtime shuts down).
    pub fn release_reserve(&self) {
        self.guard.reserve.set(ReserveState::Released);
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
                calls: self.guard.register(),
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

/// Wakes an idle I/O thread when a library call blocks its I/O thread for
/// longer than a tick, so that I/O never waits for a handler.
struct StallGuard {
    counters: Mutex<Vec<Arc<AtomicU64>>>,
    reserve: Reserve,
    /// Set by an I/O thread about to be held in reserve: wake another one.
    kick: AtomicBool,
    sleeping: AtomicBool,
    thread: Mutex<Option<Thread>>,
    runtime: Handle,
}

impl StallGuard {
    fn start(runtime: Handle) -> std::io::Result<Arc<Self>> {
        let guard = Arc::new(Self {
            counters: Mutex::new(Vec::new()),
            reserve: Reserve::default(),
            kick: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            thread: Mutex::new(None),
            runtime,
        });
        let watcher = Arc::clone(&guard);
        let handle = std::thread::Builder::new()
            .name("flexilib-stall-guard".into())
            .spawn(move || watcher.run())?;
        *guard.thread.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(handle.thread().clone());
        Ok(guard)
    }

    /// A new I/O thread's call counter.
    fn register(&self) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        self.counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&counter));
        counter
    }

    /// Marks a call as started, waking the guard if it sleeps.
    fn call_starts(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) && self.sleeping.swap(false, Ordering::SeqCst) {
            self.unpark();
        }
    }

    fn unpark(&self) {
        if let Some(thread) = &*self.thread.lock().unwrap_or_else(PoisonError::into_inner) {
            thread.unpark();
        }
    }

    /// Wakes an idle I/O thread from outside the runtime: an empty task lands in
    /// the global queue, and the I/O thread woken to run it then polls the
    /// socket driver and steals queued tasks.
    fn wake_an_io_thread(&self) {
        drop(self.runtime.spawn(async {}));
    }

    /// Blocks the calling I/O thread while the reserve is held. The thread may
    /// have been the one polling the socket driver, so first have the guard
    /// wake another I/O thread to take over.
    fn hold_thread_in_reserve(&self) {
        if self.reserve.is_held() {
            self.kick.store(true, Ordering::SeqCst);
            self.sleeping.store(false, Ordering::SeqCst);
            self.unpark();
            self.reserve.wait_until_needed();
        }
    }

    fn run(&self) {
        // Per counter: the value seen at the last tick and whether that call was already reported.
        let mut seen: Vec<(u64, bool)> = Vec::new();
        let mut counters: Vec<Arc<AtomicU64>> = Vec::new();
        let mut quiet = 0u32;
        let mut calm = 0u32;
        loop {
            std::thread::sleep(STALL_TICK);
            if self.kick.swap(false, Ordering::SeqCst) {
                self.wake_an_io_thread();
            }
            {
                // Re-read the list only when an I/O thread registered since.
                let list = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
                if list.len() != counters.len() {
                    counters.clone_from(&list);
                }
            }
            seen.resize(counters.len(), (0, false));
            let mut active = false;
            let mut newly_stalled = 0usize;
            let mut any_stalled = false;
            for (counter, (last, reported)) in counters.iter().zip(seen.iter_mut()) {
                let now = counter.load(Ordering::Acquire);
                if now != *last {
                    active = true;
                    *reported = false;
                } else if now % 2 == 1 {
                    // The same call has been running for at least a tick.
                    any_stalled = true;
                    if !*reported {
                        *reported = true;
                        newly_stalled += 1;
                    }
                }
                *last = now;
                active |= now % 2 == 1;
            }
            if any_stalled {
                calm = 0;
                self.reserve.set(ReserveState::Needed);
            } else {
                calm = calm.saturating_add(1);
                if calm == CALM_TICKS_BEFORE_HOLD {
                    self.reserve.set(ReserveState::Held);
                }
            }
            for _ in 0..newly_stalled {
                self.wake_an_io_thread();
            }
            quiet = if active { 0 } else { quiet + 1 };
            if quiet >= QUIET_TICKS_BEFORE_SLEEP {
                self.sleeping.store(true, Ordering::SeqCst);
                let running = counters.iter().any(|c| c.load(Ordering::SeqCst) % 2 == 1);
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

/// Whether the reserve I/O threads may take part in the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum ReserveState {
    /// Held back: no call is stalling its I/O thread.
    #[default]
    Held,
    /// A call stalls its I/O thread: the reserve works like any I/O thread.
    Needed,
    /// Shutting down: never held again.
    Released,
}

/// Keeps the reserved I/O threads out of tokio's work sharing while no library
/// call stalls. On one CPU, an extra idle I/O thread would otherwise be woken to
/// steal half of the busy I/O thread's tasks after every batch of socket events,
/// and the two would take turns on the CPU: same throughput, twice the p99.
#[derive(Debug, Default)]
struct Reserve {
    state: Mutex<ReserveState>,
    changed: Condvar,
}

impl Reserve {
    fn set(&self, state: ReserveState) {
        let mut current = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if *current == ReserveState::Released || *current == state {
            return;
        }
        *current = state;
        self.changed.notify_all();
    }

    fn is_held(&self) -> bool {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) == ReserveState::Held
    }

    /// Blocks the calling I/O thread while the reserve is held.
    fn wait_until_needed(&self) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while *state == ReserveState::Held {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A task that parks the I/O thread running it while the reserve is held, and
/// lets it work (awaiting, not blocking) while the reserve is needed.
///
/// While it blocks, its I/O thread's LIFO slot is empty (tokio runs that slot
/// first, and this task schedules nothing before blocking), and tasks left in
/// its run queue are stolen by the active I/O threads.
async fn hold_in_reserve(guard: Arc<StallGuard>) {
    loop {
        guard.hold_thread_in_reserve();
        loop {
            tokio::time::sleep(RESERVE_RECHECK).await;
            if guard.reserve.is_held() {
                break;
            }
        }
    }
}

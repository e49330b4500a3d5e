//! What is alive of the Lambda instances, and the end of what they leave
//! behind.
//!
//! Every instance has a mark ([`crate::process_tree::INSTANCE_MARK`] in its
//! environment, inherited by whatever it starts) and a leader (the process
//! the pool started, in its own process group). The server is a child
//! subreaper, so a process an instance started and left (a
//! `setsid sleep 300 &` whose parent exited) becomes the server's child.
//! The reaper thread, woken whenever an instance ends and then every
//! 250 ms while strays remain, kills such children whose mark names no live
//! instance (or that carry none), with everything below them, and reaps
//! them. At shutdown [`end_all`] ends every instance and every stray.

use parking_lot::{Condvar, Mutex, MutexGuard};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::os;
use crate::process_tree;

#[derive(Default)]
struct Live {
    /// Leaders not yet reaped (their exit watcher reaps them).
    leaders: HashSet<u32>,
    /// Marks of instances not yet ended.
    marks: HashSet<String>,
    /// Instances being started (a mark made, the leader not known yet).
    /// Between `fork` and `exec` such a child is the server's with the
    /// server's environment, so no mark: it must not be taken for a stray.
    spawning: usize,
    /// The reaper thread has work.
    wake: bool,
}

struct Registry {
    live: Mutex<Live>,
    woken: Condvar,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        if let Err(error) = os::become_child_subreaper() {
            tracing::warn!(%error, "cannot become a child subreaper: processes a Lambda function leaves behind in a session of their own may outlive it");
        }
        let started = std::thread::Builder::new()
            .name("flexilib-reaper".into())
            .spawn(run);
        if let Err(error) = started {
            tracing::warn!(%error, "cannot start the reaper thread");
        }
        Registry {
            live: Mutex::new(Live::default()),
            woken: Condvar::new(),
        }
    })
}

fn live() -> MutexGuard<'static, Live> {
    registry().live.lock()
}

/// A fresh mark for an instance about to start, registered as live.
pub fn new_mark() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mark = format!(
        "{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut live = live();
    live.marks.insert(mark.clone());
    live.spawning += 1;
    mark
}

/// The instance's leader `pid` started.
pub fn leader_started(pid: u32) {
    let mut live = live();
    live.leaders.insert(pid);
    live.spawning = live.spawning.saturating_sub(1);
}

/// The instance with `mark` failed to start.
pub fn start_failed(mark: &str) {
    let mut live = live();
    live.marks.remove(mark);
    live.spawning = live.spawning.saturating_sub(1);
}

/// The instance's leader was reaped: its mark is no longer live, and what
/// it left behind is ended now.
pub fn ended(pid: u32, mark: &str) {
    let mut live = live();
    live.leaders.remove(&pid);
    live.marks.remove(mark);
    live.wake = true;
    drop(live);
    registry().woken.notify_one();
}

/// True while `mark` belongs to a live instance.
pub fn is_live(mark: &str) -> bool {
    live().marks.contains(mark)
}

/// Kills every instance's process group and every stray (shutdown), and
/// reaps the strays, waiting at most a second.
pub fn end_all() {
    let leaders: Vec<u32> = {
        let mut live = live();
        live.marks.clear();
        // Nothing is kept at shutdown, not even an instance being started.
        live.spawning = 0;
        live.leaders.iter().copied().collect()
    };
    for leader in &leaders {
        // Not reaped yet: the group id is still theirs.
        os::kill_process_group(*leader);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while sweep() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One pass: strays of ended instances killed, exited ones reaped. A
/// child without a mark may be a process being started (an instance's
/// leader, an installer) before `exec`: while one is being started, or
/// while the child still runs the server's own image, it is kept and looked
/// at again on the next pass.
fn sweep() -> usize {
    let (leaders, spawning) = {
        let live = live();
        (live.leaders.clone(), live.spawning > 0)
    };
    let unsure = std::cell::Cell::new(0);
    let pending = process_tree::end_strays(&|pid| leaders.contains(&pid), &|pid| {
        match process_tree::instance_mark(pid) {
            Some(mark) => is_live(&mark),
            None if spawning || process_tree::runs_own_image(pid) => {
                unsure.set(unsure.get() + 1);
                true
            }
            None => false,
        }
    });
    pending + unsure.get()
}

/// A live mark for a helper process of the server (a dependency
/// installer): it and what it starts are not strays until
/// [`helper_ended`].
pub fn helper_mark() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mark = format!(
        "{}.helper{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    live().marks.insert(mark.clone());
    mark
}

/// The helper with `mark` is done: what it left behind is ended.
pub fn helper_ended(mark: &str) {
    let mut live = live();
    live.marks.remove(mark);
    live.wake = true;
    drop(live);
    registry().woken.notify_one();
}

/// The reaper thread.
fn run() {
    let mut pending = 0;
    loop {
        {
            let registry = registry();
            let mut live = registry.live.lock();
            if pending == 0 {
                while !live.wake {
                    registry.woken.wait(&mut live);
                }
            } else if !live.wake {
                registry
                    .woken
                    .wait_for(&mut live, Duration::from_millis(250));
            }
            live.wake = false;
        }
        pending = sweep();
    }
}

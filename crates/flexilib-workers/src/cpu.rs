//! The CPU budget of a stretch of JavaScript, on the thread's CPU clock:
//! time the thread spent waiting for a CPU (a busy machine, a stopped
//! process) is not charged.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// CPU time the calling thread has used.
pub fn thread_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes a `timespec` into memory we own and
    // pass exclusively; CLOCK_THREAD_CPUTIME_ID names the calling thread.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if rc != 0 {
        // Not expected on Linux; wall-clock time is an upper bound.
        return wall_fallback();
    }
    Duration::new(
        u64::try_from(now.tv_sec).unwrap_or(0),
        u32::try_from(now.tv_nsec).unwrap_or(0),
    )
}

fn wall_fallback() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed()
}

/// The CPU deadline of the running stretch, checked by QuickJS's
/// interrupt handler.
#[derive(Default)]
pub struct Limits {
    deadline: Cell<Option<Duration>>,
    fired: Cell<bool>,
}

impl Limits {
    /// Allows `budget` of CPU time from now; returns the start, for
    /// [`thread_time`] differences.
    pub fn arm(&self, budget: Duration) -> Duration {
        let start = thread_time();
        self.deadline.set(Some(start.saturating_add(budget)));
        start
    }

    /// No limit (between stretches).
    pub fn disarm(&self) {
        self.deadline.set(None);
    }

    /// The interrupt handler: true (stop the JavaScript) once past the
    /// deadline.
    pub fn check(&self) -> bool {
        match self.deadline.get() {
            Some(deadline) if thread_time() >= deadline => {
                self.fired.set(true);
                true
            }
            _ => false,
        }
    }

    /// Whether the deadline has stopped the JavaScript since the last
    /// [`Limits::take_fired`].
    pub fn fired(&self) -> bool {
        self.fired.get()
    }

    /// Like [`Limits::fired`], and clears it.
    pub fn take_fired(&self) -> bool {
        self.fired.replace(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeping_uses_no_cpu_time_and_spinning_does() {
        let before = thread_time();
        std::thread::sleep(Duration::from_millis(50));
        assert!(thread_time() - before < Duration::from_millis(20));
        let limits = Limits::default();
        limits.arm(Duration::from_millis(5));
        assert!(!limits.check() || limits.fired());
        let spin = Instant::now();
        while !limits.check() {
            assert!(spin.elapsed() < Duration::from_secs(10));
        }
        assert!(limits.take_fired());
        assert!(!limits.fired());
        limits.disarm();
        assert!(!limits.check());
    }
}

//! The supervisor: a parent process that owns the listening socket and runs
//! the server as a child process that inherits it.
//!
//! * The child gets the socket's descriptor in `FLEXILIB_LISTEN_FD`; a
//!   replacement child accepts from the same socket, so connections that
//!   arrive while a crashed child is replaced wait in the kernel backlog and
//!   are served: none is refused.
//! * A child that dies by a signal or exits non-zero is logged (with the
//!   signal's name) and restarted at once; if it keeps dying within
//!   [`STABLE_AFTER`] of starting, each restart waits twice as long as the
//!   previous one, from [`FIRST_BACKOFF`] up to [`MAX_BACKOFF`].
//! * SIGHUP, SIGTERM and SIGINT are forwarded to the child. After SIGTERM or
//!   SIGINT the supervisor exits with the child's status (0 for a clean
//!   shutdown) instead of restarting it.
//! * A child that exits with [`EXIT_STARTUP_FAILED`] (bad config, socket
//!   error) is not restarted: the supervisor exits with that status. A
//!   config file broken since the last start is no such failure: children
//!   fall back to the last good config (see [`crate::last_good`]).
//!   One that lacked the resources to start its threads exits with
//!   [`EXIT_NO_RESOURCES`] and is restarted like a crash.
//!
//! The child asks the kernel for SIGTERM should the supervisor die
//! (`PR_SET_PDEATHSIG`): it then shuts down as after any SIGTERM, within
//! `SHUTDOWN_GRACE_SECONDS`. A worker that dies leaves its private library
//! copies behind; the supervisor removes them.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use crate::last_good::{LastGood, LAST_GOOD_CONFIG_ENV};
use crate::os::{self, Signal};

/// Exit status of a worker that could not start; not worth restarting.
pub const EXIT_STARTUP_FAILED: i32 = 78;
/// Exit status of a worker that lacked the resources to start (threads,
/// memory): restarted like a crash (`EX_TEMPFAIL`).
pub const EXIT_NO_RESOURCES: i32 = 75;
/// Environment variable carrying the inherited listening socket.
pub const LISTEN_FD_ENV: &str = "FLEXILIB_LISTEN_FD";
/// Environment variable carrying the supervisor's pid.
pub const SUPERVISOR_PID_ENV: &str = "FLEXILIB_SUPERVISOR_PID";
/// A child that lived this long is considered healthy again.
pub const STABLE_AFTER: Duration = Duration::from_secs(10);
/// Delay before the second restart in a crash loop.
pub const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between restarts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Runs children with the listening socket `listen_fd` until told to stop.
/// Returns the exit code for the supervisor.
pub fn run(listen_fd: i32, last_good: Option<&LastGood>) -> std::io::Result<i32> {
    let signals = os::SignalSet::block(&[Signal::Child, Signal::Term, Signal::Int, Signal::Hup])?;
    // What a dead worker's Lambda instances left behind comes here, not to
    // `init`, and is ended (see `end_strays`).
    if let Err(error) = os::become_child_subreaper() {
        tracing::warn!(%error, "cannot become a child subreaper: processes left by a killed worker's functions may outlive it");
    }
    let mut crashes_in_a_row = 0u32;
    loop {
        let started = Instant::now();
        let (status, stopping, lived) = match spawn(listen_fd, last_good) {
            Ok(mut child) => {
                tracing::info!(pid = child.id(), "worker started");
                // The supervisor only waits from here on: let its RSS show that.
                os::drop_unused_code_pages();
                let (status, stopping) = supervise(&mut child, &signals)?;
                end_strays();
                // Library copies a crashed worker could not remove.
                crate::private_dirs::remove_all_of(child.id());
                (Some(status), stopping, started.elapsed())
            }
            Err(error) => {
                tracing::error!(%error, "cannot start a worker");
                (None, false, Duration::ZERO)
            }
        };
        let Some(status) = status else {
            crashes_in_a_row += 1;
            if wait_or_stop(&signals, backoff(crashes_in_a_row.max(2)))? {
                return Ok(0);
            }
            continue;
        };
        if stopping {
            return Ok(exit_code(status));
        }
        if status.code() == Some(0) {
            tracing::info!("worker exited cleanly; supervisor exiting");
            return Ok(0);
        }
        if status.code() == Some(EXIT_STARTUP_FAILED) {
            tracing::error!("worker could not start; not restarting");
            return Ok(EXIT_STARTUP_FAILED);
        }
        crashes_in_a_row = if lived >= STABLE_AFTER {
            1
        } else {
            crashes_in_a_row + 1
        };
        let delay = backoff(crashes_in_a_row);
        tracing::error!(
            cause = %describe(status),
            lived_ms = lived.as_millis() as u64,
            restart_in_ms = delay.as_millis() as u64,
            "worker died; restarting"
        );
        if wait_or_stop(&signals, delay)? {
            return Ok(0);
        }
    }
}

/// Waits `delay` while handling signals; true if SIGTERM/SIGINT arrived.
fn wait_or_stop(signals: &os::SignalSet, delay: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + delay;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        if let Some(Signal::Term | Signal::Int) = signals.wait(Some(left))? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Restart delay for the `n`th crash in a row: none for the first.
fn backoff(n: u32) -> Duration {
    if n <= 1 {
        return Duration::ZERO;
    }
    FIRST_BACKOFF
        .saturating_mul(1 << (n - 2).min(16))
        .min(MAX_BACKOFF)
}

fn spawn(listen_fd: i32, last_good: Option<&LastGood>) -> std::io::Result<Child> {
    // The running binary, even if its file was replaced or deleted since.
    let mut command = Command::new("/proc/self/exe");
    if let Some(name) = std::env::args_os().next() {
        command.arg0(name);
    }
    command
        .args(std::env::args_os().skip(1))
        .env(LISTEN_FD_ENV, listen_fd.to_string())
        .env(SUPERVISOR_PID_ENV, std::process::id().to_string());
    if let Some(last_good) = last_good {
        command.env(LAST_GOOD_CONFIG_ENV, last_good.path());
    }
    command.spawn()
}

/// Waits for the child to exit, forwarding signals. Returns its status and
/// whether a stop was requested.
fn supervise(child: &mut Child, signals: &os::SignalSet) -> std::io::Result<(ExitStatus, bool)> {
    let mut stopping = false;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, stopping));
        }
        match signals.wait(None)? {
            Some(signal @ (Signal::Term | Signal::Int)) => {
                stopping = true;
                os::send_signal(child.id(), signal);
            }
            Some(Signal::Hup) => os::send_signal(child.id(), Signal::Hup),
            Some(Signal::Child) | None => {
                // Orphans of a worker's processes, if any, exited: reap them.
                let worker = child.id();
                crate::process_tree::end_strays(&|pid| pid == worker, &|_| false);
            }
        }
    }
}

/// Kills and reaps every child but the worker: the processes a killed
/// worker's instances left (their leaders die with the worker,
/// `PR_SET_PDEATHSIG`; what they started comes to this subreaper). Waits at
/// most a second for them to go.
fn end_strays() {
    let deadline = Instant::now() + Duration::from_secs(1);
    while crate::process_tree::end_strays(&|_| false, &|_| false) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn exit_code(status: ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => format!(
            "killed by signal {signal} ({}){}",
            os::signal_name(signal),
            if status.core_dumped() {
                ", core dumped"
            } else {
                ""
            }
        ),
        (None, None) => "unknown".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(5), Duration::from_millis(800));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }
}

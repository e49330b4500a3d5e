//! The OS boundary: process limits, memory trimming, signals, inherited
//! sockets, child processes. With `targets::native::ffi` and `arena`, the
//! only `unsafe` code.

/// Raises the soft limit on open files to the hard limit, so that the server
/// can hold as many connections as the system allows (the usual soft limit
/// of 1024 would refuse connections long before memory runs out).
/// Returns the new soft limit.
pub fn raise_open_file_limit() -> std::io::Result<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid `rlimit`; raising the soft limit up to
        // the hard limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(limit.rlim_cur)
}

/// Returns free heap pages to the OS (glibc `malloc_trim`): the buffers of
/// parked connections are freed in the middle of the heap, where glibc does
/// not release them on its own.
pub fn release_free_memory() {
    // SAFETY: malloc_trim only inspects and trims the allocator's own free
    // lists; it is thread-safe.
    unsafe { libc::malloc_trim(0) };
}

/// The signals the supervisor handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGCHLD: a child changed state.
    Child,
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGHUP.
    Hup,
}

impl Signal {
    fn number(self) -> libc::c_int {
        match self {
            Signal::Child => libc::SIGCHLD,
            Signal::Term => libc::SIGTERM,
            Signal::Int => libc::SIGINT,
            Signal::Hup => libc::SIGHUP,
        }
    }

    fn from_number(number: libc::c_int) -> Option<Self> {
        [Signal::Child, Signal::Term, Signal::Int, Signal::Hup]
            .into_iter()
            .find(|signal| signal.number() == number)
    }
}

/// Signals blocked for the calling (single) thread and taken synchronously
/// with `sigtimedwait`, so that no handler runs asynchronously.
pub struct SignalSet {
    set: libc::sigset_t,
}

/// A `sigset_t` holding `signals`.
fn sigset(signals: &[Signal]) -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is a valid value to initialise with sigemptyset.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        for signal in signals {
            libc::sigaddset(&mut set, signal.number());
        }
    }
    set
}

/// Changes the calling thread's signal mask (`how`: SIG_BLOCK, SIG_UNBLOCK
/// or SIG_SETMASK) by `signals`.
fn change_mask(how: libc::c_int, signals: &[Signal]) -> std::io::Result<()> {
    let set = sigset(signals);
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(how, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

impl SignalSet {
    /// Blocks `signals` for the calling thread. Threads it starts later, and
    /// child processes started with `std::process::Command`, inherit the
    /// blocked mask: std passes it through `exec` (since rust-lang/rust#101077,
    /// 2022; before, it cleared the mask in the child).
    pub fn block(signals: &[Signal]) -> std::io::Result<Self> {
        change_mask(libc::SIG_BLOCK, signals)?;
        Ok(Self {
            set: sigset(signals),
        })
    }

    /// Waits for one of the signals, up to `timeout` (for ever if `None`).
    /// `Ok(None)` on timeout or interruption.
    pub fn wait(&self, timeout: Option<std::time::Duration>) -> std::io::Result<Option<Signal>> {
        let timespec = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
        });
        let timeout_ptr = timespec
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `self.set` is an initialised sigset_t; a null siginfo
        // pointer is allowed; `timeout_ptr` is null or points to `timespec`,
        // which outlives the call.
        let number = unsafe { libc::sigtimedwait(&self.set, std::ptr::null_mut(), timeout_ptr) };
        if number < 0 {
            let error = std::io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(None),
                _ => Err(error),
            };
        }
        Ok(Signal::from_number(number))
    }
}

/// Sends `signal` to process `pid` (errors, e.g. an exited process, ignored).
pub fn send_signal(pid: u32, signal: Signal) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid, signal.number()) };
}

/// The conventional name of a signal number.
pub fn signal_name(number: i32) -> &'static str {
    match number {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGINT => "SIGINT",
        libc::SIGHUP => "SIGHUP",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGSYS => "SIGSYS",
        libc::SIGQUIT => "SIGQUIT",
        _ => "unnamed signal",
    }
}

/// Makes `fd` survive `exec` (clears `FD_CLOEXEC`), so a child inherits it.
pub fn inherit_fd(fd: i32) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; F_GETFD/F_SETFD take no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Raises the listen backlog of a listening socket (std uses 128), so that
/// connections wait in the kernel while a worker restarts.
pub fn set_listen_backlog(fd: i32, backlog: i32) -> std::io::Result<()> {
    // SAFETY: listen on a descriptor we own that is already listening.
    if unsafe { libc::listen(fd, backlog) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Takes ownership of an inherited listening socket.
///
/// Fails unless `fd` is an open TCP listening socket, so a wrong number in
/// the environment gives an error instead of adopting some other file.
pub fn adopt_listener(fd: i32) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::FromRawFd;
    let mut accepting: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: valid pointers to a c_int and its length for getsockopt.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut accepting as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if accepting == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("descriptor {fd} is not a listening socket"),
        ));
    }
    // SAFETY: `fd` is an open listening socket (checked above) handed to
    // this process by its supervisor for it alone to use.
    Ok(unsafe { std::net::TcpListener::from_raw_fd(fd) })
}

/// Asks for SIGTERM when the parent process dies; false if the parent
/// (`expected_parent`) is already gone.
pub fn terminate_with_parent(expected_parent: u32) -> bool {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and no pointers.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong) };
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    u32::try_from(parent).is_ok_and(|parent| parent == expected_parent)
}

/// Makes `signals` the calling thread's whole signal mask: every other
/// signal is unblocked. Threads started later inherit the mask. A worker
/// starts with its supervisor's mask (inherited through `exec`).
pub fn block_only(signals: &[Signal]) {
    if let Err(error) = change_mask(libc::SIG_SETMASK, signals) {
        tracing::warn!(%error, "cannot set the signal mask");
    }
}

/// Unblocks `signals` for the calling thread; one of them that is pending
/// is delivered at once.
pub fn unblock(signals: &[Signal]) {
    if let Err(error) = change_mask(libc::SIG_UNBLOCK, signals) {
        tracing::warn!(%error, "cannot unblock signals");
    }
}

/// False if the file system holding `path` is mounted `noexec` (libraries
/// cannot be mapped executable from it).
pub fn allows_exec(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero statvfs is a valid value for statvfs to overwrite.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `stats` a writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) } != 0 {
        return false;
    }
    stats.f_flag & libc::ST_NOEXEC == 0
}

/// Sets `FD_CLOEXEC` on `fd`, so that processes started later do not inherit it.
pub fn close_on_exec(fd: i32) -> std::io::Result<()> {
    // SAFETY: fcntl on a descriptor we own; F_GETFD/F_SETFD take no pointers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Drops this process's resident pages of executable file mappings (its own
/// code and the shared libraries' code) with `madvise(MADV_DONTNEED)`. The
/// kernel maps them back, from the page cache, when they are next touched,
/// so afterwards only code actually in use counts in RSS; startup-only code
/// (argument parsing, config loading) no longer does. Only `r-xp` mappings
/// are advised: code is never modified, while read-only data may be (RELRO
/// sections are relocated, then made read-only), and dropping it would lose
/// the relocations. Returns how many bytes of mappings were advised.
pub fn drop_unused_code_pages() -> usize {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut advised = 0;
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms), Some(_offset), Some(_device), Some(inode)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        // File-backed (inode != 0), private code.
        if inode == "0" || perms != "r-xp" {
            continue;
        }
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        if end <= start {
            continue;
        }
        // SAFETY: the range is a whole, page-aligned, executable, unwritable
        // file mapping of this process (from /proc/self/maps); its pages are
        // unmodified copies of the file, so MADV_DONTNEED only discards them
        // and the next access reads the same bytes back.
        if unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) }
            == 0
        {
            advised += end - start;
        }
    }
    advised
}

/// Makes the process `command` starts receive SIGKILL when the thread that
/// starts it (a long-lived I/O thread), and so this process, dies: even a
/// SIGKILL of the server leaves no Lambda instance behind. A child whose
/// parent is already gone when it starts exits at once.
pub fn kill_child_with_parent(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (prctl, getppid, _exit); it
    // allocates nothing and takes no lock.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// Sends SIGKILL to every process in process group `group` (a Lambda
/// instance and whatever it started). Errors (the group is gone) are ignored.
pub fn kill_process_group(group: u32) {
    let Ok(group) = libc::pid_t::try_from(group) else {
        return;
    };
    if group <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; a negative pid names
    // a process group, and `group` > 1 never means "every process".
    unsafe { libc::kill(-group, libc::SIGKILL) };
}

/// Ends the process now with `status`: no unwinding, no exit handlers, no
/// waiting for other threads (any of which may be what is stuck).
pub fn exit_at_once(status: i32) -> ! {
    // SAFETY: _exit has no preconditions; it does not return.
    unsafe { libc::_exit(status) }
}

/// Takes an exclusive `flock` on `file` without waiting; `Ok(false)` if
/// another open file description holds one. The lock goes when every
/// descriptor of it is closed, at the latest when the process ends.
pub fn try_lock_exclusive(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd as _;
    // SAFETY: flock on a descriptor owned by `file`, alive for the call; it
    // takes no pointers.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(false);
    }
    Err(error)
}

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Makes this process a child subreaper (`PR_SET_CHILD_SUBREAPER`): a
/// process started below it whose parent exits (a Lambda function's
/// `setsid sleep 300 &`) becomes its child instead of `init`'s, so it can
/// still be found and ended.
pub fn become_child_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes an integer flag and
    // no pointers.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGKILL to process `pid` (errors, e.g. an exited process, ignored).
pub fn kill_process(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions; `pid` > 1 names one
    // process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Reaps child `pid` if it has exited; true if it was reaped (or is not
/// this process's child). Never waits, and never touches another child.
pub fn reap_exited_child(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return true;
    };
    let mut status = 0;
    // SAFETY: waitpid for one given child with WNOHANG; `status` is a valid,
    // writable int for the call.
    let rc = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    rc == pid || rc < 0
}

/// Opens the directory `path` (`O_PATH`: for lookups beneath it only).
pub fn open_directory(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(path)
}

/// Opens `name` for reading beneath the directory `dir` with `openat2`
/// and `RESOLVE_BENEATH` (Linux 5.6): the kernel refuses `..`, absolute
/// paths and symlinks whose resolution would leave `dir` (`EXDEV`), and
/// magic links such as `/proc/self/fd/N` (`ELOOP`), all in the one
/// lookup that opens it. `O_NONBLOCK`, so a FIFO placed there never blocks
/// the thread (the caller serves regular files only).
pub fn open_beneath(dir: &std::fs::File, name: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsRawFd as _, FromRawFd as _};
    use std::os::unix::ffi::OsStrExt as _;
    let name = std::ffi::CString::new(name.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::ENOENT))?;
    // SAFETY: `open_how` is three integers (libc marks it non-exhaustive,
    // as the kernel may extend it); all zero is a valid value, and the
    // kernel reads only the size passed below.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_NOCTTY) as u64;
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // SAFETY: `dir` is an open descriptor for the call's duration, `name`
    // a NUL-terminated string that outlives it, and `how` a valid
    // `open_how` whose size is passed with it; the kernel only reads them.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dir.as_raw_fd(),
            name.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: `openat2` just returned this descriptor, owned by nobody else.
    Ok(unsafe { std::fs::File::from_raw_fd(fd) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker relies on this (see `main::worker_process`): a SIGHUP
    /// blocked by the supervisor stays blocked across `Command::spawn`.
    #[test]
    fn a_child_process_inherits_the_blocked_mask() {
        let blocked = std::thread::spawn(|| {
            let _set = SignalSet::block(&[Signal::Hup]).expect("block");
            let output = std::process::Command::new("grep")
                .args(["SigBlk", "/proc/self/status"])
                .output()
                .expect("run grep");
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
        .join()
        .expect("thread");
        let mask = blocked
            .split_whitespace()
            .nth(1)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .expect("a SigBlk line");
        assert_ne!(mask & (1 << (libc::SIGHUP - 1)), 0, "{blocked}");
    }
}

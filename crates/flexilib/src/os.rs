//! Process-level OS settings. The only `unsafe` outside the library boundary.

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

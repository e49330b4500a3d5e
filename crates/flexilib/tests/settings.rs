//! Settings: every numeric setting is bounded at startup, and a worker that
//! cannot start its threads exits instead of hanging.

mod common;

use common::{standard_config, ServerBuilder};
use std::time::Duration;

#[test]
fn out_of_range_settings_stop_startup_with_status_2_naming_them() {
    let (_dir, config) = standard_config("");
    for (key, value, message) in [
        ("SERVER_THREAD_COUNT", "100000", "invalid value '100000' for '--threads <SERVER_THREAD_COUNT>': 100000 is not in 1..=1024"),
        ("SERVER_THREAD_COUNT", "0", "invalid value '0' for '--threads <SERVER_THREAD_COUNT>': 0 is not in 1..=1024"),
        ("SERVER_THREAD_COUNT", "many", "invalid value 'many' for '--threads <SERVER_THREAD_COUNT>': invalid digit found in string"),
        ("RESERVED_IO_THREADS", "65", "invalid value '65' for '--reserved-io-threads <RESERVED_IO_THREADS>': 65 is not in 1..=64"),
        ("RESPONSE_PREALLOCATION_KB", "1000000000", "invalid value '1000000000' for '--response-preallocation-kb <RESPONSE_PREALLOCATION_KB>': 1000000000 is not in 0..=262144"),
        ("RESPONSE_PREALLOCATION_KB", "-1", "invalid value '-1' for '--response-preallocation-kb <RESPONSE_PREALLOCATION_KB>': invalid digit found in string"),
        ("ARENA_RETAIN_KB", "2000000", "invalid value '2000000' for '--arena-retain-kb <ARENA_RETAIN_KB>': 2000000 is not in 0..=1048576"),
        ("MAX_BODY_BYTES", "2000000000", "invalid value '2000000000' for '--max-body-bytes <MAX_BODY_BYTES>': 2000000000 is not in 0..=1073741824"),
        ("MAX_HEADER_BYTES", "100", "invalid value '100' for '--max-header-bytes <MAX_HEADER_BYTES>': 100 is not in 1024..=1048576"),
        ("PORT", "70000", "invalid value '70000' for '--port <PORT>': 70000 is not in 0..=65535"),
        ("LISTEN_ADDRESS", "not-an-ip", "invalid value 'not-an-ip' for '--listen-address <LISTEN_ADDRESS>': invalid IP address syntax"),
        ("KEEPALIVE_TIMEOUT_SECONDS", "0", "invalid value '0' for '--keepalive-timeout <KEEPALIVE_TIMEOUT_SECONDS>': `0` must be more than 0 and at most one year"),
        ("SHUTDOWN_GRACE_SECONDS", "forever", "invalid value 'forever' for '--shutdown-grace <SHUTDOWN_GRACE_SECONDS>': `forever` is not a number of seconds"),
    ] {
        let (status, stderr) = ServerBuilder::new(&config)
            .env(key, value)
            .run_to_exit_within(Duration::from_secs(10));
        assert_eq!(status.code(), Some(2), "{key}={value}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {message}\n")),
            "{key}={value}: {stderr}"
        );
    }
}

#[test]
fn the_largest_settings_allowed_serve() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "1024")
        .env("RESERVED_IO_THREADS", "64")
        .env("RESPONSE_PREALLOCATION_KB", "262144")
        .env("ARENA_RETAIN_KB", "1048576")
        .env("MAX_BODY_BYTES", "1073741824")
        .start();
    let mut client = server.client();
    for _ in 0..3 {
        let response = client.request("POST", "/", &[("x-echo-body", "1")], b"fits");
        assert_eq!((response.status, response.text().as_str()), (200, "fits"));
    }
    let lines = server.log_lines(3);
    let preallocated = lines
        .last()
        .and_then(|l| l.split("(pre-alloc: ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse::<usize>().ok());
    assert!(
        preallocated.is_some_and(|bytes| bytes >= 256 << 20),
        "{lines:?}"
    );
}

#[test]
fn a_worker_that_cannot_start_its_threads_exits_instead_of_hanging() {
    // 1,088 thread stacks do not fit in 400 MB of address space: starting
    // the I/O threads fails (exit status 75, EX_TEMPFAIL, with the error),
    // and the threads already started must not keep the process alive.
    let (_dir, config) = standard_config("");
    let (status, stderr) = ServerBuilder::new(&config)
        .shell_prefix("ulimit -v 400000")
        .env("SERVER_THREAD_COUNT", "1024")
        .env("RESERVED_IO_THREADS", "64")
        .env("FLEXILIB_NO_SUPERVISOR", "1")
        .run_to_exit_within(Duration::from_secs(20));
    // Where the address space runs out decides how it ends: the threads'
    // error (75), a panic elsewhere (101) or an allocation failure (abort).
    // Either way it ends.
    use std::os::unix::process::ExitStatusExt as _;
    assert!(
        status.code() == Some(75) || status.code() == Some(101) || status.signal() == Some(6),
        "{status:?}: {stderr}"
    );
    assert!(
        status.code() != Some(75) || stderr.contains("cannot start the I/O threads"),
        "{stderr}"
    );

    // Supervised, the worker's exit is seen and it is restarted.
    let server = ServerBuilder::new(&config)
        .shell_prefix("ulimit -v 400000")
        .env("SERVER_THREAD_COUNT", "1024")
        .env("RESERVED_IO_THREADS", "64")
        .start();
    let died = server.stderr.wait_for(Duration::from_secs(20), |l| {
        l.contains("worker died; restarting")
            && (l.contains("exit status 75")
                || l.contains("exit status 101")
                || l.contains("SIGABRT"))
    });
    assert!(died.is_some(), "{:?}", server.stderr.snapshot());
}

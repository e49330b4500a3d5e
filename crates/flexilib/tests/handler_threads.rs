//! Slow handlers occupy handler threads, never the I/O side.

mod common;

use common::{
    request_in_background, rust_example, standard_config, Server, ServerBuilder, TempDir,
};
use std::time::{Duration, Instant};

/// A server that logs when its reserve I/O thread starts and stops
/// accepting: the events these tests wait for, instead of sleeping.
fn watched(config: &std::path::Path) -> ServerBuilder {
    ServerBuilder::new(config).env("RUST_LOG", "info,flexilib::cores=debug")
}

/// Waits until a core thread has been seen stalled in a library call for
/// the `n`th time (counting from 0): the reserve thread started accepting.
fn stalled(server: &Server, n: usize) {
    let seen = server
        .stderr
        .wait_for_nth(Duration::from_secs(10), n, |line| {
            line.contains("reserve I/O thread accepting")
        });
    assert!(
        seen.is_some(),
        "no stall #{n}: {:?}",
        server.stderr.snapshot()
    );
}

/// Waits until the reserve thread stopped accepting for the `n`th time.
fn calm(server: &Server, n: usize) {
    let seen = server
        .stderr
        .wait_for_nth(Duration::from_secs(10), n, |line| {
            line.contains("reserve I/O thread quiet")
        });
    assert!(
        seen.is_some(),
        "no calm #{n}: {:?}",
        server.stderr.snapshot()
    );
}

#[test]
fn a_request_to_a_busy_library_is_served_once_the_handler_is_free() {
    let (_dir, config) = standard_config("");
    let server = watched(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let slow = request_in_background(server.addr, "/", &[("x-slow", "1500")]);
    stalled(&server, 0);

    // The only handler slot is busy: a request for the same library waits
    // for it (without blocking anything else) and is then served.
    let started = Instant::now();
    let mut other = server.client();
    let response = other.request("GET", "/nothing", &[("Host", "x")], b"");
    let waited = started.elapsed();
    assert_eq!(response.status, 200, "routed to the Rust example via /");
    assert!(
        waited >= Duration::from_millis(900),
        "the one handler thread was busy: {waited:?}"
    );

    let (slow, slow_took) = slow.join().expect("slow client");
    assert_eq!(slow.status, 200);
    assert!(slow_took >= Duration::from_millis(1500));
    assert!(waited < slow_took, "served as soon as the slot was free");
}

#[test]
fn with_two_handler_threads_a_fast_request_passes_a_slow_one() {
    let (_dir, config) = standard_config("");
    let server = watched(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let slow = request_in_background(server.addr, "/", &[("x-slow", "2000")]);
    stalled(&server, 0);
    let started = Instant::now();
    let fast = server.get("/", &[]);
    let took = started.elapsed();
    assert_eq!(fast.status, 200);
    assert!(
        took < Duration::from_millis(500),
        "fast request waited for the slow one: {took:?}"
    );
    assert_eq!(slow.join().expect("slow client").0.status, 200);
}

#[test]
fn a_busy_handler_pool_still_accepts_parses_and_answers() {
    let (_dir, config) = standard_config("");
    let server = watched(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let slow = request_in_background(server.addr, "/", &[("x-slow", "1500")]);
    stalled(&server, 0);
    // No handler slot is free, but requests that need none (a malformed
    // request, an oversized body) are still answered at once.
    let started = Instant::now();
    let mut bad = server.client();
    bad.send_raw(b"BROKEN\r\n\r\n");
    assert_eq!(bad.read_response(false).expect("400").status, 400);
    let mut big = server.client();
    big.send_raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n");
    assert_eq!(big.read_response(false).expect("413").status, 413);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.join().expect("slow client").0.status, 200);
}

#[test]
fn repeated_slow_calls_never_stall_other_connections() {
    // Between slow calls the reserve worker is held back again; every cycle
    // must release it in time.
    let (_dir, config) = standard_config("");
    let server = watched(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    for cycle in 0..4 {
        let slow = request_in_background(server.addr, "/", &[("x-slow", "700")]);
        stalled(&server, cycle);
        let started = Instant::now();
        let mut other = server.client();
        other.send_raw(b"GARBAGE\r\n\r\n");
        assert_eq!(other.read_response(false).expect("400").status, 400);
        let waited = started.elapsed();
        assert!(
            waited < Duration::from_millis(300),
            "cycle {cycle}: waited {waited:?}"
        );
        assert_eq!(slow.join().expect("slow client").0.status, 200);
        // The reserve is held back again before the next cycle.
        calm(&server, cycle);
    }
}

/// A config where `/lib` is the Rust example and every other path a 404,
/// answered without a handler slot or a library call.
fn lib_only_config() -> (TempDir, std::path::PathBuf) {
    let dir = TempDir::new("tpc");
    let config = dir.write(
        "proxy.ini",
        &format!("/lib = {}\n", rust_example().display()),
    );
    (dir, config)
}

/// The ids of `pid`'s threads whose name starts with `prefix`, with their names.
fn threads_named(pid: u32, prefix: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir") {
        let tid = entry
            .expect("task")
            .file_name()
            .to_string_lossy()
            .into_owned();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        if comm.starts_with(prefix) {
            found.push((tid, comm));
        }
    }
    found.sort_by(|a, b| a.1.cmp(&b.1));
    found
}

/// How often thread `tid` of `pid` has been switched out (it sleeps and
/// wakes at least once per connection it accepts or serves).
fn context_switches(pid: u32, tid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status"))
        .expect("thread status")
        .lines()
        .filter(|line| line.contains("ctxt_switches:"))
        .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum()
}

/// Waits until thread `tid` is blocked in `nanosleep`/`clock_nanosleep`
/// (the example library's `x-slow`), read from `/proc/.../syscall`.
fn wait_until_sleeping(pid: u32, tid: &str, timeout: Duration) -> bool {
    let until = Instant::now() + timeout;
    while Instant::now() < until {
        let syscall =
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).unwrap_or_default();
        // x86-64: 35 nanosleep, 230 clock_nanosleep; aarch64: 101, 115.
        let number = syscall.split_whitespace().next().unwrap_or("");
        if matches!(number, "35" | "230" | "101" | "115") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn a_stalled_core_thread_lets_the_reserve_accept_until_the_stall_ends() {
    let (_dir, config) = lib_only_config();
    let server = watched(&config)
        .env("FLEXILIB_NO_SUPERVISOR", "1")
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let pid = server.child.id();
    let names: Vec<String> = threads_named(pid, "flexilib-io")
        .into_iter()
        .map(|(_, name)| name)
        .filter(|name| name != "flexilib-io-blk")
        .collect();
    assert_eq!(
        names,
        ["flexilib-io-0", "flexilib-io-r0"],
        "one core, one reserve"
    );
    let (reserve, _) = threads_named(pid, "flexilib-io-r").remove(0);
    let (core, _) = threads_named(pid, "flexilib-io-0").remove(0);

    // The only core thread stalls in a 1.5 s call: nothing but the reserve
    // thread can accept and answer now. Wait until the call is running (a
    // loaded machine may take a while to get there).
    let slow_started = Instant::now();
    let slow = request_in_background(server.addr, "/lib", &[("x-slow", "1500")]);
    assert!(
        wait_until_sleeping(pid, &core, Duration::from_secs(1)),
        "the core thread never entered the slow call"
    );
    stalled(&server, 0);
    let before = context_switches(pid, &reserve);
    for i in 0..50 {
        let started = Instant::now();
        let response = server.client().request("GET", "/none", &[], b"");
        assert_eq!(response.status, 404, "connection {i}");
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(250),
            "connection {i} waited {took:?}"
        );
    }
    assert!(
        slow_started.elapsed() < Duration::from_millis(1400),
        "the 50 connections were served during the stall: {:?}",
        slow_started.elapsed()
    );
    let during = context_switches(pid, &reserve) - before;
    assert!(
        during >= 25,
        "the reserve thread served them: {during} switches"
    );
    let (slow, slow_took) = slow.join().expect("slow client");
    assert_eq!(slow.status, 200);
    assert!(slow_took >= Duration::from_millis(1500));

    // 100 ms after the stall the reserve stops accepting: new connections
    // go to the core thread and no longer even wake the reserve.
    calm(&server, 0);
    let before = context_switches(pid, &reserve);
    for i in 0..20 {
        let response = server.client().request("GET", "/none", &[], b"");
        assert_eq!(response.status, 404, "connection {i}");
    }
    let after = context_switches(pid, &reserve) - before;
    assert!(
        after <= 2,
        "the quiet reserve thread was woken {after} times"
    );
}

#[test]
fn a_connection_stays_on_its_core_thread_while_it_is_stalled() {
    // The honest limit of thread-per-core: a connection never migrates, so
    // one already open on a core thread inside a slow call waits for it,
    // while a new connection is answered at once by the reserve thread.
    let (_dir, config) = lib_only_config();
    let server = watched(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let mut kept = server.client();
    assert_eq!(kept.request("GET", "/none", &[], b"").status, 404);
    // The reserve is quiet: the slow connection goes to the core thread too.
    let slow = request_in_background(server.addr, "/lib", &[("x-slow", "1500")]);
    stalled(&server, 0);

    let started = Instant::now();
    assert_eq!(server.get("/none", &[]).status, 404);
    let new_took = started.elapsed();
    assert!(
        new_took < Duration::from_millis(300),
        "new connection: {new_took:?}"
    );

    let started = Instant::now();
    assert_eq!(kept.request("GET", "/none", &[], b"").status, 404);
    let kept_took = started.elapsed();
    assert!(
        kept_took >= Duration::from_millis(900),
        "the kept connection waited for its thread's call: {kept_took:?}"
    );
    assert_eq!(slow.join().expect("slow client").0.status, 200);
}

//! Slow handlers occupy handler threads, never the I/O side.

mod common;

use common::{request_in_background, standard_config, ServerBuilder};
use std::time::{Duration, Instant};

#[test]
fn a_request_to_a_busy_library_is_served_once_the_handler_is_free() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let slow = request_in_background(server.addr, "/", &[("x-slow", "1500")]);
    std::thread::sleep(Duration::from_millis(200));

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
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let slow = request_in_background(server.addr, "/", &[("x-slow", "2000")]);
    std::thread::sleep(Duration::from_millis(200));
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
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    let slow = request_in_background(server.addr, "/", &[("x-slow", "1500")]);
    std::thread::sleep(Duration::from_millis(200));
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
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "1")
        .env("RESERVED_IO_THREADS", "1")
        .start();
    for cycle in 0..4 {
        let slow = request_in_background(server.addr, "/", &[("x-slow", "700")]);
        std::thread::sleep(Duration::from_millis(150));
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
        // Long enough for the reserve to be held back again.
        std::thread::sleep(Duration::from_millis(400));
    }
}

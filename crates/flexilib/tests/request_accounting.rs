//! Every request is accounted for: one log line each (499 when the client
//! leaves first), with the bytes the socket really took; a partial request
//! head is bounded by the header timeout; connections made during shutdown
//! are answered at once; live targets survive a config reload.

mod common;

#[path = "common/upstream.rs"]
mod upstream;

use std::time::{Duration, Instant};

use common::{rust_example, standard_config, Client, ServerBuilder, TempDir};
use upstream::{closed_port, Upstream};

/// The access-log line for `request_line` (e.g. `GET /x HTTP/1.1`), waiting for it.
fn log_line(server: &common::Server, request_line: &str) -> Option<String> {
    server
        .stdout
        .wait_for(Duration::from_secs(10), |line| line.contains(request_line))
}

/// The status and byte count of a log line.
fn status_and_bytes(line: &str) -> (u16, u64) {
    let (_, rest) = line.split_once("\" ").expect("request field");
    let words: Vec<&str> = rest.split(' ').collect();
    (
        words[0].parse().expect("status"),
        words[3].parse().expect("bytes"),
    )
}

#[test]
fn a_partial_head_after_a_request_is_bounded_by_the_header_timeout() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("HEADER_READ_TIMEOUT_SECONDS", "0.5")
        .env("KEEPALIVE_TIMEOUT_SECONDS", "30")
        .start();
    let mut client = server.client();
    // A whole request and the start of the next one, in one write.
    client.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n");
    let first = client.read_response(false).expect("first response");
    assert_eq!(first.status, 200);
    let started = Instant::now();
    assert!(
        client.is_closed_within(Duration::from_secs(10)),
        "the partial head was allowed the keep-alive timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
}

#[test]
fn a_client_that_leaves_before_the_upstream_answers_is_logged_499() {
    let upstream = Upstream::start("slow");
    let (_dir, config) = standard_config(&format!("/slow-head = http://{}", upstream.addr));
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"GET /slow-head HTTP/1.1\r\nHost: x\r\n\r\n");
    std::thread::sleep(Duration::from_millis(300));
    drop(client);
    let line = log_line(&server, "\"GET /slow-head HTTP/1.1\"").expect("a log line");
    assert_eq!(status_and_bytes(&line), (499, 0), "{line}");
    // The upstream's late answer adds no second line.
    std::thread::sleep(Duration::from_millis(2200));
    let lines = server.stdout.snapshot();
    let count = lines.iter().filter(|l| l.contains("/slow-head")).count();
    assert_eq!(count, 1, "{lines:?}");
}

#[test]
fn the_log_counts_the_bytes_a_client_took_not_the_bytes_offered() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("KEEPALIVE_TIMEOUT_SECONDS", "1")
        .start();
    let size = 64 * 1024 * 1024;
    let mut client = server.client();
    // Ask for 64 MiB and never read it: the server cuts the connection
    // after the keep-alive timeout.
    let size_text = size.to_string();
    client
        .send_raw(format!("GET /big HTTP/1.1\r\nHost: x\r\nx-big: {size_text}\r\n\r\n").as_bytes());
    let line = log_line(&server, "\"GET /big HTTP/1.1\"").expect("a log line");
    let (status, bytes) = status_and_bytes(&line);
    assert_eq!(status, 200);
    assert!(
        bytes < size / 4,
        "logged {bytes} bytes of {size} though the client read none: {line}"
    );
    drop(client);

    // A client that reads it all is logged with every byte.
    let mut reader = server.client();
    let response = reader.request("GET", "/all", &[("x-big", "3000000")], b"");
    assert_eq!(response.body.len(), 3_000_000);
    let line = log_line(&server, "\"GET /all HTTP/1.1\"").expect("a log line");
    assert_eq!(status_and_bytes(&line), (200, 3_000_000), "{line}");
}

#[test]
fn a_connection_made_during_shutdown_is_answered_503_at_once() {
    let dir = TempDir::new("drain");
    let config = dir.write("proxy.ini", &format!("/ = {}\n", rust_example().display()));
    let mut server = ServerBuilder::new(&config).start();
    let slow = common::request_in_background(server.addr, "/slow", &[("x-slow", "3000")]);
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    std::thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let mut late = Client::connect(server.addr);
    let response = late.request("GET", "/late", &[], b"");
    assert_eq!(response.status, 503, "{}", response.text());
    assert_eq!(response.header("connection"), Some("close"));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered after {:?}",
        started.elapsed()
    );

    let (slow, _) = slow.join().expect("client");
    assert_eq!(slow.status, 200, "the request in flight still finishes");
    let status = common::wait_timeout(&mut server.child, Duration::from_secs(10));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn an_upstream_group_keeps_its_cool_down_across_a_config_reload() {
    let good = Upstream::start("good");
    let dead = closed_port();
    let rule = format!("/up = http://{dead}, http://{}", good.addr);
    let (_dir, config) = standard_config(&rule);
    let server = ServerBuilder::new(&config)
        .env("UPSTREAM_COOLDOWN_SECONDS", "60")
        .start();
    let failures = || {
        server
            .stderr
            .snapshot()
            .iter()
            .filter(|l| l.contains("upstream connection failed"))
            .count()
    };
    // Round-robin reaches the dead server within two requests; it fails
    // once, the request is retried on the good one, and it cools down.
    for _ in 0..2 {
        assert_eq!(server.get("/up/echo", &[]).status, 200);
    }
    assert_eq!(failures(), 1);

    // A config edit that keeps the same upstream spec (adds a route).
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(
        &config,
        format!("/other = {}\n{text}", rust_example().display()),
    )
    .expect("edit config");
    server.signal("HUP");
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config reloaded"))
        .expect("config reloaded");
    for _ in 0..4 {
        assert_eq!(server.get("/up/echo", &[]).status, 200);
    }
    assert_eq!(failures(), 1, "the reload forgot that the server is down");
}

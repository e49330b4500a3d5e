//! The proxy's upstream connection pool, observed at the upstream: reuse,
//! abandoned bodies, the idle timeout.

mod common;

#[path = "common/upstream.rs"]
mod upstream;

use common::{ServerBuilder, TempDir};
use std::io::Read;
use std::time::{Duration, Instant};
use upstream::Upstream;

/// A server proxying `/` to `up`. One I/O thread: idle connections belong
/// to the thread that opened them.
fn proxy_to(up: &Upstream, envs: &[(&str, &str)]) -> (TempDir, common::Server) {
    let dir = TempDir::new("pool");
    let config = dir.write("proxy.ini", &format!("/ = http://{}\n", up.addr));
    let mut builder = ServerBuilder::new(&config).env("SERVER_THREAD_COUNT", "1");
    for (k, v) in envs {
        builder = builder.env(k, v);
    }
    (dir, builder.start())
}

fn wait_until(timeout: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn one_upstream_connection_serves_request_after_request() {
    let up = Upstream::start("r");
    let (_dir, server) = proxy_to(&up, &[]);
    let mut client = server.client();
    for i in 0..10 {
        let response = client.request("GET", &format!("/echo/{i}"), &[], b"");
        assert_eq!(response.status, 200);
        assert!(response.text().starts_with(&format!("GET /echo/{i}\n")));
    }
    let posted = client.request("POST", "/echo", &[], b"a body");
    assert!(posted.text().contains("body-bytes: 6"), "{}", posted.text());
    let downloaded = client.request("GET", "/download?size=300000", &[], b"");
    assert_eq!(downloaded.body.len(), 300_000);
    // A chunked body, read to its last chunk.
    up.release();
    let streamed = client.request("GET", "/stream", &[], b"");
    assert_eq!(streamed.text(), "first\nsecond\n");
    // Another client connection, same I/O thread, same upstream connection.
    assert_eq!(server.get("/echo", &[]).status, 200);
    assert_eq!(up.count(), 14);
    assert_eq!(
        up.accepted(),
        1,
        "every request reused the first connection"
    );
    assert_eq!(up.ended(), 0);
}

#[test]
fn a_body_the_client_abandons_closes_its_upstream_connection() {
    let up = Upstream::start("a");
    let (_dir, server) = proxy_to(&up, &[]);
    let mut client = server.client();
    client.send_raw(b"GET /download?size=67108864 HTTP/1.1\r\nHost: x\r\n\r\n");
    let stream = client.stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut received = 0;
    let mut buf = [0u8; 16384];
    while received < 256 * 1024 {
        let n = stream.read(&mut buf).expect("part of the body");
        assert!(n > 0, "closed early");
        received += n;
    }
    drop(client);
    // The upstream was still sending: its connection is closed, not pooled.
    wait_until(
        Duration::from_secs(5),
        "the upstream connection ends",
        || up.ended() == 1,
    );
    let response = server.get("/echo", &[]);
    assert_eq!(response.status, 200);
    assert!(
        response.text().starts_with("GET /echo\n"),
        "{}",
        response.text()
    );
    assert_eq!(up.accepted(), 2, "the next request needed a new connection");
}

#[test]
fn idle_upstream_connections_close_after_the_idle_timeout() {
    let up = Upstream::start("i");
    let (_dir, server) = proxy_to(&up, &[("UPSTREAM_IDLE_TIMEOUT_SECONDS", "1")]);
    assert_eq!(server.get("/echo", &[]).status, 200);
    let idle_since = Instant::now();
    assert_eq!(up.accepted(), 1);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(up.ended(), 0, "closed well before the idle timeout");
    wait_until(
        Duration::from_secs(5),
        "the idle connection is closed",
        || up.ended() == 1,
    );
    let idle_for = idle_since.elapsed();
    assert!(
        idle_for >= Duration::from_millis(900),
        "closed after {idle_for:?}"
    );
    // The pool does not hand out the closed connection.
    assert_eq!(server.get("/echo", &[]).status, 200);
    assert_eq!(up.accepted(), 2);
}

#[test]
fn a_pooled_connection_the_upstream_closed_is_not_used() {
    let up = Upstream::start("c");
    let (_dir, server) = proxy_to(&up, &[]);
    let mut client = server.client();
    assert_eq!(client.request("GET", "/then-close", &[], b"").text(), "bye");
    wait_until(Duration::from_secs(5), "the upstream closes", || {
        up.ended() == 1
    });
    // Not a 502 from the dead connection: a new one.
    let response = client.request("POST", "/echo", &[], b"not idempotent");
    assert_eq!(response.status, 200);
    assert!(
        response.text().contains("body-bytes: 14"),
        "{}",
        response.text()
    );
    assert_eq!(up.accepted(), 2);
}

//! The Rust example reproduces the original sample library; the C example
//! works through include/flexilib.h alone.

mod common;

use common::{standard_config, ServerBuilder};
use std::time::{Duration, Instant};

#[test]
fn default_body_counts_headers_and_sets_custom_header() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let response = server.get("/", &[("Accept", "*/*"), ("X-One", "1")]);
    assert_eq!(response.status, 200);
    // Host, Accept, X-One.
    assert_eq!(response.text(), " 3");
    assert_eq!(response.header("x-custom-foo"), Some("bar"));
    assert_eq!(response.header("content-type"), Some("text/plain"));
}

#[test]
fn host_iam_routes_and_answers_iam() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let response = server.get("/c/anything", &[("Host", "iamhere.example")]);
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "iam response");
}

#[test]
fn slow_log_status_and_throw() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();

    let started = Instant::now();
    let slow = server.get("/", &[("x-slow", "300")]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.text(), "i am slow\n\n");

    let logged = server.get("/", &[("x-log-this", "hello")]);
    assert_eq!(logged.text(), "hello 2");

    let status = server.get("/", &[("x-status", "418")]);
    assert_eq!(status.status, 418);
    assert_eq!(status.text(), " 2");

    let thrown = server.get("/", &[("x-throw", "1")]);
    assert_eq!(thrown.status, 500);
    assert_eq!(thrown.text(), " 2", "the body built so far is kept");

    let thrown_with_status = server.get("/", &[("x-throw", "1"), ("x-status", "503")]);
    assert_eq!(thrown_with_status.status, 503);
}

#[test]
fn rust_panic_becomes_500_and_server_keeps_serving() {
    let (_dir, config) = standard_config("");
    let mut server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let panicked = client.request("GET", "/", &[("x-panic", "1")], b"");
    assert_eq!(panicked.status, 500);
    assert!(panicked.text().contains("panicked"), "{}", panicked.text());
    // Same connection, same handler thread: still fine.
    let after = client.request("GET", "/", &[], b"");
    assert_eq!(after.status, 200);
    assert!(server.is_running());
}

#[test]
fn request_body_target_and_method_reach_the_library() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let echoed = client.request(
        "POST",
        "/upload?x=1",
        &[("x-echo-body", "1")],
        b"payload bytes",
    );
    assert_eq!(echoed.text(), "payload bytes");
    let target = client.request("DELETE", "/a/b?c=d&e", &[("x-echo-target", "1")], b"");
    assert_eq!(target.text(), "DELETE /a/b?c=d&e");
}

#[test]
fn c_example_through_the_header_only() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let plain = server.get("/c/path?q=1", &[("X-A", "b")]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), "hello from C: GET /c/path?q=1 headers=2");
    assert_eq!(plain.header("x-lang"), Some("C"));
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain"),
        "added by the server"
    );

    let json = server.get("/c", &[("x-json", "1")]);
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(json.text(), r#"{"lang":"c"}"#);

    let reason = server.get("/c", &[("x-reason", "Quite Fine")]);
    assert_eq!(reason.status, 299);
    assert_eq!(reason.reason, "Quite Fine");

    let null = server.get("/c", &[("x-null", "1")]);
    assert_eq!(null.status, 500);

    // The header's inline helpers: a query parameter by name, raw.
    for (target, name, status, body) in [
        ("/c?a=1&name=Ada%20L&b", "name", 200, "Ada%20L"),
        ("/c?a=1&name=Ada&b", "b", 200, ""),
        ("/c?first&x=2#frag", "x", 200, "2"),
        ("/c?ab=1", "a", 404, "no such query parameter"),
        ("/c", "a", 404, "no such query parameter"),
    ] {
        let response = server.get(target, &[("X-Query", name)]);
        assert_eq!(response.status, status, "{target} {name}");
        assert_eq!(response.text(), body, "{target} {name}");
    }
}

//! FlexiLib's own HTTP/1.1 codec: pipelining, HTTP/1.0, framing errors,
//! bodies a target leaves unread, chunk extensions and trailers.

mod common;

use common::{standard_config, ServerBuilder, TempDir};
use std::time::Duration;

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let mut raw = Vec::new();
    for i in 0..20 {
        if i == 7 {
            // A request with a body in the middle of the pipeline.
            raw.extend_from_slice(
                b"POST /body HTTP/1.1\r\nHost: x\r\nx-echo-body: 1\r\nContent-Length: 9\r\n\r\nbody here",
            );
        } else {
            raw.extend_from_slice(
                format!("GET /p{i} HTTP/1.1\r\nHost: x\r\nx-echo-target: 1\r\n\r\n").as_bytes(),
            );
        }
    }
    client.send_raw(&raw);
    for i in 0..20 {
        let response = client.read_response(false).expect("a response");
        assert_eq!(response.status, 200);
        if i == 7 {
            assert_eq!(response.text(), "body here");
        } else {
            assert_eq!(response.text(), format!("GET /p{i}"));
        }
    }
    // Still in sync afterwards.
    assert_eq!(client.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn http10_clients_get_keep_alive_only_when_they_ask() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut plain = server.client();
    plain.send_raw(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let response = plain.read_response(false).expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(response.version, "HTTP/1.1");
    assert_eq!(response.header("connection"), Some("close"));
    assert!(plain.is_closed_within(Duration::from_secs(2)));

    let mut kept = server.client();
    for _ in 0..2 {
        kept.send_raw(b"GET / HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
        let response = kept.read_response(false).expect("a response");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("connection"), Some("keep-alive"));
        assert!(response.header("content-length").is_some());
    }
}

#[test]
fn framing_errors_are_refused_and_close_the_connection() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    for (raw, status) in [
        (
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
            400,
        ),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ] {
        let mut client = server.client();
        client.send_raw(raw);
        let response = client.read_response(false).expect("a response");
        assert_eq!(response.status, status, "{}", String::from_utf8_lossy(raw));
        assert!(client.is_closed_within(Duration::from_secs(2)));
    }
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn a_body_left_unread_closes_the_connection_after_the_answer() {
    // Only `/c` is routed: a POST elsewhere is answered 404 without its
    // body being read, so the connection cannot be reused.
    let dir = TempDir::new("unread");
    common::c_example(&dir);
    let config = dir.write("proxy.ini", "/c = libsample_c.so\n");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"POST /elsewhere HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nstart");
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.status, 404);
    assert!(client.is_closed_within(Duration::from_secs(5)));
    // A body that was read keeps the connection.
    let mut kept = server.client();
    let first = kept.request("POST", "/c", &[], b"payload");
    assert_eq!(first.status, 200);
    assert_eq!(kept.request("GET", "/c", &[], b"").status, 200);
}

#[test]
fn chunk_extensions_and_trailers_are_accepted() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(
        b"POST / HTTP/1.1\r\nHost: x\r\nx-echo-body: 1\r\nTransfer-Encoding: chunked\r\n\r\n4;name=value\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Checksum: abc\r\n\r\n",
    );
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.text(), "wikipedia");
    // The connection is in sync after the trailers.
    assert_eq!(client.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn library_response_fields_keep_their_order_and_lose_framing_fields() {
    let dir = TempDir::new("order");
    common::compile_c_text(
        &dir,
        "liborder.so",
        r#"
#include "flexilib.h"
static struct flexilib_header fields[] = {
    { .name_ptr = "X-B", .name_len = 3, .value_ptr = "1", .value_len = 1 },
    { .name_ptr = "X-A", .name_len = 3, .value_ptr = "2", .value_len = 1 },
    { .name_ptr = "Content-Length", .name_len = 14, .value_ptr = "999", .value_len = 3 },
    { .name_ptr = "X-B", .name_len = 3, .value_ptr = "3", .value_len = 1 },
    { .name_ptr = "Connection", .name_len = 10, .value_ptr = "close", .value_len = 5 },
};
static struct flexilib_response response = { .ptr = "ordered", .len = 7, .headers = fields, .headers_len = 5 };
struct flexilib_response *handle_request(struct flexilib_request *req) {
    (void)req;
    return &response;
}
"#,
    );
    let config = dir.write("proxy.ini", "/ = liborder.so\n");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let response = client.request("GET", "/", &[], b"");
    assert_eq!(response.text(), "ordered");
    let names: Vec<(&str, &str)> = response
        .headers
        .iter()
        .filter(|(name, _)| name.starts_with("x-"))
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    // As the library gave them (names lowercased), not grouped by name.
    assert_eq!(names, [("x-b", "1"), ("x-a", "2"), ("x-b", "3")]);
    // The server owns framing: the library's length and `Connection` are gone.
    assert_eq!(response.header("content-length"), Some("7"));
    assert_eq!(response.header("connection"), None);
    assert_eq!(response.header("content-type"), Some("text/plain"));
    // And the connection stays open.
    assert_eq!(client.request("GET", "/", &[], b"").text(), "ordered");
}

/// Chunked bodies that a lenient peer would read differently (a bare LF,
/// NUL or bare CR in a chunk extension, white space around the size,
/// extensions past the per-body cap, a bare LF in the trailers) are
/// refused with 400, and the connection is closed.
#[test]
fn malformed_chunked_bodies_are_refused() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut many_extensions = Vec::new();
    for _ in 0..5 {
        many_extensions.extend_from_slice(b"1;");
        many_extensions.extend(std::iter::repeat_n(b'x', 4000));
        many_extensions.extend_from_slice(b"\r\nA\r\n");
    }
    many_extensions.extend_from_slice(b"0\r\n\r\n");
    let cases: [(&str, &[u8]); 9] = [
        ("bare LF in an extension", b"5;a\nb\r\nhello\r\n0\r\n\r\n"),
        ("NUL in an extension", b"5;a\0b\r\nhello\r\n0\r\n\r\n"),
        ("bare CR in an extension", b"5;a\rb\r\nhello\r\n0\r\n\r\n"),
        ("space before the size", b" 5\r\nhello\r\n0\r\n\r\n"),
        ("space after the size", b"5 \r\nhello\r\n0\r\n\r\n"),
        ("tab after the size", b"5\t\r\nhello\r\n0\r\n\r\n"),
        ("bare LF after the size", b"5\nhello\r\n0\r\n\r\n"),
        (
            "bare LF in the trailers",
            b"5\r\nhello\r\n0\r\nX-A: 1\nX-B: 2\r\n\r\n",
        ),
        ("20 KB of extensions", &many_extensions),
    ];
    for (what, body) in cases {
        let mut client = server.client();
        let mut raw =
            b"POST / HTTP/1.1\r\nHost: x\r\nx-echo-body: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
                .to_vec();
        raw.extend_from_slice(body);
        client.send_raw(&raw);
        let response = client.read_response(false).expect("a response");
        assert_eq!(response.status, 400, "{what}: {}", response.text());
        assert!(client.is_closed_within(Duration::from_secs(2)), "{what}");
    }
    // White space before an extension's `;` is allowed (RFC 9112 BWS).
    let mut client = server.client();
    client.send_raw(b"POST / HTTP/1.1\r\nHost: x\r\nx-echo-body: 1\r\nTransfer-Encoding: chunked\r\n\r\n5 ;a=1\r\nhello\r\n0\r\n\r\n");
    assert_eq!(
        client.read_response(false).expect("a response").text(),
        "hello"
    );
}

#[test]
fn a_request_target_over_the_limit_is_414_and_long_fields_431() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("MAX_HEADER_BYTES", "4096")
        .start();
    let mut client = server.client();
    client.send_raw(format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(5000)).as_bytes());
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.status, 414, "{}", response.text());
    assert!(client.is_closed_within(Duration::from_secs(2)));
    let mut client = server.client();
    client.send_raw(
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
            "a".repeat(5000)
        )
        .as_bytes(),
    );
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.status, 431, "{}", response.text());
}

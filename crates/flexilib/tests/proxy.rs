//! Reverse proxy to upstream HTTP servers started by the test.

mod common;

#[path = "common/upstream.rs"]
mod upstream;

use common::{ServerBuilder, TempDir};
use std::io::{Read, Write};
use std::time::{Duration, Instant};
use upstream::{closed_port, Upstream};

fn proxy_server(rules: &str, envs: &[(&str, &str)]) -> (TempDir, common::Server) {
    let dir = TempDir::new("proxy");
    let config = dir.write("proxy.ini", rules);
    let mut builder = ServerBuilder::new(&config);
    for (k, v) in envs {
        builder = builder.env(k, v);
    }
    (dir, builder.start())
}

fn worker_rss_kb(server: &common::Server) -> u64 {
    let pid = server.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    let worker = children
        .split_whitespace()
        .next()
        .map_or(pid.to_string(), str::to_string);
    let status = std::fs::read_to_string(format!("/proc/{worker}/status")).expect("worker status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS")
}

#[test]
fn forwards_method_path_headers_and_body_with_rewriting() {
    let up = Upstream::start("a");
    let (_dir, server) = proxy_server(
        &format!(
            "/keep = http://{a}\n/strip = http://{a}/base\n/named = http://{a} host=upstream\n",
            a = up.addr
        ),
        &[],
    );
    let mut client = server.client();
    let response = client.request(
        "POST",
        "/keep/x?q=1",
        &[
            ("Host", "front.example"),
            ("Connection", "keep-alive, x-hop"),
            ("X-Hop", "secret"),
            ("Keep-Alive", "timeout=3"),
            ("X-Forwarded-For", "10.9.9.9"),
            ("X-Custom", "kept"),
        ],
        b"hello upstream",
    );
    assert_eq!(response.status, 200);
    let text = response.text();
    assert!(text.starts_with("POST /keep/x?q=1\n"), "{text}");
    for expected in [
        "host: front.example",
        "x-forwarded-for: 10.9.9.9, 127.0.0.1",
        "x-forwarded-proto: http",
        "x-forwarded-host: front.example",
        "via: 1.1 flexilib",
        "x-custom: kept",
        "body-bytes: 14",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    for gone in ["x-hop", "keep-alive:", "connection:"] {
        assert!(!text.contains(gone), "{gone:?} forwarded:\n{text}");
    }
    // Response: upstream headers kept, hop-by-hop removed, Via added.
    assert_eq!(response.header("x-reply"), Some("yes"));
    assert_eq!(response.header("keep-alive"), None);
    assert_eq!(response.header("via"), Some("1.1 flexilib"));

    let stripped = client.request("GET", "/strip/users/7", &[], b"");
    assert!(
        stripped.text().starts_with("GET /base/users/7\n"),
        "{}",
        stripped.text()
    );
    let named = client.request("GET", "/named", &[], b"");
    assert!(
        named.text().contains(&format!("host: {}", up.addr)),
        "{}",
        named.text()
    );

    // The access log line ends with the upstream and its time.
    let lines = server.log_lines(3);
    let last = lines.last().expect("log line");
    assert!(
        last.contains(&format!("upstream {} ", up.addr)) && last.ends_with("ms"),
        "{last}"
    );
}

#[test]
fn responses_stream_before_the_upstream_finishes() {
    let up = Upstream::start("s");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let mut client = server.client();
    client.send_raw(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    let stream = client.stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut seen = Vec::new();
    read_until(stream, &mut seen, "first");
    assert!(
        !String::from_utf8_lossy(&seen).contains("second"),
        "sent before the upstream finished"
    );
    up.release();
    read_until(stream, &mut seen, "second");
}

/// Reads from `stream` into `seen` until it contains `marker`.
fn read_until(stream: &mut std::net::TcpStream, seen: &mut Vec<u8>, marker: &str) {
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(seen).contains(marker) {
        let n = stream
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("waiting for {marker:?}: {e}"));
        assert!(n > 0, "closed before {marker:?}");
        seen.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn fifty_megabytes_each_way_with_flat_memory() {
    let up = Upstream::start("big");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let before = worker_rss_kb(&server);
    const SIZE: usize = 50 * 1024 * 1024;

    let mut client = server.client();
    client.send_raw(
        format!("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: {SIZE}\r\n\r\n").as_bytes(),
    );
    let chunk = vec![b'u'; 1024 * 1024];
    for _ in 0..50 {
        client.stream().write_all(&chunk).expect("upload");
    }
    let uploaded = client.read_response(false).expect("upload response");
    assert_eq!(
        uploaded.text(),
        format!("{SIZE} {}", SIZE as u64 * u64::from(b'u'))
    );

    let download = client.request("GET", &format!("/download?size={SIZE}"), &[], b"");
    assert_eq!(download.body.len(), SIZE);
    let after = worker_rss_kb(&server);
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} kB to {after} kB"
    );
}

#[test]
fn websocket_echo_through_the_proxy() {
    let up = Upstream::start("ws");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let mut client = server.client();
    let key = upstream::base64(b"0123456789abcdef");
    client.send_raw(
        format!("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n")
            .as_bytes(),
    );
    let response = client.read_response(true).expect("101");
    assert_eq!(response.status, 101);
    let expected = upstream::base64(&upstream::sha1(
        format!("{key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11").as_bytes(),
    ));
    assert_eq!(
        response.header("sec-websocket-accept"),
        Some(expected.as_str())
    );
    for message in ["hello", "through the tunnel"] {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | message.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(message.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        client.send_raw(&frame);
        let stream = client.stream();
        let mut header = [0u8; 2];
        stream.read_exact(&mut header).expect("echo header");
        assert_eq!(header[0], 0x81);
        let mut payload = vec![0u8; usize::from(header[1])];
        stream.read_exact(&mut payload).expect("echo payload");
        assert_eq!(payload, message.as_bytes());
    }
}

#[test]
fn failures_map_to_502_504_and_a_closed_connection() {
    let up = Upstream::start("f");
    let (_dir, server) = proxy_server(
        &format!("/dead = http://{}\n/ = http://{}\n", closed_port(), up.addr),
        &[("UPSTREAM_RESPONSE_TIMEOUT_SECONDS", "0.5")],
    );
    assert_eq!(server.get("/dead", &[]).status, 502);
    let started = Instant::now();
    assert_eq!(server.get("/slow-head", &[]).status, 504);
    assert!(started.elapsed() < Duration::from_millis(1800));

    // The upstream dies mid-body: the client's connection is closed, never a
    // short body passed off as complete.
    let mut client = server.client();
    client.send_raw(b"GET /reset HTTP/1.1\r\nHost: x\r\n\r\n");
    let stream = client.stream();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut received = Vec::new();
    let _ = stream.read_to_end(&mut received);
    let text = String::from_utf8_lossy(&received);
    let (head, body) = text.split_once("\r\n\r\n").expect("head");
    assert!(head.contains("content-length: 1000"), "{head}");
    assert!(
        body.len() < 1000,
        "the connection must end before 1000 bytes"
    );
    // The proxy itself is fine.
    assert_eq!(server.get("/echo", &[]).status, 200);
}

#[test]
fn round_robin_and_failover() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let (dead, dead_for_get, dead_for_post) = (closed_port(), closed_port(), closed_port());
    let (_dir, server) = proxy_server(
        &format!(
            "/pair = http://{}, http://{}\n/with-dead = http://{dead}, http://{}\n\
             /get-dead = http://{dead_for_get}, http://{}\n\
             /post-dead = http://{dead_for_post}, http://{}\n",
            a.addr, b.addr, a.addr, b.addr, b.addr
        ),
        &[],
    );
    let mut client = server.client();
    for _ in 0..20 {
        assert_eq!(client.request("GET", "/pair", &[], b"").status, 200);
    }
    assert_eq!(
        (a.count(), b.count()),
        (10, 10),
        "round-robin spreads evenly"
    );

    // One server refuses connections: GETs fail over to the other, and the
    // dead one is skipped for its cool-down.
    let before = a.count();
    for _ in 0..20 {
        let response = client.request("GET", "/with-dead", &[], b"");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("x-upstream"), Some("a"));
    }
    assert_eq!(a.count() - before, 20);
    let warnings = server
        .stderr
        .snapshot()
        .iter()
        .filter(|l| l.contains("upstream connection failed"))
        .count();
    assert_eq!(
        warnings, 1,
        "the dead upstream was tried once, then skipped"
    );

    // Each route's first request goes to its first server, here one that
    // refuses connections and has not failed yet (so is not cooling down).
    // A GET is retried on the other server...
    let before = b.count();
    let response = client.request("GET", "/get-dead", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("x-upstream"), Some("b"));
    assert_eq!(b.count() - before, 1);
    // ...a POST with a body is not: it may already have had effects. The
    // next one goes to the live server while the dead one cools down.
    let before = b.count();
    let statuses: Vec<u16> = (0..2)
        .map(|_| client.request("POST", "/post-dead", &[], b"payload").status)
        .collect();
    assert_eq!(statuses, [502, 200], "the first POST was retried");
    assert_eq!(b.count() - before, 1);
}

#[test]
fn config_reload_repoints_an_upstream_route() {
    let (a, b) = (Upstream::start("a"), Upstream::start("b"));
    let (dir, server) = proxy_server(&format!("/api = http://{}\n", a.addr), &[]);
    assert_eq!(server.get("/api/x", &[]).header("x-upstream"), Some("a"));
    let staged = dir.write("proxy.ini.new", &format!("/api = http://{}\n", b.addr));
    std::fs::rename(&staged, dir.path().join("proxy.ini")).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/api/x", &[]).header("x-upstream") != Some("b") {
        assert!(Instant::now() < deadline, "the new upstream never answered");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn proxy_headers_are_not_forwarded() {
    // `Proxy-*` and `Proxy` (httpoxy) are hop-by-hop for a reverse proxy.
    let up = Upstream::start("p");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let response = server.get(
        "/echo",
        &[
            ("Proxy-Foo", "1"),
            ("Proxy", "http://evil.example:3128"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Proxy-Connection", "keep-alive"),
            ("X-Proxyish", "kept"),
        ],
    );
    assert_eq!(response.status, 200);
    let text = response.text();
    assert!(text.contains("x-proxyish: kept"), "{text}");
    for line in text.lines() {
        assert!(!line.starts_with("proxy"), "{line:?} forwarded:\n{text}");
    }
}

#[test]
fn an_http10_upstream_is_answered_in_http11() {
    // A proxy answers in its own version, whatever the upstream spoke.
    let up = Upstream::start("old");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let mut client = server.client();
    let response = client.request("GET", "/http10", &[], b"");
    assert_eq!(response.status, 200);
    assert_eq!(response.version, "HTTP/1.1");
    assert_eq!(response.text(), "from 1.0");
    assert_eq!(response.header("x-upstream"), Some("old"));
    // The client's connection stays usable (keep-alive is the client's).
    let again = client.request("GET", "/http10", &[], b"");
    assert_eq!((again.version.as_str(), again.status), ("HTTP/1.1", 200));
}

#[test]
fn an_http10_upgrade_is_forwarded_as_a_plain_request() {
    // RFC 9110 §7.8: `Upgrade` in HTTP/1.0 is ignored, never tunnelled.
    let up = Upstream::start("u");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let mut client = server.client();
    client.send_raw(
        b"GET /echo HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("upgrade"), None);
    let text = response.text();
    assert!(text.starts_with("GET /echo\n"), "{text}");
    for line in text.lines() {
        assert!(
            !line.starts_with("upgrade:") && !line.starts_with("connection:"),
            "{line:?} forwarded:\n{text}"
        );
    }
    // The same request in HTTP/1.1 is a WebSocket handshake (the upstream
    // answers `/ws` with 101).
    let mut client = server.client();
    client.send_raw(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(client.read_response(true).expect("a response").status, 101);
}

#[test]
fn head_of_a_chunked_upstream_resource_gets_no_invented_length() {
    let up = Upstream::start("c");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let mut client = server.client();
    let get = client.request("GET", "/chunked", &[], b"");
    assert_eq!(get.text(), "hello");
    let head = client.request("HEAD", "/chunked", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-upstream"), Some("c"));
    // The upstream sent no length (its GET is chunked): none is made up.
    assert_eq!(head.header("content-length"), None, "{:?}", head.headers);
    // A HEAD whose upstream sends a length passes it on.
    let sized = client.request("HEAD", "/download?size=1234", &[], b"");
    assert_eq!(sized.header("content-length"), Some("1234"));
    // The connection is still in sync.
    assert_eq!(client.request("GET", "/chunked", &[], b"").text(), "hello");
}

#[test]
fn a_malformed_chunked_body_is_the_clients_fault() {
    let up = Upstream::start("b");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    let mut client = server.client();
    client.send_raw(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5;a\nb\r\nworld\r\n0\r\n\r\n",
    );
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.status, 400, "{}", response.text());
    assert!(client.is_closed_within(Duration::from_secs(5)));
    let logged = server
        .stdout
        .wait_for(Duration::from_secs(5), |line| line.contains("POST /echo"))
        .expect("a log line");
    assert!(logged.contains("\" 400 "), "{logged}");
    let warnings: Vec<String> = server
        .stderr
        .snapshot()
        .into_iter()
        .filter(|line| line.contains("WARN"))
        .collect();
    assert!(warnings.is_empty(), "the upstream was blamed: {warnings:?}");
}

#[test]
fn repeated_equal_content_lengths_are_forwarded_as_one() {
    let up = Upstream::start("l");
    let (_dir, server) = proxy_server(&format!("/ = http://{}\n", up.addr), &[]);
    for raw in [
        &b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\nab"[..],
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab",
    ] {
        let mut client = server.client();
        client.send_raw(raw);
        let response = client.read_response(false).expect("a response");
        assert_eq!(response.status, 200);
        let text = response.text();
        let lengths: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("content-length:"))
            .collect();
        assert_eq!(lengths, ["content-length: 2"], "{text}");
        assert!(text.contains("body-bytes: 2"), "{text}");
    }
}

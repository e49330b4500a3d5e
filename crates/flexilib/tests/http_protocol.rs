//! HTTP/1.1 behaviour: keep-alive, bodies, HEAD, 100-continue, limits, timeouts.

mod common;

use common::{standard_config, Client, ServerBuilder};
use std::time::{Duration, Instant};

#[test]
fn keep_alive_reuses_the_connection_and_close_closes_it() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    for _ in 0..5 {
        assert_eq!(client.request("GET", "/", &[], b"").status, 200);
    }
    let last = client.request("GET", "/", &[("Connection", "close")], b"");
    assert_eq!(last.status, 200);
    assert_eq!(last.header("connection"), Some("close"));
    assert!(client.is_closed_within(Duration::from_secs(2)));
    // Five keep-alive requests and the closing one came from one client port.
    let lines = server.log_lines(6);
    let ports: std::collections::HashSet<_> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    assert_eq!(ports.len(), 1, "{lines:?}");
}

#[test]
fn chunked_and_content_length_bodies() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(
        b"POST / HTTP/1.1\r\nHost: x\r\nx-echo-body: 1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    let chunked = client.read_response(false).expect("response");
    assert_eq!(chunked.text(), "hello world");
    let sized = client.request("PUT", "/", &[("x-echo-body", "1")], b"sized body");
    assert_eq!(sized.text(), "sized body");
}

#[test]
fn head_has_headers_and_no_body() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let head = client.request("HEAD", "/", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("2"));
    assert!(head.body.is_empty());
    // The connection is still in sync: no stray body bytes.
    assert_eq!(client.request("GET", "/", &[], b"").text(), " 1");
}

#[test]
fn expect_100_continue() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"POST / HTTP/1.1\r\nHost: x\r\nx-echo-body: 1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = client.read_response(false).expect("100 Continue");
    assert_eq!(interim.status, 100);
    client.send_raw(b"data");
    let done = client.read_response(false).expect("final response");
    assert_eq!(done.status, 200);
    assert_eq!(done.text(), "data");
}

#[test]
fn malformed_requests_get_400() {
    let (_dir, config) = standard_config("");
    let mut server = ServerBuilder::new(&config).start();
    for raw in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nBad Header Line\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let mut client = server.client();
        client.send_raw(raw);
        let response = client.read_response(false).expect("an error response");
        assert_eq!(
            response.status,
            400,
            "for {:?}",
            String::from_utf8_lossy(raw)
        );
    }
    assert!(server.is_running());
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn oversized_head_gets_431_and_oversized_body_413() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("MAX_HEADER_BYTES", "4096")
        .env("MAX_BODY_BYTES", "1000")
        .start();
    let mut client = server.client();
    let big = "a".repeat(5000);
    let response = client.request("GET", "/", &[("x-big-header", &big)], b"");
    assert_eq!(response.status, 431);

    let mut client = server.client();
    let response = client.request("POST", "/", &[], &[b'x'; 1001]);
    assert_eq!(response.status, 413);

    // A chunked body that grows past the limit.
    let mut client = server.client();
    let mut raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"190\r\n");
        raw.extend_from_slice(&[b'y'; 400]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    client.send_raw(&raw);
    assert_eq!(client.read_response(false).expect("413").status, 413);

    // At the limit is fine.
    let mut client = server.client();
    let ok = client.request("POST", "/", &[("x-echo-body", "1")], &[b'z'; 1000]);
    assert_eq!(ok.status, 200);
    assert_eq!(ok.body.len(), 1000);
}

#[test]
fn slow_header_and_idle_connections_are_closed() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("HEADER_READ_TIMEOUT_SECONDS", "0.5")
        .env("KEEPALIVE_TIMEOUT_SECONDS", "1")
        .start();

    // Slowloris: half a request head, then nothing.
    let mut slow = server.client();
    slow.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n");
    let started = Instant::now();
    assert!(slow.is_closed_within(Duration::from_secs(5)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(400),
        "closed too early: {waited:?}"
    );

    // Idle keep-alive: one request, then silence.
    let mut idle = server.client();
    assert_eq!(idle.request("GET", "/", &[], b"").status, 200);
    let started = Instant::now();
    assert!(idle.is_closed_within(Duration::from_secs(5)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );

    // A connection in active use is not cut by the idle timeout.
    let mut busy = Client::connect(server.addr);
    let until = Instant::now() + Duration::from_millis(1600);
    while Instant::now() < until {
        assert_eq!(busy.request("GET", "/", &[], b"").status, 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    // And a slow handler is not cut by the header timeout.
    assert_eq!(
        busy.request("GET", "/", &[("x-slow", "1200")], b"").status,
        200
    );
}

#[test]
fn idle_connections_park_and_resume() {
    // After 100 ms idle a connection gives its HTTP buffers back and waits
    // on the bare socket; the next request must be served as if nothing
    // happened, and the keep-alive timeout still counts from the last request.
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("KEEPALIVE_TIMEOUT_SECONDS", "4")
        .env("RUST_LOG", "info,flexilib::housekeeping=debug")
        .start();
    // Connections parked, as the housekeeping thread counts them (debug).
    let parked = || -> usize {
        server
            .stderr
            .snapshot()
            .iter()
            .filter(|l| l.contains("connections parked"))
            .filter_map(|l| {
                l.split("parked=")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum()
    };
    let mut clients: Vec<Client> = (0..50).map(|_| server.client()).collect();
    for client in &mut clients {
        assert_eq!(client.request("GET", "/", &[], b"").status, 200);
    }
    std::thread::sleep(Duration::from_millis(2500));
    // Every one of them parked (none is busy).
    assert!(parked() >= 50, "{:#?}", server.stderr.snapshot());
    for client in &mut clients {
        let response = client.request("POST", "/", &[("x-echo-body", "1")], b"after parking");
        assert_eq!(response.text(), "after parking");
    }
    // Pipelined: two requests in one write right after resuming.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(parked() >= 100, "parked again after resuming");
    let client = &mut clients[0];
    client.send_raw(b"GET /one HTTP/1.1\r\nHost: x\r\nx-echo-target: 1\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\nx-echo-target: 1\r\n\r\n");
    assert_eq!(
        client.read_response(false).expect("first").text(),
        "GET /one"
    );
    assert_eq!(
        client.read_response(false).expect("second").text(),
        "GET /two"
    );
    let started = Instant::now();
    assert!(client.is_closed_within(Duration::from_secs(8)));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(3500),
        "closed after {waited:?}"
    );
}

#[test]
fn dot_segments_and_stalled_bodies_are_refused() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("BODY_READ_TIMEOUT_SECONDS", "0.5")
        .start();
    let mut client = server.client();
    for path in ["/c/../admin", "/a/%2e%2e/b", "/./x"] {
        assert_eq!(client.request("GET", path, &[], b"").status, 400, "{path}");
    }
    // A body that never arrives: 408 after the body timeout, connection closed.
    let mut stalled = server.client();
    stalled.send_raw(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly a part");
    let started = Instant::now();
    let response = stalled.read_response(false).expect("408");
    assert_eq!(response.status, 408);
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert!(stalled.is_closed_within(Duration::from_secs(2)));
}

#[test]
fn many_small_headers_are_served_up_to_the_documented_limits() {
    // 150 headers of about 10 bytes (1.5 KiB) are well under MAX_HEADER_BYTES;
    // nginx serves them, and so must we (hyper's own cap is 100).
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("MAX_HEADER_BYTES", "4096")
        .start();
    let head = |count: usize| -> Vec<u8> {
        let mut raw = String::from("GET /c/many HTTP/1.1\r\nHost: x\r\n");
        for i in 0..count {
            raw.push_str(&format!("x-h{i}: v\r\n"));
        }
        raw.push_str("\r\n");
        raw.into_bytes()
    };
    let mut client = server.client();
    let request = head(150);
    assert!(request.len() < 2048, "{}", request.len());
    client.send_raw(&request);
    let response = client.read_response(false).expect("a response");
    assert_eq!(response.status, 200);
    // The C example counts the headers it was given: Host and the 150.
    assert!(
        response.text().ends_with(" headers=151"),
        "{}",
        response.text()
    );

    // More than MAX_HEADER_COUNT (256 by default) is 431, though it fits.
    let mut client = server.client();
    let request = head(300);
    assert!(request.len() <= 4096, "{}", request.len());
    client.send_raw(&request);
    assert_eq!(client.read_response(false).expect("a response").status, 431);
    drop(server);

    // With a higher count, as many as fit in 4096 bytes are fine; more is 431.
    let server = ServerBuilder::new(&config)
        .env("MAX_HEADER_BYTES", "4096")
        .env("MAX_HEADER_COUNT", "2048")
        .start();
    let mut client = server.client();
    let request = head(350);
    assert!(request.len() <= 4096, "{}", request.len());
    client.send_raw(&request);
    assert_eq!(client.read_response(false).expect("a response").status, 200);
    let mut client = server.client();
    client.send_raw(&head(480));
    assert_eq!(client.read_response(false).expect("a response").status, 431);
}

//! The access log line, field by field, and its flush on shutdown.

mod common;

use common::{standard_config, ServerBuilder};

/// The fields of one log line.
#[derive(Debug)]
struct LogLine {
    addr: String,
    method: String,
    target: String,
    version: String,
    status: u16,
    ttfb_ms: f64,
    bytes: u64,
    ttlb_ms: f64,
    prealloc: u64,
    alloc: u64,
}

fn ms(field: &str) -> f64 {
    let number = field
        .strip_suffix("ms")
        .unwrap_or_else(|| panic!("{field} lacks ms"));
    let (_, decimals) = number
        .split_once('.')
        .unwrap_or_else(|| panic!("{field} lacks decimals"));
    assert_eq!(decimals.len(), 3, "three decimals in {field}");
    number
        .parse()
        .unwrap_or_else(|_| panic!("{field} is not a number"))
}

/// Parses `ADDR - - "METHOD TARGET VERSION" STATUS ttfb X.XXXms BYTES ttlb Y.YYYms (pre-alloc: N, alloc: M)`.
fn parse(line: &str) -> LogLine {
    let (addr, rest) = line
        .split_once(" - - \"")
        .unwrap_or_else(|| panic!("bad prefix: {line}"));
    let (request, rest) = rest
        .split_once("\" ")
        .unwrap_or_else(|| panic!("bad request: {line}"));
    let mut request = request.split(' ');
    let (method, target, version) = (request.next(), request.next(), request.next());
    let words: Vec<&str> = rest.split(' ').collect();
    assert_eq!(words.len(), 10, "{line}");
    assert_eq!(words[1], "ttfb");
    assert_eq!(words[4], "ttlb");
    assert_eq!(words[6], "(pre-alloc:");
    assert_eq!(words[8], "alloc:");
    LogLine {
        addr: addr.to_string(),
        method: method.unwrap_or_default().to_string(),
        target: target.unwrap_or_default().to_string(),
        version: version.unwrap_or_default().to_string(),
        status: words[0].parse().expect("status"),
        ttfb_ms: ms(words[2]),
        bytes: words[3].parse().expect("bytes"),
        ttlb_ms: ms(words[5]),
        prealloc: words[7].trim_end_matches(',').parse().expect("prealloc"),
        alloc: words[9].trim_end_matches(')').parse().expect("alloc"),
    }
}

#[test]
fn every_field_of_the_log_line() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("RESPONSE_PREALLOCATION_KB", "16")
        .env("ARENA_RETAIN_KB", "64")
        .start();
    let mut client = server.client();
    let local = client
        .stream()
        .local_addr()
        .expect("local addr")
        .to_string();
    client.request("GET", "/first?a=b", &[("x-slow", "50")], b"");
    client.request("GET", "/big", &[("x-big", "200000")], b"");
    client.request("GET", "/after", &[], b"");
    client.request("GET", "/nowhere-but-root", &[("x-status", "404")], b"");
    let lines = server.log_lines(4);
    assert_eq!(lines.len(), 4, "{lines:?}");
    let entries: Vec<LogLine> = lines.iter().map(|l| parse(l)).collect();

    let first = &entries[0];
    assert_eq!(first.addr, local);
    assert_eq!(first.method, "GET");
    assert_eq!(first.target, "/first?a=b");
    assert_eq!(first.version, "HTTP/1.1");
    assert_eq!(first.status, 200);
    assert_eq!(first.bytes, "i am slow\n\n".len() as u64);
    assert!(first.ttfb_ms >= 50.0, "{first:?}");
    assert!(first.ttlb_ms >= first.ttfb_ms, "{first:?}");
    assert!(first.prealloc >= 16 * 1024, "{first:?}");
    assert!(first.alloc > 0 && first.alloc < first.prealloc, "{first:?}");

    let big = &entries[1];
    assert_eq!(big.bytes, 200_000);
    assert!(
        big.alloc >= 200_000,
        "the response was built in the arena: {big:?}"
    );

    // The arena grew past ARENA_RETAIN_KB and was replaced by a fresh one.
    let after = &entries[2];
    assert!(after.prealloc < 64 * 1024, "{after:?}");
    assert_eq!(entries[3].status, 404);
}

#[test]
fn sigterm_flushes_the_log_and_exits_zero() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config).start();
    for i in 0..50 {
        let response = server.get(&format!("/n{i}"), &[]);
        assert_eq!(response.status, 200);
    }
    let (status, stdout, _stderr) = server.terminate();
    assert!(status.success(), "{status:?}");
    let lines = stdout.snapshot();
    assert_eq!(lines.len(), 50, "every request logged: {lines:?}");
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(parse(line).target, format!("/n{i}"));
    }
}

#[test]
fn requests_refused_at_the_head_are_logged_too() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("MAX_HEADER_BYTES", "1024")
        .start();
    let refused = [
        // A header line without a colon: 400.
        (
            b"GET /no-colon HTTP/1.1\r\nHost: a\r\nbroken\r\n\r\n".to_vec(),
            400,
            "GET /no-colon HTTP/1.1".to_string(),
        ),
        // A request target past the head limit: 414, the line cut short.
        (
            format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "x".repeat(2000)).into_bytes(),
            414,
            format!("GET /{}", "x".repeat(507)),
        ),
        // An unknown transfer coding: 501.
        (
            b"POST /te HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
            501,
            "POST /te HTTP/1.1".to_string(),
        ),
        // A quote and a control byte in the line are escaped.
        (
            b"GET /\"q\x01 HTTP/1.1\r\n\r\n".to_vec(),
            400,
            "GET /\\x22q\\x01 HTTP/1.1".to_string(),
        ),
    ];
    for (raw, status, _) in &refused {
        let mut client = server.client();
        client.send_raw(raw);
        let response = client.read_response(false).expect("an answer");
        assert_eq!(response.status, *status, "{}", response.text());
    }
    let lines = server.log_lines(refused.len());
    assert_eq!(lines.len(), refused.len(), "{lines:?}");
    // Each line is written once its connection has closed, in any order.
    for (_, status, request) in &refused {
        let prefix = format!("- - \"{request}");
        let wanted = format!(" {status} ttfb ");
        assert!(
            lines
                .iter()
                .any(|line| line.contains(&prefix) && line.contains(&wanted)),
            "expected {prefix}… {status} in {lines:?}"
        );
    }
}

#[test]
fn json_lines_with_access_log_format_json() {
    let (_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("ACCESS_LOG_FORMAT", "json")
        .start();
    let mut client = server.client();
    let local = client
        .stream()
        .local_addr()
        .expect("local addr")
        .to_string();
    client.request("GET", "/first?a=b", &[("x-slow", "20")], b"");
    let mut raw = common::Client::connect(server.addr);
    raw.send_raw(b"GET /bad\x01 HTTP/1.1\r\n\r\n");
    assert_eq!(raw.read_response(false).map(|r| r.status), Some(400));
    let lines = server.log_lines(2);
    assert_eq!(lines.len(), 2, "{lines:?}");
    // In either order: a line is written when its response is done.
    let parsed: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let (refused, line) = if parsed[0]["refused"] == true {
        (&parsed[0], &parsed[1])
    } else {
        (&parsed[1], &parsed[0])
    };
    assert_eq!(line["peer"], local.as_str());
    assert_eq!(line["method"], "GET");
    assert_eq!(line["target"], "/first?a=b");
    assert_eq!(line["version"], "HTTP/1.1");
    assert_eq!(line["status"], 200);
    assert_eq!(line["bytes"], "i am slow\n\n".len());
    assert!(
        line["ttfb_ms"].as_f64().is_some_and(|ms| ms >= 20.0),
        "{line}"
    );
    assert!(
        line["alloc"].as_u64().is_some_and(|bytes| bytes > 0),
        "{line}"
    );
    assert_eq!(refused["refused"], true);
    assert_eq!(refused["status"], 400);
    assert_eq!(refused["request_line"], "GET /bad\u{1} HTTP/1.1");

    let (status, stderr) = ServerBuilder::new(&config)
        .env("ACCESS_LOG_FORMAT", "xml")
        .run_to_exit();
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ACCESS_LOG_FORMAT"), "{stderr}");
}

//! Diagnostics never cost a request much: a failure repeated on every
//! request is logged once (or once in a while), and stderr is written off
//! the request path, so a stderr nobody reads stalls nothing.

mod common;

use common::{compile_c_text, rust_example, Client, ServerBuilder, TempDir};
use std::time::Duration;

fn count(server: &common::Server, pred: impl Fn(&str) -> bool) -> usize {
    server.stderr.snapshot().iter().filter(|l| pred(l)).count()
}

#[test]
fn a_missing_library_is_remembered_until_it_appears() {
    let dir = TempDir::new("missing");
    let config = dir.write("proxy.ini", "/ = libmissing.so\n");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    for _ in 0..20 {
        assert_eq!(client.request("GET", "/", &[], b"").status, 502);
    }
    std::thread::sleep(Duration::from_millis(200));
    let warnings = count(&server, |l| {
        l.contains("WARN") && l.contains("library load failed")
    });
    assert_eq!(warnings, 1, "{:#?}", server.stderr.snapshot());
    // The file appears: the next request loads it.
    std::fs::copy(rust_example(), dir.path().join("libmissing.so")).expect("copy");
    assert_eq!(client.request("GET", "/", &[], b"").status, 200);
}

#[test]
fn a_failing_call_is_logged_once_in_a_while() {
    let dir = TempDir::new("nullrate");
    compile_c_text(&dir, "libnull.so", common::NULL_HANDLER_C);
    compile_c_text(&dir, "libnull2.so", common::NULL_HANDLER_C);
    let config = dir.write("proxy.ini", "/a = libnull.so\n/b = libnull2.so\n");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    for _ in 0..50 {
        assert_eq!(client.request("GET", "/a", &[], b"").status, 500);
        assert_eq!(client.request("GET", "/b", &[], b"").status, 500);
    }
    std::thread::sleep(Duration::from_millis(200));
    // One warning per library, not one per request.
    let warnings: Vec<String> = server
        .stderr
        .snapshot()
        .into_iter()
        .filter(|l| l.contains("library call failed"))
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings.iter().any(|l| l.contains("libnull.so")));
    assert!(warnings.iter().any(|l| l.contains("libnull2.so")));
}

#[test]
fn a_stderr_nobody_reads_stalls_no_request() {
    let dir = TempDir::new("stall");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/missing = libmissing.so\n/ = {}\n",
            rust_example().display()
        ),
    );
    // Debug diagnostics: lines on every request.
    let server = ServerBuilder::new(&config).env("RUST_LOG", "debug").start();
    assert_eq!(server.get("/", &[]).status, 200);
    server.stderr.stop_reading();
    // Far more than a pipe's 64 KiB of diagnostics.
    let mut client = server.client();
    client
        .stream()
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    for n in 0..3000 {
        client.send_raw(b"GET /missing HTTP/1.1\r\nHost: x\r\n\r\n");
        let response = client.read_response(false);
        assert_eq!(
            response.map(|r| r.status),
            Some(502),
            "request {n} unanswered: the server blocked writing to stderr"
        );
    }
    let mut fresh = Client::connect(server.addr);
    assert_eq!(fresh.request("GET", "/", &[], b"").status, 200);
}

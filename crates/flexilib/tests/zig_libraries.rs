//! Zig handler libraries built with real Zig compilers (installed by
//! `scripts/install-zig.sh`): one in the original FlexiLib's style for Zig
//! 0.13, which needs `zigInit` and its allocator, and the SDK's examples
//! for current Zig: `examples/zig-sample` (ABI 1) and
//! `examples/zig-instance` (ABI 2: route options, a watched file, answers
//! from another thread, streamed bodies).

mod common;

#[path = "common/zig.rs"]
mod zig;

use std::ffi::OsString;
use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{ServerBuilder, TempDir};

/// tests/zig/original_style.zig, built with Zig 0.13 and libc like the
/// original's libraries.
fn original_style() -> PathBuf {
    zig::build_library(
        zig::ORIGINAL,
        "original_style",
        &[
            "-lc".into(),
            zig::source("crates/flexilib/tests/zig/original_style.zig"),
        ],
    )
}

/// A config routing every path to `library`.
fn config_for(library: &std::path::Path) -> (TempDir, PathBuf) {
    let dir = TempDir::new("zig");
    let config = dir.write("proxy.ini", &format!("/ = {}\n", library.display()));
    (dir, config)
}

#[test]
fn original_style_library_gets_an_allocator_before_every_request() {
    let (_dir, config) = config_for(&original_style());
    let server = ServerBuilder::new(&config).start();
    // One connection, so one handler thread in turn: the library forgets
    // the allocator after each request, so each needs its own zigInit.
    let mut client = server.client();
    for n in 0..5 {
        let response = client.request("GET", &format!("/n/{n}?q=1"), &[("X-A", "b")], b"");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(
            response.text(),
            format!("zig 0.13: GET /n/{n}?q=1 headers=2 body=0")
        );
        assert_eq!(response.header("x-zig"), Some("0.13"));
    }
    let posted = client.request("POST", "/p", &[], b"12345");
    assert_eq!(posted.text(), "zig 0.13: POST /p headers=2 body=5");
}

#[test]
fn original_style_status_error_and_body() {
    let (_dir, config) = config_for(&original_style());
    let server = ServerBuilder::new(&config).start();
    let teapot = server.get("/", &[("x-status", "418")]);
    assert_eq!(teapot.status, 418);
    assert_eq!(teapot.text(), "zig 0.13: GET / headers=2 body=0");

    let failed = server.get("/", &[("x-fail", "1")]);
    assert_eq!(failed.status, 500);
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(5), |l| l
                .contains("original_style: FailRequested"))
            .is_some(),
        "the library's own error log reaches stderr"
    );

    let echoed = server
        .client()
        .request("POST", "/", &[("x-echo", "1")], b"body bytes");
    assert_eq!(echoed.text(), "body bytes");
}

#[test]
fn original_style_grows_a_large_body_through_the_allocator() {
    let (_dir, config) = config_for(&original_style());
    let server = ServerBuilder::new(&config).start();
    let size = 300_000;
    let response = server.get("/", &[("x-grow", &size.to_string())]);
    assert_eq!(response.status, 200, "{}", response.text());
    let expected: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(response.body.len(), size);
    assert!(response.body == expected, "body differs from a..z repeated");
}

/// examples/zig-sample, built with current Zig and the SDK.
fn sdk_sample() -> PathBuf {
    let mut root = OsString::from("-Mroot=");
    root.push(zig::source("examples/zig-sample/sample.zig"));
    let mut sdk = OsString::from("-Mflexilib=");
    sdk.push(zig::source("sdk/zig/flexilib.zig"));
    zig::build_library(
        zig::CURRENT,
        "sample_zig",
        &[
            "-fno-ubsan-rt".into(),
            "--dep".into(),
            "flexilib".into(),
            root,
            sdk,
        ],
    )
}

#[test]
fn sdk_unit_tests_pass() {
    zig::run_tests(zig::CURRENT, &[zig::source("sdk/zig/flexilib.zig")]);
}

#[test]
fn sdk_sample_default_iam_and_slow() {
    let (_dir, config) = config_for(&sdk_sample());
    let server = ServerBuilder::new(&config).start();
    let plain = server.get("/", &[("Accept", "*/*"), ("X-One", "1")]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.text(), " 3");
    assert_eq!(plain.header("x-custom-foo"), Some("bar"));
    assert_eq!(plain.header("content-type"), Some("text/plain"));

    let iam = server.get("/", &[("Host", "iamhere.example")]);
    assert_eq!(iam.text(), "iam response");
    assert_eq!(iam.header("x-custom-foo"), None);

    let started = Instant::now();
    let slow = server.get("/", &[("x-slow", "300")]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(slow.text(), "i am slow\n\n");
}

#[test]
fn sdk_sample_log_status_and_error() {
    let (_dir, config) = config_for(&sdk_sample());
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        server.get("/", &[("x-log-this", "hello")]).text(),
        "hello 2"
    );

    let status = server.get("/", &[("x-status", "418")]);
    assert_eq!((status.status, status.text()), (418, " 2".into()));

    // A Zig error: 500, the body written so far is kept, the error logged.
    let thrown = server.get("/t", &[("x-throw", "1")]);
    assert_eq!((thrown.status, thrown.text()), (500, " 2".into()));
    assert!(
        server
            .stderr
            .wait_for(Duration::from_secs(5), |l| l
                .contains("handler failed: Thrown (GET /t)"))
            .is_some(),
        "the SDK logs the error"
    );
    let with_status = server.get("/", &[("x-throw", "1"), ("x-status", "503")]);
    assert_eq!(with_status.status, 503);

    let reason = server.get("/", &[("x-status", "299"), ("x-reason", "Quite Fine")]);
    assert_eq!((reason.status, reason.reason.as_str()), (299, "Quite Fine"));
}

#[test]
fn sdk_sample_sees_method_target_path_query_and_body() {
    let (_dir, config) = config_for(&sdk_sample());
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    let body = client.request("POST", "/up?x=1", &[("x-echo-body", "1")], b"payload bytes");
    assert_eq!(body.text(), "payload bytes");
    let target = client.request("DELETE", "/a/b?c=d&e", &[("x-echo-target", "1")], b"");
    assert_eq!(target.text(), "DELETE /a/b?c=d&e");
    let path = client.request("GET", "/p/q?r=s", &[("x-echo-path", "1")], b"");
    assert_eq!(path.text(), "path=/p/q query=r=s");
    let no_query = client.request("GET", "/p", &[("x-echo-path", "1")], b"");
    assert_eq!(no_query.text(), "path=/p query=(none)");
}

/// examples/zig-instance, built with current Zig, the SDK and libc (its
/// threads need it).
fn sdk_instance() -> PathBuf {
    let mut root = OsString::from("-Mroot=");
    root.push(zig::source("examples/zig-instance/instance.zig"));
    let mut sdk = OsString::from("-Mflexilib=");
    sdk.push(zig::source("sdk/zig/flexilib.zig"));
    zig::build_library(
        zig::CURRENT,
        "zig_instance",
        &[
            "-lc".into(),
            "-fno-ubsan-rt".into(),
            "--dep".into(),
            "flexilib".into(),
            root,
            sdk,
        ],
    )
}

/// A directory with `page.txt` holding `template` (unless `None`) and a
/// config routing `/z` to the instance example with `options`.
fn instance_setup(template: Option<&str>, options: &str) -> (TempDir, PathBuf) {
    let library = sdk_instance();
    let dir = TempDir::new("zig-instance");
    if let Some(template) = template {
        dir.write("page.txt", template);
    }
    let config = dir.write(
        "proxy.ini",
        &format!("/z = {} {options}\n", library.display()),
    );
    (dir, config)
}

/// Replaces `name` in `dir` atomically (as editors and deploy tools do).
fn replace_file(dir: &TempDir, name: &str, text: &str) {
    let staged = dir.path().join(format!(".{name}.new"));
    std::fs::write(&staged, text).expect("write");
    std::fs::rename(&staged, dir.path().join(name)).expect("rename");
}

/// Asks for `path` until its body is `expected` (a new instance serves).
fn wait_for_text(server: &common::Server, path: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.get(path, &[]).text();
        if text == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{path} still answers {text:?}, not {expected:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn zig_instance_gets_its_options_and_a_new_instance_when_its_file_changes() {
    let (dir, config) = instance_setup(
        Some("hi {name} at {path}\n"),
        "template=page.txt name=tester extra=1",
    );
    let server = ServerBuilder::new(&config).start();
    let page = server.get("/z/x", &[]);
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(page.text(), "hi tester at /z/x\n");
    assert_eq!(
        server.get("/z/options", &[]).text(),
        "template=page.txt\nname=tester\nextra=1\n"
    );

    // The template is watched: an edit is a new instance.
    replace_file(&dir, "page.txt", "bye {name} at {path}\n");
    wait_for_text(&server, "/z/y", "bye tester at /z/y\n");

    // A broken edit: the build fails, says why, and the old one serves on.
    replace_file(&dir, "page.txt", "no placeholder\n");
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("page.txt has no {path} placeholder")
        })
        .expect("the failed build is logged");
    assert!(line.contains("/z"), "the route is named: {line}");
    assert_eq!(server.get("/z/y", &[]).text(), "bye tester at /z/y\n");

    // Fixed again: a new instance.
    replace_file(&dir, "page.txt", "back, {name}, at {path}\n");
    wait_for_text(&server, "/z/w", "back, tester, at /z/w\n");
}

#[test]
fn zig_instance_build_failures_answer_502_until_the_file_is_there() {
    // No template option: config.fail's message, with the route.
    let (_dir, config) = instance_setup(None, "name=x");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/z", &[]).status, 502);
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("the route needs template=FILE")
        })
        .expect("the reason is logged");
    assert!(line.contains("/z"), "the route is named: {line}");
    drop(server);

    // A missing template: readFile names it all the same, so creating it
    // builds the instance.
    let (dir, config) = instance_setup(None, "template=page.txt");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/z", &[]).status, 502);
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("cannot read page.txt: FileNotFound")
        })
        .expect("the read error is logged");
    replace_file(&dir, "page.txt", "now {name} at {path}\n");
    wait_for_text(&server, "/z/n", "now world at /z/n\n");
}

#[test]
fn zig_instance_answers_later_from_another_thread_without_holding_a_slot() {
    let (_dir, config) = instance_setup(Some("later {name} {path}\n"), "template=page.txt");
    let server = ServerBuilder::new(&config)
        .env("SERVER_THREAD_COUNT", "2")
        .start();
    let started = Instant::now();
    let requests: Vec<_> = (0..20)
        .map(|_| common::request_in_background(server.addr, "/z/later?ms=500", &[]))
        .collect();
    for request in requests {
        let (response, took) = request.join().expect("client");
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.text(), "later world /z/later\n");
        assert_eq!(response.header("x-answered"), Some("later"));
        assert_eq!(response.header("x-answered-on"), Some("another thread"));
        assert!(
            took >= Duration::from_millis(500),
            "answered after {took:?}"
        );
    }
    // Holding a slot each, 20 requests of 500 ms on 2 slots take 5 s.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn zig_instance_streams_lines_as_they_are_written() {
    let (_dir, config) = instance_setup(Some("{path}\n"), "template=page.txt");
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"GET /z/count?n=5 HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        head.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let chunks = client.read_chunks().expect("a complete body");
    let body: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(
        String::from_utf8_lossy(&body),
        "line 1\nline 2\nline 3\nline 4\nline 5\n"
    );
    // Four more lines, 50 ms apart, came after the first one.
    let spread = chunks[chunks.len() - 1].0.duration_since(chunks[0].0);
    assert!(
        spread >= Duration::from_millis(150),
        "the body arrived at once ({spread:?})"
    );
    // The connection serves on.
    let next = client.request("GET", "/z/p", &[], b"");
    assert_eq!(next.text(), "/z/p\n");
}

#[test]
fn zig_instance_streams_with_nonblocking_writes_and_on_writable() {
    let (_dir, config) = instance_setup(Some("{path}\n"), "template=page.txt");
    let server = ServerBuilder::new(&config).start();
    // 16 MiB, more than the host's buffer and the sockets' together: the
    // producer finds the host full while the client waits, and goes on
    // only through onWritable.
    let kib = 16 * 1024;
    let mut client = server.client();
    client.send_raw(format!("GET /z/big?kb={kib} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    let head = client.read_response(true).expect("head");
    assert_eq!(head.status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let chunks = client.read_chunks().expect("a complete body");
    let body: Vec<u8> = chunks.into_iter().flat_map(|(_, c)| c).collect();
    assert_eq!(body.len(), kib * 1024);
    assert!(body.iter().all(|&b| b == b'z'), "the body is all z");
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains(&format!("/big: {kib} KiB sent"))
        })
        .expect("the producer finished");
    let waits: u64 = line
        .rsplit("waited for room ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no wait count in {line:?}"));
    assert!(waits > 0, "the host was never full: {line}");

    // A client that leaves mid-body: the producer's writes fail and it stops.
    let mut leaving = server.client();
    leaving.send_raw(b"GET /z/big?kb=1000000 HTTP/1.1\r\nHost: x\r\n\r\n");
    leaving.read_response(true).expect("head");
    let mut some = vec![0; 64 * 1024];
    leaving.reader().read_exact(&mut some).expect("some body");
    drop(leaving);
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("/big: the client left after")
        })
        .expect("the producer stopped");
    assert_eq!(server.get("/z/q", &[]).text(), "/z/q\n");
}

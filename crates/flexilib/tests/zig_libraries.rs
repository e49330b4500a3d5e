//! Zig handler libraries built with real Zig compilers (installed by
//! `scripts/install-zig.sh`): one in the original FlexiLib's style for Zig
//! 0.13, which needs `zigInit` and its allocator, and the SDK example for
//! current Zig.

mod common;

#[path = "common/zig.rs"]
mod zig;

use std::ffi::OsString;
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

//! Zig handler libraries built with real Zig compilers (installed by
//! `scripts/install-zig.sh`): one in the original FlexiLib's style for Zig
//! 0.13, which needs `zigInit` and its allocator, and the SDK example for
//! current Zig.

mod common;

#[path = "common/zig.rs"]
mod zig;

use std::path::PathBuf;

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
            .wait_for(std::time::Duration::from_secs(5), |l| l
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

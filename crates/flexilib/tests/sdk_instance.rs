//! The Rust SDK's ABI-2 API end to end: `examples/rust-instance` configured
//! by route options, its template file watched, answering later and
//! streaming.

mod common;

use std::time::{Duration, Instant};

use common::{rust_example, rust_instance_example, ServerBuilder, TempDir};

#[test]
fn an_sdk_instance_is_configured_by_options_and_rebuilt_when_its_file_changes() {
    let dir = TempDir::new("sdk-instance");
    dir.write("page.txt", "hi {name} at {path}\n");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/greet = {} template=page.txt name=tester\n/ = {}\n",
            rust_instance_example().display(),
            rust_example().display()
        ),
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(
        server.get("/greet/x", &[]).text(),
        "hi tester at /greet/x\n"
    );

    // Answered later, from the instance's thread.
    let later = server.get("/greet/later?ms=200", &[]);
    assert_eq!(later.text(), "hi tester at /greet/later\n");
    assert_eq!(later.header("x-answered"), Some("later"));

    // Streamed: lines arrive as they are written.
    let mut client = server.client();
    client.send_raw(b"GET /greet/count?n=4 HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = client.read_response(true).expect("head");
    assert_eq!(head.header("transfer-encoding"), Some("chunked"));
    let chunks = client.read_chunks().expect("a complete body");
    let body: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
    assert_eq!(body, b"line 1\nline 2\nline 3\nline 4\n");
    let spread = chunks[chunks.len() - 1].0.duration_since(chunks[0].0);
    assert!(
        spread >= Duration::from_millis(100),
        "the body arrived at once ({spread:?})"
    );

    // The template is watched: an edit is a new instance; a bad one is not.
    std::fs::write(dir.path().join("page.txt"), "bye {name} at {path}\n").expect("edit");
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.get("/greet/y", &[]).text() != "bye tester at /greet/y\n" {
        assert!(Instant::now() < deadline, "no new instance");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::fs::write(dir.path().join("page.txt"), "no placeholder\n").expect("bad edit");
    server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("has no {path} placeholder")
        })
        .expect("the failed build is logged");
    assert_eq!(
        server.get("/greet/z", &[]).text(),
        "bye tester at /greet/z\n"
    );
    // The ABI-1 library on `/` is unaffected.
    assert_eq!(server.get("/", &[]).status, 200);
}

#[test]
fn an_sdk_instance_without_its_required_option_answers_502_and_says_why() {
    let dir = TempDir::new("sdk-instance-bad");
    let config = dir.write(
        "proxy.ini",
        &format!("/greet = {} name=x\n", rust_instance_example().display()),
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/greet", &[]).status, 502);
    let line = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("needs template=FILE")
        })
        .expect("the reason is logged");
    assert!(line.contains("/greet"), "the route is named: {line}");
}

//! The server's own route options `limit_rate=`/`limit_burst=` (requests
//! per client, 429 with Retry-After) and `request_timeout=` (504), on any kind of
//! target.

mod common;
#[path = "common/upstream.rs"]
mod upstream;

use std::time::{Duration, Instant};

use common::{rust_example, ServerBuilder, TempDir};

#[test]
fn a_client_past_the_rate_gets_429_with_retry_after() {
    let dir = TempDir::new("limit-rate");
    let upstream = upstream::Upstream::start("one");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/lib = {lib} limit_rate=2/s limit_burst=3\n/echo = http://{up} limit_rate=1/m\n/free = {lib}\n",
            lib = rust_example().display(),
            up = upstream.addr
        ),
    );
    let server = ServerBuilder::new(&config).start();
    for n in 0..3 {
        assert_eq!(
            server.get("/lib/x", &[]).status,
            200,
            "request {n} of the burst"
        );
    }
    let limited = server.get("/lib/x", &[]);
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(limited.header("retry-after"), Some("1"));
    // Other routes are not limited by it.
    for _ in 0..10 {
        assert_eq!(server.get("/free/x", &[]).status, 200);
    }
    // The bucket refills at 2 per second.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(server.get("/lib/x", &[]).status, 200);
    // A proxy route at one a minute: the second waits a minute.
    assert_eq!(server.get("/echo", &[]).status, 200);
    let limited = server.get("/echo", &[]);
    assert_eq!(limited.status, 429);
    let retry: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After seconds");
    assert!((55..=60).contains(&retry), "{retry}");
    assert_eq!(
        upstream.requests.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // The refusals are in the access log.
    assert!(server
        .stdout
        .wait_for(Duration::from_secs(5), |l| l
            .contains("\"GET /echo HTTP/1.1\" 429"))
        .is_some());
}

#[test]
fn a_route_that_does_not_answer_in_time_gets_504() {
    let dir = TempDir::new("route-timeout");
    let upstream = upstream::Upstream::start("slow");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/slow-head = http://{up} request_timeout=0.5\n/echo = http://{up}\n",
            up = upstream.addr
        ),
    );
    let server = ServerBuilder::new(&config).start();
    let started = Instant::now();
    let response = server.get("/slow-head", &[]);
    assert_eq!(response.status, 504, "{}", response.text());
    // Before the upstream's 2 s answer.
    assert!(started.elapsed() < Duration::from_millis(1900));
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("did not answer in time"))
        .is_some());
    assert_eq!(server.get("/echo", &[]).status, 200);
}

#[test]
fn bad_route_options_name_the_line() {
    let dir = TempDir::new("limit-bad");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/a = {}\n/b = {} limit_burst=4\n",
            rust_example().display(),
            rust_example().display()
        ),
    );
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_flexilib"))
        .arg("--check")
        .arg("--config")
        .arg(&config)
        .env_remove("FLEXILIB_CONFIG")
        .output()
        .expect("run flexilib --check");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("proxy.ini:2: `limit_burst` needs `limit_rate`"),
        "{stderr}"
    );
}

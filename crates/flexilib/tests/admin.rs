//! The admin listener (`ADMIN_ADDRESS`): `/metrics` scraped and parsed by
//! Python's `prometheus-client` (PyPI, installed by
//! `scripts/install-metrics-client.sh`), `/healthz` and `/readyz` (503 while
//! draining after SIGTERM), `/status` as JSON, and none of it on the public
//! port.

mod common;
#[path = "common/metrics.rs"]
mod metrics;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{
    c_example, request_in_background, rust_example, Client, Server, ServerBuilder, TempDir,
};
use metrics::{admin_address, sample};
use serde_json::Value;

/// The routes every test here serves: a C library, the Rust example (with
/// its `x-slow` header), an upstream nobody listens on; no catch-all, so
/// other paths are 404.
fn config(dir: &TempDir) -> PathBuf {
    c_example(dir);
    dir.write(
        "proxy.ini",
        &format!(
            "/c = libsample_c.so\n/rust = {rust}\n/up = http://127.0.0.1:{port}\n",
            rust = rust_example().display(),
            port = closed_port(),
        ),
    )
}

/// A loopback port nobody listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

fn start(config: &std::path::Path) -> (Server, SocketAddr) {
    let server = ServerBuilder::new(config)
        .env("ADMIN_ADDRESS", "127.0.0.1:0")
        .env("SHUTDOWN_GRACE_SECONDS", "10")
        .start();
    let admin = admin_address(&server);
    (server, admin)
}

fn get(addr: SocketAddr, path: &str) -> common::Response {
    Client::connect(addr).request("GET", path, &[], b"")
}

/// Every sample and each family's type, as Python's parser reads them.
fn scrape(admin: SocketAddr) -> (Vec<Value>, Value) {
    let scraped = metrics::scrape(admin);
    (scraped.samples, scraped.types)
}

#[test]
fn metrics_count_requests_by_route_status_and_kind() {
    let dir = TempDir::new("admin-metrics");
    let config = config(&dir);
    let (server, admin) = start(&config);

    for _ in 0..2 {
        assert_eq!(server.get("/c/hello", &[]).status, 200);
    }
    assert_eq!(server.get("/rust", &[]).status, 200);
    assert_eq!(server.get("/nothing-here", &[]).status, 404);
    assert_eq!(server.get("/up/x", &[]).status, 502);
    // A connection held open while scraping.
    let mut held = server.client();
    assert_eq!(held.request("GET", "/c/held", &[], b"").status, 200);

    let (samples, types) = scrape(admin);
    assert_eq!(types["flexilib_requests"], "counter");
    assert_eq!(types["flexilib_request_duration_seconds"], "histogram");
    assert_eq!(types["flexilib_open_connections"], "gauge");
    let requests = |route: &str, kind: &str, class: &str| {
        sample(
            &samples,
            "flexilib_requests_total",
            &[("route", route), ("kind", kind), ("status_class", class)],
        )
    };
    assert_eq!(requests("/c", "library", "2xx"), Some(3.0));
    assert_eq!(requests("/c", "library", "5xx"), Some(0.0));
    assert_eq!(requests("/rust", "library", "2xx"), Some(1.0));
    assert_eq!(requests("/up", "upstream", "5xx"), Some(1.0));
    assert_eq!(
        requests("", "none", "4xx"),
        Some(1.0),
        "the 404 is no route's"
    );
    let histogram = |suffix: &str, extra: &[(&str, &str)]| {
        let mut labels = vec![("route", "/c"), ("kind", "library")];
        labels.extend_from_slice(extra);
        sample(
            &samples,
            &format!("flexilib_request_duration_seconds{suffix}"),
            &labels,
        )
    };
    assert_eq!(histogram("_count", &[]), Some(3.0));
    assert_eq!(histogram("_bucket", &[("le", "+Inf")]), Some(3.0));
    assert!(histogram("_sum", &[]).is_some_and(|sum| sum > 0.0 && sum < 30.0));
    let received = sample(
        &samples,
        "flexilib_received_bytes_total",
        &[("route", "/c")],
    );
    // Three heads of at least `GET /c/hello HTTP/1.1\r\nHost: localhost\r\n\r\n`.
    assert!(
        received.is_some_and(|bytes| bytes >= 3.0 * 37.0),
        "{received:?}"
    );
    let sent = sample(
        &samples,
        "flexilib_sent_body_bytes_total",
        &[("route", "/c")],
    );
    assert!(sent.is_some_and(|bytes| bytes > 0.0), "{sent:?}");
    assert!(
        sample(&samples, "flexilib_open_connections", &[]).is_some_and(|open| open >= 1.0),
        "the held connection is open"
    );
    assert_eq!(
        sample(&samples, "flexilib_upstream_up", &[("route", "/up")]),
        Some(0.0),
        "the upstream that refused is cooling down"
    );
    assert_eq!(
        sample(&samples, "flexilib_config_generation", &[]),
        Some(1.0)
    );
    assert_eq!(sample(&samples, "flexilib_ready", &[]), Some(1.0));
    drop(held);

    // A reload that keeps `/c` keeps its counters and counts the reload; a
    // broken config counts as a failure and changes nothing.
    let text = std::fs::read_to_string(&config).expect("config");
    dir.write("proxy.ini", &format!("{text}/c2 = libsample_c.so\n"));
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("config reloaded"))
        .expect("config reloaded");
    dir.write("proxy.ini", "/broken = http://\n");
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("config rejected"))
        .expect("config rejected");
    let (samples, _) = scrape(admin);
    assert_eq!(
        sample(&samples, "flexilib_config_generation", &[]),
        Some(2.0)
    );
    assert_eq!(
        sample(&samples, "flexilib_config_reloads_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(&samples, "flexilib_config_reload_failures_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &samples,
            "flexilib_requests_total",
            &[("route", "/c"), ("status_class", "2xx")]
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &samples,
            "flexilib_requests_total",
            &[("route", "/c2"), ("status_class", "2xx")]
        ),
        Some(0.0)
    );
}

#[test]
fn status_lists_routes_targets_and_generation() {
    let dir = TempDir::new("admin-status");
    let config = config(&dir);
    let (_server, admin) = start(&config);
    let response = get(admin, "/status");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some("application/json"));
    let status: Value = serde_json::from_slice(&response.body).expect("JSON");
    assert_eq!(status["state"], "ready");
    assert_eq!(status["config_generation"], 1);
    assert_eq!(status["config"], config.display().to_string());
    let routes = status["routes"].as_array().expect("routes");
    let keys: Vec<_> = routes
        .iter()
        .map(|r| r["key"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(keys, ["/c", "/rust", "/up"]);
    assert_eq!(routes[0]["kind"], "library");
    assert_eq!(routes[0]["line"], 1);
    assert!(routes[0]["target"]
        .as_str()
        .is_some_and(|t| t.ends_with("libsample_c.so")));
    assert_eq!(routes[2]["kind"], "upstream");
    assert!(routes[2]["target"]
        .as_str()
        .is_some_and(|t| t.starts_with("http://127.0.0.1:")));
}

#[test]
fn readyz_turns_503_while_draining_and_healthz_stays_200() {
    let dir = TempDir::new("admin-ready");
    let config = config(&dir);
    let (server, admin) = start(&config);
    assert_eq!(get(admin, "/healthz").status, 200);
    let ready = get(admin, "/readyz");
    assert_eq!((ready.status, ready.text().as_str()), (200, "ready\n"));
    assert_eq!(get(admin, "/nope").status, 404);
    assert_eq!(
        Client::connect(admin)
            .request("POST", "/readyz", &[], b"x")
            .status,
        405
    );

    // A slow request keeps the server draining after SIGTERM.
    let slow = request_in_background(server.addr, "/rust", &[("x-slow", "3000")]);
    std::thread::sleep(Duration::from_millis(300));
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(2);
    let draining = loop {
        let response = get(admin, "/readyz");
        if response.status != 200 || Instant::now() > deadline {
            break response;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(draining.status, 503);
    assert!(draining.text().contains("draining"), "{}", draining.text());
    assert_eq!(get(admin, "/healthz").status, 200, "alive while draining");
    let (response, _) = slow.join().expect("slow request");
    assert_eq!(response.status, 200, "the request in flight finished");
}

#[test]
fn admin_endpoints_are_not_on_the_public_port() {
    let dir = TempDir::new("admin-public");
    let config = config(&dir);
    let (server, admin) = start(&config);
    for path in ["/metrics", "/healthz", "/readyz", "/status"] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 404, "{path} on the public port");
        assert!(!response.text().contains("flexilib_"), "{path}");
        assert_eq!(get(admin, path).status, 200, "{path} on the admin port");
    }
}

#[test]
fn admin_address_equal_to_the_public_listener_is_refused() {
    let dir = TempDir::new("admin-clash");
    let config = config(&dir);
    let port = closed_port().to_string();
    let (status, stderr) = ServerBuilder::new(&config)
        .env("PORT", &port)
        .env("ADMIN_ADDRESS", &format!("127.0.0.1:{port}"))
        .run_to_exit_within(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        stderr.contains("ADMIN_ADDRESS must not be a public listener's address"),
        "{stderr}"
    );
    let (status, stderr) = ServerBuilder::new(&config)
        .env("PORT", &port)
        .env("ADMIN_ADDRESS", &format!("0.0.0.0:{port}"))
        .run_to_exit_within(Duration::from_secs(10));
    assert!(
        !status.success(),
        "the wildcard takes the same port: {stderr}"
    );
}

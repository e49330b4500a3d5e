//! Host validation (RFC 9112 §3.2): duplicates, missing and malformed
//! values are 400; an absolute-form target's authority is the host; header
//! rules compare `Host` case-insensitively.

mod common;

#[path = "common/upstream.rs"]
mod upstream;

use common::{c_example, rust_example, Client, ServerBuilder, TempDir};
use upstream::Upstream;

/// `Host: iam /` → the C example (its body starts `hello from C`), `/api` →
/// an upstream, `/` → the Rust example.
fn server(up: &Upstream) -> (TempDir, common::Server) {
    let dir = TempDir::new("host");
    c_example(&dir);
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/api = http://{}\nHost: iam / = libsample_c.so\n/ = {}\n",
            up.addr,
            rust_example().display()
        ),
    );
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

fn send(server: &common::Server, raw: &str) -> common::Response {
    let mut client = Client::connect(server.addr);
    client.send_raw(raw.as_bytes());
    client.read_response(false).expect("a response")
}

#[test]
fn duplicate_missing_and_malformed_hosts_are_400() {
    let up = Upstream::start("h");
    let (_dir, server) = server(&up);
    for raw in [
        // Two Host headers, equal or not, to a library and to an upstream.
        "GET /x HTTP/1.1\r\nHost: iamhere\r\nHost: other\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        // HTTP/1.1 without Host, also with an absolute-form target.
        "GET /x HTTP/1.1\r\n\r\n",
        "GET /api/x HTTP/1.1\r\n\r\n",
        "GET http://iamhere/x HTTP/1.1\r\n\r\n",
        // Not `host[:port]`.
        "GET /x HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET /api/x HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: \r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: user@a\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a:port\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a\\b\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a..b\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: [not-ipv6]\r\n\r\n",
        // A bad Host is bad with an absolute-form target too, and so is
        // userinfo in the target.
        "GET http://iamhere/x HTTP/1.1\r\nHost: a/b\r\n\r\n",
        "GET http://u@iamhere/x HTTP/1.1\r\nHost: a\r\n\r\n",
    ] {
        let response = send(&server, raw);
        assert_eq!(response.status, 400, "for {raw:?}: {}", response.text());
    }
    assert_eq!(up.count(), 0, "nothing reached the upstream");
    // Valid hosts.
    for raw in [
        "GET /x HTTP/1.0\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: a_b.example:8069\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: [::1]:8069\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: example.org.\r\n\r\n",
    ] {
        let response = send(&server, raw);
        assert_eq!(response.status, 200, "for {raw:?}: {}", response.text());
    }
}

#[test]
fn the_authority_of_an_absolute_form_target_is_the_host() {
    let up = Upstream::start("h");
    let (_dir, server) = server(&up);
    // The target's authority routes, not the Host header, and the library
    // sees the origin-form target.
    let response = send(
        &server,
        "GET http://iamhere/x?q=1 HTTP/1.1\r\nHost: other\r\n\r\n",
    );
    assert!(
        response.text().starts_with("hello from C: GET /x?q=1 "),
        "{}",
        response.text()
    );
    let response = send(
        &server,
        "GET http://other/x HTTP/1.1\r\nHost: iamhere\r\n\r\n",
    );
    assert_eq!(response.text(), " 1");
    // An upstream gets the authority as Host and an origin-form target.
    let response = send(
        &server,
        "GET http://front.example:8080/api/x HTTP/1.1\r\nHost: other\r\n\r\n",
    );
    let text = response.text();
    assert!(text.starts_with("GET /api/x\n"), "{text}");
    assert!(text.contains("host: front.example:8080\n"), "{text}");
    assert!(
        text.contains("x-forwarded-host: front.example:8080\n"),
        "{text}"
    );
    assert!(!text.contains("other"), "{text}");
}

#[test]
fn header_rules_compare_the_host_case_insensitively() {
    let up = Upstream::start("h");
    let (_dir, server) = server(&up);
    for host in ["iamhere", "IAMHERE", "IamHere:8069"] {
        let response = server.get("/x", &[("Host", host)]);
        assert!(
            response.text().starts_with("hello from C"),
            "Host: {host}: {}",
            response.text()
        );
    }
    assert_eq!(server.get("/x", &[("Host", "youare")]).text(), " 1");
}

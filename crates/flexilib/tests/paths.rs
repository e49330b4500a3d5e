//! Request paths: encoded dots and slashes cannot take a path out of the
//! prefix it matched; routes match the normalised path; what libraries and
//! upstreams receive.

mod common;

#[path = "common/upstream.rs"]
mod upstream;

use common::{c_example, rust_example, Client, ServerBuilder, TempDir};
use upstream::Upstream;

/// `/pub` → an upstream under `/public`, `/raw` → the same upstream with the
/// path kept, `/admin` and `/a/b` → the C example (its body names the
/// target it got), `/` → the Rust example.
fn server(up: &Upstream) -> (TempDir, common::Server) {
    let dir = TempDir::new("paths");
    c_example(&dir);
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/pub = http://{up}/public\n/raw = http://{up}\n/admin = libsample_c.so\n/a/b = libsample_c.so\n/ = {}\n",
            rust_example().display(),
            up = up.addr,
        ),
    );
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

/// Sends `GET target` as is (no client-side normalisation).
fn get(server: &common::Server, target: &str) -> common::Response {
    let mut client = Client::connect(server.addr);
    client.send_raw(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
    client.read_response(false).expect("a response")
}

#[test]
fn encoded_dots_and_slashes_cannot_leave_the_prefix() {
    let up = Upstream::start("p");
    let (_dir, server) = server(&up);
    for target in [
        // An upstream that normalises would serve /admin/ for these.
        "/pub/..%2fadmin/",
        "/pub/%2e%2e%2fadmin/",
        "/pub%2f..%2fadmin/",
        "/pub/..%2Fadmin/",
        "/pub/%2E%2E/admin/",
        "/pub/..%5cadmin/",
        "/pub/..\\admin/",
        "/pub/a\\..\\..\\admin/",
        "/pub/..;/admin/",
        "/pub/.;x/admin/",
        // The prefix `/pub` ends inside the segment `pub..`: stripping it
        // would leave `/public/../admin`.
        "/pub../admin/",
        "/pub%2e%2e/admin/",
        // Overlong UTF-8 for `.`, and other invalid UTF-8.
        "/pub/%c0%ae%c0%ae/admin/",
        "/pub/%e9",
        "/pub/%ed%a0%80",
        // NUL and other control characters.
        "/pub/a%00b",
        "/pub/a%01b",
        "/pub/a%7fb",
        "/pub/a%c2%85b",
        // Broken percent-encoding.
        "/pub/%zz",
        "/pub/100%",
        "/pub/%4",
        "/raw/..%2f..%2fetc/passwd",
    ] {
        let response = get(&server, target);
        assert_eq!(response.status, 400, "{target}: {}", response.text());
    }
    assert_eq!(up.count(), 0, "nothing reached the upstream");
    // Library routes are refused alike.
    for target in ["/admin/..%2f", "/a/b/%2e%2e%5c", "/admin/%00"] {
        assert_eq!(get(&server, target).status, 400, "{target}");
    }
}

#[test]
fn routes_match_the_normalised_path() {
    let up = Upstream::start("p");
    let (_dir, server) = server(&up);
    // Percent-encoded characters are decoded and `//` merged before
    // matching; the library still gets the target as sent.
    for target in [
        "/%61dmin/x",
        "/%61%64%6D%69%6E/x",
        "//admin/x",
        "/admin//x",
        "/a%2fb/x",
        "//a///b",
    ] {
        let response = get(&server, target);
        assert_eq!(
            response.text(),
            format!("hello from C: GET {target} headers=1"),
            "{target}"
        );
    }
    // Ordinary paths are untouched: dots inside names, `;`, queries.
    for target in ["/admin/a.b/..c/.d", "/admin/x;y=1", "/admin/x?a=/../b"] {
        let response = get(&server, target);
        assert_eq!(
            response.text(),
            format!("hello from C: GET {target} headers=1"),
            "{target}"
        );
    }
}

#[test]
fn upstreams_get_the_rest_of_the_path_as_sent() {
    let up = Upstream::start("p");
    let (_dir, server) = server(&up);
    for (target, forwarded) in [
        ("/pub/x", "/public/x"),
        // The prefix matched `/%70ub` and `//pub`; the rest is passed as
        // sent: an encoded slash stays encoded.
        ("/%70ub/a%2Fb%20c?q=%2e", "/public/a%2Fb%20c?q=%2e"),
        ("//pub/x", "/public/x"),
        ("/pub/x;y=1", "/public/x;y=1"),
        ("/pub.x", "/public/.x"),
        // Without a base path the whole path goes as sent.
        ("/raw//a%2Fb/%7e", "/raw//a%2Fb/%7e"),
        ("/r%61w/x", "/r%61w/x"),
    ] {
        let response = get(&server, target);
        assert_eq!(response.status, 200, "{target}");
        let text = response.text();
        assert!(
            text.starts_with(&format!("GET {forwarded}\n")),
            "{target} → {text}"
        );
    }
}

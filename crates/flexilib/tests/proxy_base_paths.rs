//! Upstream base paths as nginx's `proxy_pass` with a URI has them: any
//! path after the authority, even `/`, replaces the matched prefix; a
//! prefix that does not end in `/` is warned about at load.

mod common;

#[path = "common/upstream.rs"]
mod upstream;

use std::time::Duration;

use common::{ServerBuilder, TempDir};
use upstream::Upstream;

#[test]
fn a_trailing_slash_replaces_the_prefix() {
    let up = Upstream::start("a");
    let dir = TempDir::new("base-paths");
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/static/ = http://{a}/\n/v1/ = http://{a}/api/v1/\n/loose = http://{a}/x\n/plain = http://{a}\n",
            a = up.addr
        ),
    );
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    for (path, sent) in [
        ("/static/app.js?v=2", "GET /app.js?v=2\n"),
        ("/static/", "GET /\n"),
        ("/v1/users/7", "GET /api/v1/users/7\n"),
        ("/plain/kept", "GET /plain/kept\n"),
    ] {
        let response = client.request("GET", path, &[], b"");
        assert_eq!(response.status, 200, "{path}");
        assert!(
            response.text().starts_with(sent),
            "{path}: {}",
            response.text()
        );
    }
    // `/static/` does not match `/staticky/x`.
    assert_eq!(client.request("GET", "/staticky/x", &[], b"").status, 404);
    // A replaced prefix without a trailing `/` is warned about, naming the line.
    let warning = server.stderr.wait_for(Duration::from_secs(5), |l| {
        l.contains("proxy.ini:3: the prefix `/loose`") && l.contains("does not end in `/`")
    });
    assert!(warning.is_some(), "{:#?}", server.stderr.snapshot());
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("proxy.ini:1:") || l.contains("proxy.ini:4:")),
        "no warning for prefixes ending in `/` or kept prefixes"
    );
}

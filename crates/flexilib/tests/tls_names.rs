//! TLS certificates chosen by name (SNI, `TLS_CERT_DIR`), checked with
//! `openssl s_client` (SNI and ALPN) and curl, their reload, and
//! `HTTPS_REDIRECT`.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{self_signed, standard_config, ServerBuilder, TempDir};

/// What `openssl s_client` sees asking for `name` (and offering h2): the
/// certificate's subject line and the ALPN line.
fn s_client(port: u16, name: Option<&str>) -> String {
    let mut command = Command::new("openssl");
    command
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-alpn", "h2,http/1.1"]);
    match name {
        Some(name) => command.args(["-servername", name]),
        None => command.arg("-noservername"),
    };
    let output = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl s_client");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| l.starts_with("subject=") || l.starts_with("ALPN protocol"))
        .collect::<Vec<_>>()
        .join("|")
}

#[test]
fn certificates_are_chosen_by_name_and_reloaded() {
    let dir = TempDir::new("tls-sni");
    let (cert, key) = self_signed(dir.path(), "default", &["localhost"]);
    let names = dir.path().join("certs");
    std::fs::create_dir(&names).expect("dir");
    self_signed(&names, "a", &["a.example"]);
    self_signed(&names, "wild", &["*.b.example"]);
    // certbot's layout.
    let live = names.join("c.example");
    std::fs::create_dir(&live).expect("dir");
    let (c_cert, c_key) = self_signed(&live, "c", &["c.example"]);
    std::fs::rename(&c_cert, live.join("fullchain.pem")).expect("rename");
    std::fs::rename(&c_key, live.join("privkey.pem")).expect("rename");

    let (_config_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .env("TLS_CERT_DIR", &names.to_string_lossy())
        .start();
    let port = server.tls_port();
    for (name, subject) in [
        (Some("a.example"), "CN = a"),
        (Some("x.b.example"), "CN = wild"),
        (Some("c.example"), "CN = c"),
        (Some("unknown.example"), "CN = default"),
        (None, "CN = default"),
    ] {
        let seen = s_client(port, name);
        assert!(
            seen.contains(&format!("subject={subject}")),
            "{name:?}: {seen}"
        );
        assert!(seen.contains("ALPN protocol: h2"), "{name:?}: {seen}");
    }
    // A client checking the name gets through (curl trusts only that one).
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--resolve"])
        .arg(format!("a.example:{port}:127.0.0.1"))
        .arg("--cacert")
        .arg(names.join("a.pem"))
        .arg(format!("https://a.example:{port}/c/by-name"))
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("hello from C: GET /c/by-name"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A certificate added to the directory is served within seconds.
    self_signed(&names, "d", &["d.example"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s_client(port, Some("d.example")).contains("subject=CN = d") {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn plain_requests_are_redirected_to_https() {
    let dir = TempDir::new("tls-redirect");
    let (cert, key) = self_signed(dir.path(), "localhost", &["localhost"]);
    let (_config_dir, config) = standard_config("");
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .env("HTTPS_REDIRECT", "on")
        .start();
    let port = server.tls_port();
    let response = server.get("/c/path?x=1", &[("Host", "localhost:8080")]);
    assert_eq!(response.status, 308, "{}", response.text());
    assert_eq!(
        response.header("location"),
        Some(format!("https://localhost:{port}/c/path?x=1").as_str())
    );
    // A hostile Host cannot steer the redirect elsewhere: a Host with a
    // path, credentials or a second host is refused before it is used.
    for host in [
        "evil.example/x",
        "user@evil.example",
        "a b",
        "evil.example\\",
    ] {
        let response = server.get("/c/path", &[("Host", host)]);
        assert_eq!(response.status, 400, "Host {host:?}: {}", response.text());
        assert_eq!(response.header("location"), None, "Host {host:?}");
    }
    // Followed, it is served over TLS.
    let output = Command::new("curl")
        .args(["-sS", "-L", "--max-time", "5", "--cacert"])
        .arg(&cert)
        .arg(format!(
            "http://localhost:{}/c/followed",
            server.addr.port()
        ))
        .output()
        .expect("curl");
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("hello from C: GET /c/followed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_redirect_without_tls_is_refused_at_start() {
    let (_config_dir, config) = standard_config("");
    let (status, stderr) = ServerBuilder::new(&config)
        .env("HTTPS_REDIRECT", "on")
        .env("FLEXILIB_NO_SUPERVISOR", "1")
        .run_to_exit();
    assert!(!status.success());
    assert!(
        stderr.contains("HTTPS_REDIRECT=on needs TLS_PORT"),
        "{stderr}"
    );
}

/// Another local user who can write into `TLS_CERT_DIR` cannot serve a
/// certificate from it: a pair owned by another user (not root, not the
/// server's) stops the server at start, naming the file. Needs root (to
/// give the file away); skipped, saying so, otherwise.
#[test]
fn a_certificate_another_user_owns_is_refused() {
    let dir = TempDir::new("tls-owner");
    let (cert, key) = self_signed(dir.path(), "default", &["localhost"]);
    let names = dir.path().join("certs");
    std::fs::create_dir(&names).expect("dir");
    let (planted, _) = self_signed(&names, "planted", &["bank.example"]);
    let chown = Command::new("chown")
        .arg("65534")
        .arg(&planted)
        .status()
        .expect("chown");
    if !chown.success() {
        eprintln!("skipped: giving a file to another user needs root");
        return;
    }
    let (_config_dir, config) = standard_config("");
    let (status, stderr) = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("TLS_CERT", &cert.to_string_lossy())
        .env("TLS_KEY", &key.to_string_lossy())
        .env("TLS_CERT_DIR", &names.to_string_lossy())
        .env("FLEXILIB_NO_SUPERVISOR", "1")
        // A server that served the planted pair would not exit: fail then.
        .run_to_exit_within(Duration::from_secs(10));
    assert!(!status.success());
    assert!(
        stderr.contains("planted.pem") && stderr.contains("owned by uid 65534"),
        "{stderr}"
    );
}

//! ACME (`ACME_DOMAINS`) end to end against pebble, Let's Encrypt's test
//! CA (Debian's `pebble` package), validating for real: pebble resolves
//! the names through `pebble-challtestsrv`'s mock DNS (every name is
//! 127.0.0.1) and fetches the HTTP-01 token from the server's plain port.
//! A certificate issued by pebble's CA is served and an https request
//! trusting only that CA succeeds; a restart serves the stored certificate
//! without a new order; a short-lived certificate is renewed and swapped
//! in; and an unreachable CA is logged while plain HTTP keeps serving.
//! Skipped (saying so) where pebble is not installed.
#![cfg(feature = "acme")]

mod common;

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{standard_config, Lines, Server, ServerBuilder, TempDir};

const NAMES: &str = "acme.flexilib.test,www.flexilib.test";

fn pebble_installed() -> bool {
    let found = ["pebble", "pebble-challtestsrv"].iter().all(|tool| {
        Command::new(tool)
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !found {
        eprintln!("skipped: pebble is not installed (apt-get install -y pebble)");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

fn run(command: &mut Command) -> String {
    let output = command.output().expect("run");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A CA and a certificate it signed for 127.0.0.1: pebble's own HTTPS
/// (the Debian package ships no test certificate).
fn pebble_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (ca, ca_key) = (dir.join("test-ca.pem"), dir.join("test-ca.key"));
    let (cert, key) = (dir.join("pebble.pem"), dir.join("pebble.key"));
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-days",
            "2",
            "-subj",
            "/CN=flexilib test CA",
        ])
        .args(ec)
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new("openssl")
        .args(["req", "-x509", "-days", "2", "-subj", "/CN=pebble"])
        .args(ec)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .args([
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    (ca, cert, key)
}

/// pebble and its mock DNS, stopped on drop.
struct Pebble {
    children: Vec<Child>,
    /// Its log (stdout and stderr).
    log: [Lines; 2],
    acme_port: u16,
    management_port: u16,
    /// Trusted for pebble's own HTTPS.
    test_ca: PathBuf,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Pebble {
    /// Starts pebble validating HTTP-01 on `http_port`, issuing
    /// certificates valid for `validity` seconds (its default, years, if None).
    fn start(dir: &Path, http_port: u16, validity: Option<u64>) -> Self {
        let (test_ca, cert, key) = pebble_tls(dir);
        let (dns_port, acme_port, management_port) = (free_port(), free_port(), free_port());
        let dns = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{}", free_port())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv");
        // It answers over TCP too: up once that port is.
        wait_for_port(dns_port);
        let mut config = serde_json::json!({
            "pebble": {
                "listenAddress": format!("127.0.0.1:{acme_port}"),
                "managementListenAddress": format!("127.0.0.1:{management_port}"),
                "certificate": cert,
                "privateKey": key,
                "httpPort": http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": false,
            }
        });
        if let Some(seconds) = validity {
            config["pebble"]["certificateValidityPeriod"] = seconds.into();
        }
        let config_path = dir.join("pebble-config.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble config");
        let mut pebble = Command::new("pebble");
        pebble
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = pebble.spawn().expect("pebble");
        let stdout = Lines::capture(child.stdout.take().expect("stdout"));
        let stderr = Lines::capture(child.stderr.take().expect("stderr"));
        let pebble = Self {
            children: vec![child, dns],
            log: [stdout.clone(), stderr.clone()],
            acme_port,
            management_port,
            test_ca,
        };
        let ready = |l: &str| l.contains("Listening on") || l.contains("ACME directory available");
        let started = stdout
            .wait_for(Duration::from_secs(15), ready)
            .or_else(|| stderr.wait_for(Duration::from_millis(10), ready));
        assert!(
            started.is_some(),
            "pebble did not start:\n{}\n{}",
            stdout.snapshot().join("\n"),
            stderr.snapshot().join("\n")
        );
        wait_for_port(acme_port);
        pebble
    }

    fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// pebble's issuance root (new at each start), written to `dir`.
    fn issuance_root(&self, dir: &Path) -> PathBuf {
        let path = dir.join("pebble-root.pem");
        let pem = run(Command::new("curl")
            .args(["-sS", "--fail", "--max-time", "5", "--cacert"])
            .arg(&self.test_ca)
            .arg(format!(
                "https://127.0.0.1:{}/roots/0",
                self.management_port
            )));
        assert!(pem.contains("BEGIN CERTIFICATE"), "{pem}");
        std::fs::write(&path, pem).expect("write root");
        path
    }

    /// How many orders pebble has taken (its log says so for each).
    fn orders(&self) -> usize {
        self.log
            .iter()
            .flat_map(Lines::snapshot)
            .filter(|line| line.contains("Added order"))
            .count()
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_server(config: &Path, http_port: u16, directory: &str, ca: &Path, state: &Path) -> Server {
    ServerBuilder::new(config)
        .env("PORT", &http_port.to_string())
        .env("TLS_PORT", "0")
        .env("HTTPS_REDIRECT", "on")
        .env("ACME_DOMAINS", NAMES)
        .env("ACME_DIRECTORY", directory)
        .env("ACME_CA", &ca.to_string_lossy())
        .env("ACME_EMAIL", "admin@flexilib.test")
        .env("ACME_STATE_DIR", &state.to_string_lossy())
        .start()
}

/// `curl https://NAME:PORT/PATH` trusting only `root`: (success, body or error).
fn curl(port: u16, name: &str, root: &Path, path: &str) -> (bool, String) {
    let output = Command::new("curl")
        .args(["-sS", "--max-time", "5", "--cacert"])
        .arg(root)
        .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
        .arg(format!("https://{name}:{port}{path}"))
        .output()
        .expect("curl");
    let ok = output.status.success();
    let text = if ok { &output.stdout } else { &output.stderr };
    (ok, String::from_utf8_lossy(text).into_owned())
}

/// SHA-256 fingerprint of a PEM certificate file (its first certificate).
fn fingerprint(pem: &Path) -> String {
    run(Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(pem))
    .trim()
    .to_owned()
}

/// The leaf the server presents for `name`, as PEM (openssl s_client).
fn served(dir: &Path, port: u16, name: &str) -> PathBuf {
    let output = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl s_client");
    let text = String::from_utf8_lossy(&output.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----");
    let end = text.find("-----END CERTIFICATE-----");
    let (Some(begin), Some(end)) = (begin, end) else {
        panic!("no certificate served for {name}:\n{text}");
    };
    let path = dir.join(format!("served-{name}.pem"));
    std::fs::write(
        &path,
        &text[begin..end + "-----END CERTIFICATE-----\n".len()],
    )
    .expect("write");
    path
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_certificate_is_issued_by_pebble_served_and_reused_at_restart() {
    if !pebble_installed() {
        return;
    }
    let dir = TempDir::new("acme");
    let (_config_dir, config) = standard_config("");
    let http_port = free_port();
    let pebble = Pebble::start(dir.path(), http_port, None);
    let state = dir.path().join("state");
    let server = start_server(
        &config,
        http_port,
        &pebble.directory(),
        &pebble.test_ca,
        &state,
    );
    let port = server.tls_port();
    let issued = server
        .stderr
        .wait_for(Duration::from_secs(60), |l| {
            l.contains("ACME certificate issued") || l.contains("ACME certificate not issued")
        })
        .unwrap_or_else(|| panic!("no certificate:\n{}", server.stderr.snapshot().join("\n")));
    assert!(issued.contains("ACME certificate issued"), "{issued}");
    assert!(issued.contains(NAMES), "{issued}");
    assert_eq!(pebble.orders(), 1);

    // Served for both names, chained to pebble's root, over https.
    let root = pebble.issuance_root(dir.path());
    for name in NAMES.split(',') {
        let (ok, body) = curl(port, name, &root, "/c/over-acme");
        assert!(ok, "{name}: {body}");
        assert!(body.starts_with("hello from C: GET /c/over-acme"), "{body}");
    }
    // Not trusted by a client that does not trust pebble's CA.
    assert!(!curl(port, "acme.flexilib.test", &pebble.test_ca, "/").0);
    // The plain port still redirects everything else to https.
    let response = server.get("/c/plain", &[]);
    assert_eq!(response.status, 308);

    // Stored private: the directory 0700, the key and account 0600.
    let stored = state.join("certificate.pem");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&stored), 0o600);
    assert_eq!(mode(&state.join("certificate.key")), 0o600);
    let account = std::fs::read_dir(&state)
        .expect("state dir")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with(".json"))
        .expect("account file");
    assert_eq!(mode(&account), 0o600);
    let first = fingerprint(&stored);
    assert_eq!(
        fingerprint(&served(dir.path(), port, "www.flexilib.test")),
        first
    );

    // A restart serves the stored certificate at once, with no new order.
    drop(server.terminate());
    let server = start_server(
        &config,
        http_port,
        &pebble.directory(),
        &pebble.test_ca,
        &state,
    );
    let port = server.tls_port();
    let loaded = server.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("ACME certificate loaded")
    });
    assert!(loaded.is_some(), "{}", server.stderr.snapshot().join("\n"));
    let (ok, body) = curl(port, "acme.flexilib.test", &root, "/c/again");
    assert!(ok, "{body}");
    assert_eq!(
        fingerprint(&served(dir.path(), port, "acme.flexilib.test")),
        first
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(pebble.orders(), 1, "a new order after the restart");
    assert!(!server
        .stderr
        .snapshot()
        .iter()
        .any(|l| l.contains("ACME order placed")));
}

#[test]
fn a_short_lived_certificate_is_renewed_and_swapped_in() {
    if !pebble_installed() {
        return;
    }
    let dir = TempDir::new("acme-renew");
    let (_config_dir, config) = standard_config("");
    let http_port = free_port();
    // Renewed once two thirds of 30 s have passed.
    let pebble = Pebble::start(dir.path(), http_port, Some(30));
    let state = dir.path().join("state");
    let server = start_server(
        &config,
        http_port,
        &pebble.directory(),
        &pebble.test_ca,
        &state,
    );
    let port = server.tls_port();
    let is_issued = |l: &str| l.contains("ACME certificate issued");
    let first = server.stderr.wait_for(Duration::from_secs(60), is_issued);
    assert!(first.is_some(), "{}", server.stderr.snapshot().join("\n"));
    let first = fingerprint(&served(dir.path(), port, "acme.flexilib.test"));
    // Requests all through the renewal: none fails over the swap.
    let root = pebble.issuance_root(dir.path());
    let stop = Arc::new(AtomicBool::new(false));
    let (served_count, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let load = {
        let (stop, served_count, failures, root) = (
            stop.clone(),
            served_count.clone(),
            failures.clone(),
            root.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let (ok, text) = curl(port, "acme.flexilib.test", &root, "/c/load");
                if ok {
                    served_count.fetch_add(1, Ordering::Relaxed);
                } else {
                    eprintln!("failed during the renewal: {text}");
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let renewed = server
        .stderr
        .wait_for_nth(Duration::from_secs(60), 1, is_issued);
    assert!(renewed.is_some(), "{}", server.stderr.snapshot().join("\n"));
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    load.join().expect("load");
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(served_count.load(Ordering::Relaxed) > 10);
    assert!(server
        .stderr
        .snapshot()
        .iter()
        .any(|l| l.contains("ACME certificate due for renewal")));
    let second = fingerprint(&served(dir.path(), port, "acme.flexilib.test"));
    assert_ne!(first, second, "the renewed certificate is not served");
    assert_eq!(fingerprint(&state.join("certificate.pem")), second);
    let (ok, body) = curl(port, "www.flexilib.test", &root, "/c/renewed");
    assert!(ok, "{body}");
}

#[test]
fn an_unreachable_ca_is_logged_and_plain_http_keeps_serving() {
    let dir = TempDir::new("acme-down");
    let (_config_dir, config) = standard_config("");
    // Nothing listens there.
    let directory = format!("https://127.0.0.1:{}/dir", free_port());
    let server = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("ACME_DOMAINS", "down.flexilib.test")
        .env("ACME_DIRECTORY", &directory)
        .env(
            "ACME_STATE_DIR",
            &dir.path().join("state").to_string_lossy(),
        )
        .start();
    let port = server.tls_port();
    let error = server
        .stderr
        .wait_for(Duration::from_secs(20), |l| {
            l.contains("ACME certificate not issued")
        })
        .unwrap_or_else(|| panic!("no error logged:\n{}", server.stderr.snapshot().join("\n")));
    assert!(error.contains("down.flexilib.test"), "{error}");
    assert!(error.contains(&directory), "{error}");
    assert!(error.contains("cannot connect"), "{error}");
    assert!(error.contains("retry_in_s=30"), "{error}");
    // Plain HTTP serves; the TLS handshake for the name fails cleanly.
    let response = server.get("/c/still-up", &[]);
    assert_eq!(response.status, 200);
    assert!(response.text().starts_with("hello from C"));
    let output = Command::new("curl")
        .args(["-sS", "-k", "--max-time", "5"])
        .args(["--resolve", &format!("down.flexilib.test:{port}:127.0.0.1")])
        .arg(format!("https://down.flexilib.test:{port}/"))
        .output()
        .expect("curl");
    assert!(!output.status.success());
    drop(server.terminate());
}

/// A path under `/.well-known/acme-challenge/` that is no token of an
/// order under way goes to the routes, ACME on or off: a site may serve its
/// own challenge files (certbot's webroot). Needs no pebble.
#[test]
fn challenge_paths_that_are_no_token_of_an_order_go_to_the_routes() {
    let dir = TempDir::new("acme-webroot");
    let challenges = dir.path().join("www/.well-known/acme-challenge");
    std::fs::create_dir_all(&challenges).expect("webroot");
    std::fs::write(challenges.join("certbot-token"), "from the webroot\n").expect("token file");
    let config = dir.path().join("proxy.ini");
    std::fs::write(
        &config,
        format!(
            "/.well-known/ = dir:{}\n",
            dir.path().join("www/.well-known").display()
        ),
    )
    .expect("config");
    let path = "/.well-known/acme-challenge/certbot-token";

    let off = ServerBuilder::new(&config).start();
    let response = off.get(path, &[]);
    assert_eq!(
        (response.status, response.text()),
        (200, "from the webroot\n".into())
    );
    drop(off.terminate());

    // ACME on, its CA unreachable (no order ever validates).
    let on = ServerBuilder::new(&config)
        .env("TLS_PORT", "0")
        .env("ACME_DOMAINS", "webroot.flexilib.test")
        .env(
            "ACME_DIRECTORY",
            &format!("https://127.0.0.1:{}/dir", free_port()),
        )
        .env(
            "ACME_STATE_DIR",
            &dir.path().join("state").to_string_lossy(),
        )
        .start();
    let response = on.get(path, &[]);
    assert_eq!(
        (response.status, response.text()),
        (200, "from the webroot\n".into())
    );
    assert_eq!(on.get("/.well-known/acme-challenge/none", &[]).status, 404);
    drop(on.terminate());
}

//! Config reload, graceful shutdown and crash recovery, end to end.

mod common;

use common::{compile_c, rust_example, workspace, Client, ServerBuilder, TempDir};
use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Waits until `GET path` answers `status`.
fn wait_for_status(addr: std::net::SocketAddr, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if Client::connect(addr).request("GET", path, &[], b"").status == status {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("GET {path} never answered {status}");
}

#[test]
fn config_reload_by_file_edit_and_sighup_under_load() {
    let dir = TempDir::new("cfg");
    let rust = rust_example();
    let base = format!("/stay = {}\n", rust.display());
    let config = dir.write("proxy.ini", &base);
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/stay", &[]).status, 200);
    assert_eq!(server.get("/new", &[]).status, 404);

    // Continuous load on the route that stays.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, failures, addr) = (stop.clone(), failures.clone(), server.addr);
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                while !stop.load(Ordering::Relaxed) {
                    if client.request("GET", "/stay", &[], b"").status != 200 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();

    // Add a route by editing the file (write to a temp file and rename, as editors do).
    let staged = dir.write(
        "proxy.ini.new",
        &format!("/new = {}\n{base}", rust.display()),
    );
    std::fs::rename(&staged, &config).expect("rename config");
    wait_for_status(server.addr, "/new", 200);

    // A broken config is rejected with its line; the old routes keep serving.
    std::fs::write(
        &config,
        format!("{base}/new = {}\n/broken\n", rust.display()),
    )
    .expect("write");
    let rejected = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config rejected"));
    let rejected = rejected.expect("rejection logged");
    assert!(rejected.contains("proxy.ini:3:"), "{rejected}");
    assert_eq!(server.get("/new", &[]).status, 200);

    // Remove the route again, applied by SIGHUP.
    std::fs::write(&config, &base).expect("write");
    server.signal("HUP");
    wait_for_status(server.addr, "/new", 404);
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config reloaded")
            && l.contains("SIGHUP"))
        .is_some());

    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().expect("load thread");
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let dir = TempDir::new("term");
    let config = dir.write("proxy.ini", &format!("/ = {}\n", rust_example().display()));
    let server = ServerBuilder::new(&config).start();
    let slow = common::request_in_background(server.addr, "/slow", &[("x-slow", "2000")]);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let (status, stdout, _) = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "exited before the request finished"
    );
    let (slow, _) = slow.join().expect("client");
    assert_eq!((slow.status, slow.text().as_str()), (200, "i am slow\n\n"));
    let lines = stdout.snapshot();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"GET /slow HTTP/1.1\" 200")),
        "{lines:?}"
    );
}

#[test]
fn a_crashing_library_restarts_the_worker_without_refusing_connections() {
    let dir = TempDir::new("crash");
    compile_c(
        &workspace().join("examples/c-crash/crash.c"),
        &dir.path().join("libcrash.so"),
    );
    let config = dir.write(
        "proxy.ini",
        &format!("/crash = libcrash.so\n/ = {}\n", rust_example().display()),
    );
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/crash", &[]).text(), "alive");

    // Clients on other connections: every request on a fresh connection;
    // a refused connection is a failure, a connection cut by the crash is not.
    let stop = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(Mutex::new(Vec::new()));
    let served = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, refused, served, addr) =
                (stop.clone(), refused.clone(), served.clone(), server.addr);
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match TcpStream::connect(addr) {
                        Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                            refused.lock().unwrap().push(e.to_string())
                        }
                        Err(_) => {}
                        Ok(stream) => {
                            drop(stream);
                            let mut client = Client::connect(addr);
                            client.send_raw(
                                b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                            );
                            if client.read_response(false).is_some_and(|r| r.status == 200) {
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
            })
        })
        .collect();

    for how in ["segv", "abort"] {
        let before = served.load(Ordering::Relaxed);
        let mut victim = server.client();
        victim.send_raw(
            format!("GET /crash HTTP/1.1\r\nHost: x\r\nx-crash: {how}\r\n\r\n").as_bytes(),
        );
        assert!(
            victim.read_response(false).is_none(),
            "the crashing request gets no response"
        );
        let signal = if how == "segv" { "SIGSEGV" } else { "SIGABRT" };
        let logged = server.stderr.wait_for(Duration::from_secs(5), |l| {
            l.contains("worker died") && l.contains(signal)
        });
        assert!(logged.is_some(), "supervisor names {signal}");
        // The replacement serves.
        wait_for_status(server.addr, "/crash", 200);
        let deadline = Instant::now() + Duration::from_secs(5);
        while served.load(Ordering::Relaxed) < before + 20 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(served.load(Ordering::Relaxed) >= before + 20);
        // Past the crash-loop window's first step, so the next crash restarts at once too.
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    let refused = refused.lock().unwrap();
    assert!(refused.is_empty(), "{} refused connections", refused.len());
}

#[test]
fn a_crash_loop_backs_off_exponentially() {
    let dir = TempDir::new("loop");
    compile_c(
        &workspace().join("examples/c-crash/crash.c"),
        &dir.path().join("libcrash.so"),
    );
    let config = dir.write("proxy.ini", "/ = libcrash.so\n");
    let server = ServerBuilder::new(&config).start();
    let mut delays = Vec::new();
    for n in 0..4 {
        // Wait for the worker to be back, then crash it again.
        wait_for_status(server.addr, "/", 200);
        let mut victim = server.client();
        victim.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\nx-crash: abort\r\n\r\n");
        assert!(victim.read_response(false).is_none());
        let line = server
            .stderr
            .wait_for_nth(Duration::from_secs(5), n, |l| l.contains("worker died"))
            .unwrap_or_else(|| panic!("crash {n} not logged"));
        let delay: u64 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("restart_in_ms="))
            .and_then(|v| v.parse().ok())
            .expect("restart_in_ms in the log line");
        delays.push(delay);
    }
    assert_eq!(
        delays,
        vec![0, 100, 200, 400],
        "first restart at once, then doubling"
    );
}

#[test]
fn sigint_stops_and_no_supervisor_runs_a_single_process() {
    let dir = TempDir::new("single");
    let config = dir.write("proxy.ini", &format!("/ = {}\n", rust_example().display()));
    let server = ServerBuilder::new(&config)
        .env("FLEXILIB_NO_SUPERVISOR", "1")
        .start();
    assert_eq!(server.get("/", &[]).status, 200);
    let pid = server.child.id();
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    assert!(
        children.trim().is_empty(),
        "no worker child without the supervisor: {children:?}"
    );
    server.signal("INT");
    let mut server = server;
    let status = common::wait_timeout(&mut server.child, Duration::from_secs(10))
        .expect("exits after SIGINT");
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_shutdown_that_hangs_ends_all_the_same_and_leaves_no_orphan() {
    // A library whose flexilib_deinit never returns.
    let dir = TempDir::new("hang");
    common::compile_c_text(
        &dir,
        "libhang.so",
        "#include <unistd.h>\n#include \"flexilib.h\"\nvoid flexilib_deinit(void) { for (;;) pause(); }\nstatic struct flexilib_response r = { .ptr = \"up\", .len = 2 };\nstruct flexilib_response *handle_request(struct flexilib_request *q) { (void)q; return &r; }\n",
    );
    let config = dir.write("proxy.ini", "/ = libhang.so\n");
    let start = || {
        let server = ServerBuilder::new(&config)
            .env("SHUTDOWN_GRACE_SECONDS", "0.5")
            .start();
        wait_for_status(server.addr, "/", 200);
        server
    };

    // SIGTERM: the worker exits, with an error, 5 s past the grace period.
    let server = start();
    let started = Instant::now();
    let (status, _, stderr) = server.terminate();
    assert_eq!(status.code(), Some(1), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr
        .snapshot()
        .iter()
        .any(|l| l.contains("shutdown did not finish in time; exiting now")));

    // The supervisor killed outright: its worker does not outlive it.
    let mut server = start();
    let worker = server.worker_pid().expect("a worker");
    server.child.kill().expect("SIGKILL the supervisor");
    let _ = server.child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    let alive = || {
        std::fs::read_to_string(format!("/proc/{worker}/stat"))
            .is_ok_and(|stat| !stat.split(") ").nth(1).is_some_and(|s| s.starts_with('Z')))
    };
    while alive() {
        assert!(
            Instant::now() < deadline,
            "worker {worker} outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_while_a_worker_starts_is_never_fatal() {
    let dir = TempDir::new("hupstart");
    let config = dir.write("proxy.ini", &format!("/ = {}\n", rust_example().display()));
    let server = ServerBuilder::new(&config).start();
    let supervisor = server.child.id();
    for round in 0..4 {
        wait_for_status(server.addr, "/", 200);
        let worker = server.worker_pid().expect("a worker");
        // SIGHUPs as fast as the shell's builtin kill sends them, from
        // before the worker dies until well after its replacement started.
        let mut hups = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("while kill -HUP {supervisor}; do :; done"))
            .spawn()
            .expect("start the SIGHUP loop");
        std::thread::sleep(Duration::from_millis(20));
        std::process::Command::new("kill")
            .args(["-KILL", &worker.to_string()])
            .status()
            .expect("kill the worker");
        let replaced = server
            .stderr
            .wait_for_nth(Duration::from_secs(5), round, |l| l.contains("worker died"));
        assert!(
            replaced.is_some(),
            "round {round}: the worker's death was not logged"
        );
        std::thread::sleep(Duration::from_millis(500));
        hups.kill().expect("stop the SIGHUP loop");
        let _ = hups.wait();
    }
    wait_for_status(server.addr, "/", 200);
    let deaths: Vec<String> = server
        .stderr
        .snapshot()
        .into_iter()
        .filter(|l| l.contains("worker died"))
        .collect();
    assert_eq!(deaths.len(), 4, "{deaths:#?}");
    assert!(
        deaths.iter().all(|l| l.contains("SIGKILL")),
        "a SIGHUP killed a starting worker: {deaths:#?}"
    );
    // The HUPs reached running workers as config reloads.
    assert!(server
        .stderr
        .snapshot()
        .iter()
        .any(|l| l.contains("config reloaded") && l.contains("SIGHUP")));
}

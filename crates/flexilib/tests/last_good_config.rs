//! A restarted worker serves the last config that worked, even when the
//! file was broken since: a bad edit followed by a library crash must not
//! take the server down.

mod common;

use common::{compile_c, private_dirs_of, rust_example, workspace, Client, ServerBuilder, TempDir};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn wait_for_status(addr: SocketAddr, path: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let mut client = Client::connect(addr);
        client.send_raw(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        if client
            .read_response(false)
            .is_some_and(|r| r.status == status)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("GET {path} never answered {status}");
}

/// Crashes the worker through the crash library.
fn crash(addr: SocketAddr) {
    let mut victim = Client::connect(addr);
    victim.send_raw(b"GET /crash HTTP/1.1\r\nHost: x\r\nx-crash: segv\r\n\r\n");
    assert!(victim.read_response(false).is_none(), "the worker crashed");
}

#[test]
fn bad_edit_then_crash_then_still_serving() {
    let dir = TempDir::new("lastgood");
    compile_c(
        &workspace().join("examples/c-crash/crash.c"),
        &dir.path().join("libcrash.so"),
    );
    let rust = rust_example();
    let good = format!("/crash = libcrash.so\n/ = {}\n", rust.display());
    let config = dir.write("proxy.ini", &good);
    let server = ServerBuilder::new(&config).start();
    wait_for_status(server.addr, "/crash", 200);

    // A good edit, applied, then a bad one, rejected.
    let edited = format!(
        "/crash = libcrash.so\n/new = {}\n/ = {}\n",
        rust.display(),
        rust.display()
    );
    std::fs::write(&config, &edited).expect("write");
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config reloaded"))
        .is_some());
    std::fs::write(&config, format!("{edited}/broken\n")).expect("write");
    let rejected = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config rejected"));
    assert!(rejected.is_some_and(|l| l.contains("proxy.ini:4:")));

    // The crash: the restarted worker comes back with the last good config.
    crash(server.addr);
    let warning = server.stderr.wait_for(Duration::from_secs(10), |l| {
        l.contains("serving the last good config")
    });
    let warning = warning.unwrap_or_else(|| panic!("{:#?}", server.stderr.snapshot()));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!(
            "{}:4: expected `KEY = LIBRARY_PATH`, found `/broken`",
            config.display()
        )),
        "{warning}"
    );
    wait_for_status(server.addr, "/crash", 200);
    wait_for_status(server.addr, "/new", 200);

    // The real file is still watched: fixing it applies.
    std::fs::write(&config, &good).expect("write");
    wait_for_status(server.addr, "/new", 200); // `/` catches it: same library
    assert!(server
        .stderr
        .wait_for_nth(Duration::from_secs(5), 1, |l| l.contains("config reloaded"))
        .is_some());
    // And a crash now restarts from the file, without the warning.
    crash(server.addr);
    assert!(server
        .stderr
        .wait_for_nth(Duration::from_secs(10), 1, |l| l.contains("worker died"))
        .is_some());
    wait_for_status(server.addr, "/crash", 200);
    let warnings = server
        .stderr
        .snapshot()
        .iter()
        .filter(|l| l.contains("serving the last good config"))
        .count();
    assert_eq!(warnings, 1);

    // The supervisor's private directory goes with it.
    let supervisor = server.child.id();
    assert!(
        !private_dirs_of(supervisor).is_empty(),
        "no private directory"
    );
    let (status, _, _) = server.terminate();
    assert!(status.success());
    assert_eq!(private_dirs_of(supervisor), Vec::<String>::new());
}

//! A config file reached through symlinks that are swapped, as Kubernetes
//! updates a mounted ConfigMap: `proxy.ini` → `..data/proxy.ini`, `..data`
//! → `..2026_12_07_00_00_00.1`, and an update writes a new timestamped
//! directory, points a `..data_tmp` link at it and renames that over
//! `..data`, then removes the old directory.

mod common;

use common::{rust_example, Client, ServerBuilder, TempDir};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Writes `text` as the ConfigMap's `proxy.ini` in a new data directory
/// `name` and swaps `..data` to it the way the kubelet does.
fn publish(dir: &Path, name: &str, text: &str) {
    let data = dir.join(name);
    std::fs::create_dir(&data).expect("data dir");
    std::fs::write(data.join("proxy.ini"), text).expect("write");
    let staged = dir.join("..data_tmp");
    symlink(name, &staged).expect("..data_tmp");
    std::fs::rename(&staged, dir.join("..data")).expect("swap ..data");
}

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
fn a_configmap_update_swapping_the_data_link_is_served_without_failed_requests() {
    let dir = TempDir::new("configmap");
    let rust = rust_example();
    let base = format!("/stay = {}\n", rust.display());
    publish(dir.path(), "..2026_12_07_00_00_00.1", &base);
    let config = dir.path().join("proxy.ini");
    symlink("..data/proxy.ini", &config).expect("proxy.ini link");
    let server = ServerBuilder::new(&config).start();
    assert_eq!(server.get("/stay", &[]).status, 200);
    assert_eq!(server.get("/new", &[]).status, 404);

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

    // An update: the new routes are served, the old directory goes.
    publish(
        dir.path(),
        "..2026_12_07_00_01_00.2",
        &format!("{base}/new = {}\n", rust.display()),
    );
    std::fs::remove_dir_all(dir.path().join("..2026_12_07_00_00_00.1")).expect("old data");
    wait_for_status(server.addr, "/new", 200);

    // A second update, removing the route again.
    publish(dir.path(), "..2026_12_07_00_02_00.3", &base);
    std::fs::remove_dir_all(dir.path().join("..2026_12_07_00_01_00.2")).expect("old data");
    wait_for_status(server.addr, "/new", 404);

    // A broken update is rejected with its file and line; the routes stay.
    publish(
        dir.path(),
        "..2026_12_07_00_03_00.4",
        &format!("{base}/broken\n"),
    );
    let rejected = server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("config rejected"))
        .expect("rejection logged");
    assert!(rejected.contains("proxy.ini:2:"), "{rejected}");

    stop.store(true, Ordering::Relaxed);
    for thread in load {
        thread.join().expect("load thread");
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0, "failed requests");
    assert_eq!(server.get("/stay", &[]).status, 200);
}

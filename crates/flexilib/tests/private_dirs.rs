//! Private directories (library copies, the last good config) of a server
//! killed outright are removed by the next server to start, and only those.

mod common;

use common::{private_dirs_of, rust_example, ServerBuilder, TempDir};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where the server makes its private directories.
fn base() -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    }
}

#[test]
fn a_killed_servers_private_directories_are_removed_at_the_next_start() {
    let dir = TempDir::new("stale");
    let config = dir.write("proxy.ini", &format!("/ = {}\n", rust_example().display()));

    // A server killed outright leaves its supervisor's directory behind.
    let mut killed = ServerBuilder::new(&config).start();
    assert_eq!(killed.get("/", &[]).status, 200);
    let supervisor = killed.child.id();
    let worker = killed.worker_pid().expect("a worker");
    assert!(!private_dirs_of(supervisor).is_empty());
    killed.child.kill().expect("SIGKILL");
    let _ = killed.child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{worker}")).exists() {
        assert!(
            Instant::now() < deadline,
            "the worker outlived its supervisor"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!private_dirs_of(supervisor).is_empty(), "left behind");

    // One of a process that is gone, with a file in it, and one of a live
    // process (this test), which must stay.
    let gone = {
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        pid
    };
    let dead_dir = base().join(format!("flexilib-{gone}-1"));
    std::fs::create_dir(&dead_dir).expect("create");
    std::fs::write(dead_dir.join("1-lib.so"), b"copy").expect("write");
    let live_dir = base().join(format!("flexilib-{}-1", std::process::id()));
    std::fs::create_dir(&live_dir).expect("create");

    let next = ServerBuilder::new(&config).start();
    assert_eq!(next.get("/", &[]).status, 200);
    let removed_supervisor = private_dirs_of(supervisor);
    let removed_dead = dead_dir.exists();
    let kept_live = live_dir.exists();
    let _ = std::fs::remove_dir_all(&live_dir);
    let _ = std::fs::remove_dir_all(&dead_dir);
    assert_eq!(removed_supervisor, Vec::<String>::new());
    assert!(!removed_dead, "{} kept", dead_dir.display());
    assert!(kept_live, "{} removed", live_dir.display());
    assert!(next
        .stderr
        .snapshot()
        .iter()
        .any(|l| l.contains("removed private directories of dead processes")));
}

//! Library hot reload under load: every way a file gets replaced, slow
//! requests finishing on the old generation, broken replacements.

mod common;

use common::{compile_c, Client, Server, ServerBuilder, TempDir};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A library answering `v<VERSION>`; `x-slow: MS` sleeps first.
const VERSIONED_C: &str = r#"
#include <string.h>
#include <unistd.h>
#include "flexilib.h"

#define STR2(x) #x
#define STR(x) STR2(x)
static struct flexilib_response reply = { .ptr = "v" STR(VERSION), .len = sizeof("v" STR(VERSION)) - 1 };

struct flexilib_response *handle_request(struct flexilib_request *req) {
    for (size_t i = 0; i < req->headers_len; i++) {
        struct flexilib_header *h = &req->headers[i];
        if (h->name_len == 6 && memcmp(h->name_ptr, "x-slow", 6) == 0) usleep(500 * 1000);
    }
    return &reply;
}
"#;

struct Lab {
    dir: TempDir,
    source: PathBuf,
    library: PathBuf,
}

impl Lab {
    fn new() -> Self {
        let dir = TempDir::new("reload");
        let source = dir.write("versioned.c", VERSIONED_C);
        let library = dir.path().join("libversioned.so");
        let lab = Self {
            dir,
            source,
            library,
        };
        lab.build(1, &lab.library);
        lab.dir.write("proxy.ini", "/ = libversioned.so\n");
        lab
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("proxy.ini")
    }

    /// Compiles version `version` to `out`.
    fn build(&self, version: u64, out: &Path) {
        let status =
            std::process::Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
                .args(["-shared", "-fPIC", "-O1", "-I"])
                .arg(common::workspace().join("include"))
                .arg(format!("-DVERSION={version}"))
                .arg("-o")
                .arg(out)
                .arg(&self.source)
                .status()
                .expect("run cc");
        assert!(status.success());
    }

    /// Installs `version` by `method`.
    fn install(&self, version: u64, method: Method) {
        match method {
            Method::CopyOver => {
                let staged = self.dir.path().join("staged.so");
                self.build(version, &staged);
                // std::fs::copy truncates and rewrites the same inode.
                std::fs::copy(&staged, &self.library).expect("cp over");
            }
            Method::Rename => {
                let staged = self.dir.path().join(".libversioned.so.tmp");
                self.build(version, &staged);
                std::fs::rename(&staged, &self.library).expect("rename");
            }
            Method::Rebuild => self.build(version, &self.library),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Method {
    CopyOver,
    Rename,
    Rebuild,
}

/// Keep-alive clients hammering `/` and recording what they see.
struct Load {
    stop: Arc<AtomicBool>,
    failures: Arc<Mutex<Vec<String>>>,
    latest: Arc<AtomicU64>,
    served: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(server: &Server, clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let latest = Arc::new(AtomicU64::new(0));
        let served = Arc::new(AtomicU64::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (stop, failures, latest, served) = (
                    stop.clone(),
                    failures.clone(),
                    latest.clone(),
                    served.clone(),
                );
                let addr = server.addr;
                std::thread::spawn(move || {
                    let mut client = Client::connect(addr);
                    let mut seen = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let response = client.request("GET", "/", &[], b"");
                        let version: u64 =
                            response.text().trim_start_matches('v').parse().unwrap_or(0);
                        if response.status != 200 || version == 0 {
                            failures.lock().unwrap().push(format!(
                                "{} {:?}",
                                response.status,
                                response.text()
                            ));
                        } else if version < seen {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("went back from v{seen} to v{version}"));
                        }
                        seen = seen.max(version);
                        latest.fetch_max(version, Ordering::Relaxed);
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        Self {
            stop,
            failures,
            latest,
            served,
            threads,
        }
    }

    fn finish(self) -> (Vec<String>, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("client thread");
        }
        let failures = self.failures.lock().unwrap().clone();
        (failures, self.served.load(Ordering::Relaxed))
    }
}

/// Waits until a fresh request answers `v<version>`; returns how long it took.
fn settle(server: &Server, version: u64) -> Duration {
    let started = Instant::now();
    let want = format!("v{version}");
    while started.elapsed() < Duration::from_secs(5) {
        if server.get("/", &[]).text() == want {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("v{version} not served within 5 s");
}

#[test]
fn replacing_a_library_under_load_fails_no_request() {
    let lab = Lab::new();
    let server = ServerBuilder::new(&lab.config()).start();
    assert_eq!(server.get("/", &[]).text(), "v1");
    let load = Load::start(&server, 8);
    let mut version = 1;
    for method in [Method::CopyOver, Method::Rename, Method::Rebuild] {
        for _ in 0..20 {
            version += 1;
            lab.install(version, method);
            settle(&server, version);
            // Every response after the change settled is the new version.
            let mut probe = server.client();
            for _ in 0..3 {
                assert_eq!(
                    probe.request("GET", "/", &[], b"").text(),
                    format!("v{version}"),
                    "{method:?}"
                );
            }
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(load.latest.load(Ordering::Relaxed), version);
    let (failures, served) = load.finish();
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(served > 1000, "only {served} requests under load");
}

#[test]
fn a_slow_request_finishes_on_the_old_generation() {
    let lab = Lab::new();
    // Logs when a library call has run for a while (the reserve I/O thread
    // starts accepting): the moment the slow request is inside the library.
    let server = ServerBuilder::new(&lab.config())
        .env("RUST_LOG", "info,flexilib::cores=debug")
        .start();
    assert_eq!(server.get("/", &[]).text(), "v1");
    let slow = common::request_in_background(server.addr, "/", &[("x-slow", "1")]);
    server
        .stderr
        .wait_for(Duration::from_secs(10), |l| {
            l.contains("reserve I/O thread accepting")
        })
        .expect("the slow request reached the library");
    lab.install(2, Method::Rename);
    settle(&server, 2);
    assert_eq!(slow.join().expect("slow client").0.text(), "v1");
    // The new generation was logged with its number.
    let line = server.stderr.wait_for(Duration::from_secs(2), |l| {
        l.contains("library generation loaded") && l.contains("generation=2")
    });
    assert!(line.is_some_and(|l| l.contains("libversioned.so") && l.contains("load_ms=")));
}

#[test]
fn a_broken_replacement_keeps_the_old_generation_serving() {
    let lab = Lab::new();
    let server = ServerBuilder::new(&lab.config()).start();
    assert_eq!(server.get("/", &[]).text(), "v1");
    let load = Load::start(&server, 4);

    // Not ELF, written in place.
    std::fs::write(&lab.library, b"this is not a shared object").expect("write garbage");
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("reload failed"))
        .is_some());
    // A real library without handle_request, renamed into place.
    let staged = lab.dir.path().join("nohandler.so");
    let nohandler = lab
        .dir
        .write("nohandler.c", "int unrelated(void) { return 0; }\n");
    compile_c(&nohandler, &staged);
    std::fs::rename(&staged, &lab.library).expect("rename");
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("reload failed")
            && l.contains("handle_request"))
        .is_some());
    // A library cut short (as a reader could see it mid-write): mapping it
    // would crash with SIGBUS on first touch; it must be refused instead.
    let full = lab.dir.path().join("full.so");
    lab.build(9, &full);
    let bytes = std::fs::read(&full).expect("read");
    let cut = lab.dir.path().join("cut.so");
    std::fs::write(&cut, &bytes[..bytes.len() * 3 / 5]).expect("write");
    std::fs::rename(&cut, &lab.library).expect("rename");
    assert!(server
        .stderr
        .wait_for(Duration::from_secs(5), |l| l.contains("reload failed")
            && l.contains("incomplete"))
        .is_some());
    for _ in 0..20 {
        assert_eq!(server.get("/", &[]).text(), "v1");
    }
    // A fixed file loads.
    lab.install(3, Method::Rename);
    settle(&server, 3);
    let (failures, _) = load.finish();
    assert!(failures.is_empty(), "{failures:?}");
}

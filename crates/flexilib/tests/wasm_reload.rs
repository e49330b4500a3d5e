//! WebAssembly routes reload and cache: replacing the `.wasm` (renamed
//! over it, as build tools do) serves the new component without a
//! restart; a file that does not compile keeps the old one serving and the
//! log says why; a compiled component is cached on disk, so a restart does
//! not compile it again; a route whose options or component are wrong
//! answers 502 and the log says why.

mod common;
#[allow(dead_code)]
#[path = "common/wasm.rs"]
mod wasm;
#[allow(dead_code)]
#[path = "common/zig.rs"]
mod zig;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Server, ServerBuilder, TempDir};

/// Waits until `GET path` answers `expected`; false after `timeout`.
fn wait_for_answer(server: &Server, path: &str, expected: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if server.get(path, &[]).text() == expected {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Copies `from` beside `to` and renames it over `to`.
fn rename_over(from: &Path, to: &Path) {
    let staged = to.with_extension("wasm.new");
    std::fs::copy(from, &staged).expect("copy");
    std::fs::rename(&staged, to).expect("rename");
}

#[test]
fn a_renamed_component_is_served_and_a_broken_one_is_not() {
    let v1 = wasm::guest("hello", &[]);
    let v2 = wasm::guest("hello-v2", &["-DGREETING=\"hello from version 2\""]);
    let dir = TempDir::new("wasm-reload");
    let served = dir.path().join("app.wasm");
    std::fs::copy(&v1, &served).expect("copy v1");
    let config = dir.write("proxy.ini", "/ = wasm:app.wasm\n");
    let server = wasm::server(&config).start();
    assert_eq!(
        server.get("/x", &[]).text(),
        "hello from a C component: GET /x\n"
    );

    rename_over(&v2, &served);
    assert!(
        wait_for_answer(
            &server,
            "/x",
            "hello from version 2: GET /x\n",
            Duration::from_secs(20)
        ),
        "the new component is not served"
    );

    // Not a component: the log says why, version 2 keeps serving.
    let broken = dir.write("broken.wasm", "\0asm this is not a component");
    rename_over(&broken, &served);
    let logged = server.stderr.wait_for(Duration::from_secs(20), |l| {
        l.contains("rebuild failed") && l.contains("app.wasm")
    });
    assert!(
        logged.is_some(),
        "the failed rebuild is not logged:\n{}",
        server.stderr.snapshot().join("\n")
    );
    for _ in 0..5 {
        assert_eq!(
            server.get("/x", &[]).text(),
            "hello from version 2: GET /x\n"
        );
    }
    // Fixed again: served.
    rename_over(&v1, &served);
    assert!(wait_for_answer(
        &server,
        "/x",
        "hello from a C component: GET /x\n",
        Duration::from_secs(20)
    ));
}

#[test]
fn compiled_components_are_cached_on_disk() {
    let dir = TempDir::new("wasm-cache");
    let component = dir.path().join("app.wasm");
    std::fs::copy(wasm::guest("hello", &[]), &component).expect("copy");
    let config = dir.write("proxy.ini", "/ = wasm:app.wasm\n");
    let cache = dir.path().join("cache-home");
    let start = || {
        ServerBuilder::new(&config)
            .env("XDG_CACHE_HOME", &cache.display().to_string())
            .start()
    };
    let first = start();
    assert!(first
        .stderr
        .wait_for(Duration::from_secs(10), |l| l.contains("component ready")
            && l.contains("compiled in"))
        .is_some());
    assert_eq!(first.get("/", &[]).status, 200);
    drop(first);
    let artifacts: Vec<_> = std::fs::read_dir(cache.join("flexilib/wasm"))
        .expect("the cache directory")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(artifacts.len(), 1, "{artifacts:?}");
    assert!(artifacts[0].ends_with(".cwasm"), "{artifacts:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cache.join("flexilib/wasm"))
            .expect("metadata")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o700);

    let second = start();
    assert!(second
        .stderr
        .wait_for(Duration::from_secs(10), |l| l
            .contains("from the compile cache"))
        .is_some());
    assert_eq!(
        second.get("/", &[]).text(),
        "hello from a C component: GET /\n"
    );
}

#[test]
fn a_route_that_cannot_be_built_answers_502_and_the_log_says_why() {
    let dir = TempDir::new("wasm-bad-routes");
    std::fs::copy(wasm::guest("hello", &[]), dir.path().join("app.wasm")).expect("copy");
    dir.write("notwasm.wasm", "plain text");
    let config = dir.write(
        "proxy.ini",
        "/cpu = wasm:app.wasm cpu_ms=0
\
         /option = wasm:app.wasm threads=2
\
         /dir = wasm:app.wasm dir=missing:/m
\
         /text = wasm:notwasm.wasm
\
         /missing = wasm:missing.wasm
\
         / = wasm:app.wasm
",
    );
    let server = wasm::server(&config).start();
    for (path, logged) in [
        ("/cpu", "cpu_ms=0: must be 1 to 600000"),
        ("/option", "unknown option `threads`"),
        ("/dir", "is not a directory"),
        ("/text", "notwasm.wasm does not compile"),
        ("/missing", "cannot read"),
    ] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 502, "{path}: {}", response.text());
        assert!(
            server
                .stderr
                .wait_for(Duration::from_secs(10), |l| l.contains(logged))
                .is_some(),
            "{path}: `{logged}` is not logged:\n{}",
            server.stderr.snapshot().join("\n")
        );
    }
    assert_eq!(server.get("/", &[]).status, 200);
}
